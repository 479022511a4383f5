/**
 * Runbook: "Kill All Database Connections".
 *
 * When: before a database migration or emergency maintenance that needs the database to
 * itself. It interrupts active users (medium risk, so it asks for confirmation), and the
 * termination cannot be undone — a terminated session's open transaction is rolled back
 * and its client has to reconnect — so that step asks for its own confirmation too.
 *
 *   1. Warn users (only with --warn 5m): the in-app banner (GET /config; the app keeps
 *      working meanwhile), and a push to every device.
 *   2. Wait out the warning.
 *   3. Kill all connections except ours: pg_terminate_backend for every other client
 *      backend of this database, waiting for each to exit. One pass: a client that connects
 *      again at once (a pool refilling itself) is reported by the verification, not chased.
 *      Chasing reconnections for ten seconds kept a live API off its database all that time
 *      and bought nothing: the pools reconnect as soon as the chase stops. To keep clients
 *      out, put the app in maintenance first (`shipshape emergency disable`) or stop them.
 *   4. Take the warning down (the runbook's "connections automatically allowed after").
 *   Verify: every session that was connected is gone, and the API answers again with its
 *   database. The runbook's "should return 1" cannot hold on a live deployment: the app's
 *   pools and its LISTEN connection reconnect within a second, as they must, so sessions that
 *   connected after the sweep are reported, not counted against the run. Whether the API came
 *   back is what tells the operator the kill did no harm; when nothing answers at API_URL that
 *   check could not be made and is never shown as passed.
 *
 * Not for the embedded database: PGlite runs one backend that every client shares, so
 * there is no other backend to terminate.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { durationSchema, formatDurationMs, humanDuration } from '../../config/duration.ts';
import type { Config } from '../../config/index.ts';
import { describeBackend, holdOwnSessions, otherBackends, terminateOtherBackends, type Backend, type Termination } from '../../db/backends.ts';
import { readAppState, setBanner } from '../../domain/app-state.ts';
import { describeError, ShipError } from '../../errors.ts';
import { announceAppStateChange } from '../../domain/app-state-announce.ts';
import { applicationDatabaseName, databaseLockResource } from '../backups/database-target.ts';
import { probeHealth } from '../diagnostics/api-probe.ts';
import { defineProcedure, outputOf, stepFor, unverified, type CheckResult, type JsonValue, type RunContext } from '../engine/types.ts';
import { bannerJson, journaledBanner, journaledBannerSchema, pushToEveryone, runSetter } from './announcements.ts';

/** Longer than this is a schedule, not a warning: use the scheduler. */
const MAX_WARNING_MS = 2 * 3_600_000;
/** How long pg_terminate_backend waits for each backend to exit (PostgreSQL 14+). */
const EXIT_WAIT_MS = 5_000;
const POLL_MS = 200;
/** How long the API gets to answer with its database after the sweep: its pool reconnects at the next request. */
const API_RECOVERY_WAIT_MS = 30_000;
const API_PROBE_TIMEOUT_MS = 2_000;

const params = z.object({
  /** Warning period before the connections are terminated; none when omitted or 0s. */
  warn: durationSchema.refine((ms) => ms <= MAX_WARNING_MS, `must be at most ${formatDurationMs(MAX_WARNING_MS)}`).optional(),
});
type Params = z.output<typeof params>;
type Context = RunContext<Params>;

const terminationSchema = z.object({
  pid: z.number(),
  user: z.string().nullable(),
  applicationName: z.string().nullable(),
  clientAddr: z.string().nullable(),
  state: z.string().nullable(),
  backendStart: z.string().nullable(),
  queryStart: z.string().nullable(),
  outcome: z.enum(['terminated', 'gone', 'still-running', 'not-permitted']),
  error: z.string().optional(),
});

// The steps whose outputs later steps and checks read (listed in `steps` below with the others).
const step = stepFor<Params>();

const warnUsers = step({
  id: 'warn-users',
  title: 'Warn users (in-app banner and push)',
  output: z.discriminatedUnion('warned', [
    z.object({ warned: z.literal(false) }),
    z.object({
      warned: z.literal(true),
      warnedAt: z.string(),
      warningMs: z.number(),
      banner: z.string(),
      previousBanner: journaledBannerSchema.default(null),
      push: z.json(),
    }),
  ]),
  describe: ({ params: p, config }) => {
    const warning = warningOf(p);
    return warning === undefined
      ? ['no warning (--warn not given): connections are terminated at once']
      : [
          `UPDATE app_state SET banner_message = '${warningText(warning)}'   -- served in GET /config; the app keeps working`,
          `push "${warningText(warning)}" to every active device with notifications on (notification_jobs; Expo at ${new URL(config.push.expoPushUrl).origin})`,
        ];
  },
  async run(context) {
    const warning = warningOf(context.params);
    if (warning === undefined) return { warned: false as const };
    const { pool } = await context.database();
    const text = warningText(warning);
    const warnedAt = new Date().toISOString();
    const { previous } = await setBanner(pool, { message: text, until: null, setBy: runSetter(context) });
    await announceAppStateChange(context.config, context.logger);
    // Put back afterwards only a banner still being shown, and never our own (a resumed run finds it).
    const replaced = previous && previous.setBy !== runSetter(context) && (previous.until === null || previous.until.getTime() > Date.now()) ? previous : null;
    context.note(replaced ? `banner up: "${text}" (replacing "${replaced.message}" until the warning is over)` : `banner up: "${text}"`);
    const push = await pushToEveryone(context, {
      title: 'Scheduled maintenance',
      body: `${text} The app will be unavailable for a short while.`,
      key: `db.kill-connections:${context.runId}`,
      otherwise: 'the banner is the only warning',
    });
    return { warned: true as const, warnedAt, warningMs: warning, banner: text, previousBanner: bannerJson(replaced), push };
  },
  // Takes the banner down; a push that went out cannot be recalled.
  async undo(context, output) {
    await takeDownWarning(context, output.warned ? output.previousBanner : null);
  },
  async undoInterrupted(context) {
    // Whether the banner went up is unknown (and so is the one it replaced); ours carries this run's name.
    await takeDownWarning(context, null, { quiet: true });
  },
});

const terminate = step({
  id: 'terminate',
  title: 'Kill all connections except current',
  irreversible: 'terminated sessions cannot be brought back: their open transactions are rolled back and their clients must reconnect',
  // Runs journaled before the single pass also list the reconnections they chased; older ones lack the API probe.
  output: z.object({
    database: z.string().optional(),
    ourPids: z.array(z.number()).optional(),
    disconnected: z.array(terminationSchema).default([]),
    reconnected: z.array(terminationSchema).default([]),
    sweptAt: z.iso.datetime().optional(),
    apiBefore: z.object({ url: z.string(), status: z.number().nullable(), state: z.string().nullable(), db: z.string().nullable() }).optional(),
    error: z.string().optional(),
  }),
  describe: ({ config }) => [
    `GET ${new URL('/health', config.apiUrl).toString()}   -- whether the API answers before the kill; verification checks it answers again after`,
    `SELECT pid, usename, application_name, client_addr, state, query_start FROM pg_stat_activity
HERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
    `for each pid: SELECT pg_terminate_backend($1::integer, ${EXIT_WAIT_MS})  -- waits up to ${EXIT_WAIT_MS / 1_000} s for it to exit`,
  ],
  async run(context) {
    const before = await probeHealth(context.config.apiUrl, API_PROBE_TIMEOUT_MS);
    const { pool } = await context.database();
    // "Ours" is every connection this process holds (earlier steps may have left more
    // than one idle in the pool), all held until the pass is over.
    const own = await holdOwnSessions(pool);
    const disconnected: Termination[] = [];
    let error: string | undefined;
    try {
      await terminateOtherBackends(own.client, { ours: own.pids, waitMs: EXIT_WAIT_MS, ended: disconnected });
    } catch (cause) {
      // Once anything was terminated the step has acted and must say so, not fail as if it had not.
      if (disconnected.length === 0) throw cause;
      error = describeError(cause);
    } finally {
      own.release();
    }
    context.note(terminationSummary(disconnected));
    return {
      database: applicationDatabaseName(context.config),
      ourPids: [...own.pids],
      disconnected: disconnected.map(terminationJson),
      sweptAt: new Date().toISOString(),
      apiBefore: { url: before.url, status: before.status, state: before.state, db: before.db },
      ...(error === undefined ? {} : { error }),
    };
  },
});

export const dbKillConnections = defineProcedure({
  id: 'db.kill-connections',
  command: 'db kill-connections',
  title: 'Kill all database connections',
  runbookSection: 'Kill All Database Connections',
  whenToUse: 'Database migration or emergency maintenance that needs every other session off the database.',
  risk: 'medium',
  expectedDuration: '1 minute (plus the --warn period)',
  issueType: 'database',
  params,
  locks: (_params, config) => [databaseLockResource(requirePostgres(config))],
  // Terminating every other backend would also end the runner's own lock and journal-mirror
  // connections; this keeps the runner off the database (lock file only, mirror at the end).
  replacesDatabase: true,
  prerequisites: [
    {
      name: 'the database is a PostgreSQL server',
      run: async ({ config }) =>
        config.databaseUrl === undefined
          ? { ok: false, detail: EMBEDDED_REASON, remedy: 'stop `shipshape serve` to disconnect its clients, or point DATABASE_URL at a PostgreSQL server' }
          : { ok: true, detail: `database ${applicationDatabaseName(config)}` },
    },
    {
      name: 'this role may terminate the sessions',
      run: async (context) => {
        const { pool } = await context.database();
        const { rows } = await pool.query<{ role: string; superuser: boolean; signal: boolean }>(
          `SELECT current_user AS role, r.rolsuper AS superuser, pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') AS signal
             FROM pg_roles r WHERE r.rolname = current_user`,
        );
        const row = rows[0];
        if (row?.superuser) return { ok: true, detail: `connected as ${row.role}, a superuser` };
        if (row?.signal) return { ok: true, detail: `connected as ${row.role}, a member of pg_signal_backend (superusers' sessions are out of reach)` };
        return {
          ok: true,
          detail: `connected as ${row?.role ?? '?'}, which may terminate only sessions of roles it belongs to; others will be reported as not permitted`,
        };
      },
    },
    {
      name: 'who is connected now',
      run: async (context) => {
        const { pool } = await context.database();
        const others = await otherBackends(pool);
        return { ok: true, detail: others.length === 0 ? 'no other session' : `${others.length} other session(s): ${others.map(describeBackend).join('; ')}` };
      },
    },
  ],
  steps: [
    warnUsers,
    {
      id: 'wait',
      title: 'Wait for the warning period',
      describe: ({ params: p }) => {
        const warning = warningOf(p);
        return warning === undefined ? ['no wait'] : [`wait ${humanDuration(warning)} from when the banner went up (Ctrl-C takes the warning down and stops)`];
      },
      async run(context) {
        const warned = outputOf(context, warnUsers);
        if (warned?.warned !== true) return { waitedMs: 0 };
        const until = Date.parse(warned.warnedAt) + warned.warningMs;
        const remaining = Math.max(0, until - Date.now());
        context.note(`waiting ${humanDuration(remaining)}, until ${new Date(until).toISOString()}`);
        await sleep(remaining, undefined, { signal: context.signal });
        return { waitedMs: remaining };
      },
    },
    terminate,
    {
      id: 'end-warning',
      title: 'Take the warning down',
      describe: ({ params: p }) =>
        warningOf(p) === undefined
          ? ['nothing to take down']
          : ['UPDATE app_state SET banner_message = <the banner before the warning, or none> — only if the banner is still the one step warn-users put up'],
      // No undo: putting a "starts in 5 minutes" banner back up would announce what is over.
      async run(context) {
        const warned = outputOf(context, warnUsers);
        if (warned?.warned !== true) return { restored: false };
        return { restored: await takeDownWarning(context, warned.previousBanner) };
      },
    },
  ],
  verification: [
    {
      name: 'every session that was connected is gone',
      run: async (context) => {
        const { pool } = await context.database();
        const own = await holdOwnSessions(pool);
        try {
          const outcome = outputOf(context, terminate) ?? { disconnected: [], reconnected: [] };
          // Runs journaled before the single pass also list the reconnections they chased.
          const swept = [...outcome.disconnected, ...outcome.reconnected];
          // Same pid and same start: the very session, not a new one that reuses its pid.
          const sameSession = (b: { pid: number; backendStart: string | null }) => swept.find((t) => t.pid === b.pid && t.backendStart === b.backendStart);
          const others = await otherBackends(own.client, own.pids);
          const remaining = others.filter((b) => sameSession(b) !== undefined);
          const newcomers = others.filter((b) => sameSession(b) === undefined);
          const since = newcomers.length === 0 ? '' : ` ${newcomers.length} session(s) connected since, as the app's pools do (${byApplication(newcomers)}).`;
          if (remaining.length === 0) {
            return { ok: true, detail: `${terminationSummary(swept)}${since}` };
          }
          const why = (pid: number) =>
            swept.find((t) => t.pid === pid)?.outcome === 'not-permitted'
              ? 'not permitted to terminate it'
              : `did not exit within ${EXIT_WAIT_MS / 1_000} s of being terminated`;
          return {
            ok: false,
            detail: `${remaining.length} session(s) are still connected: ${remaining.map((b) => `${describeBackend(b)} (${why(b.pid)})`).join('; ')}${outcome.error ? `; the sweep stopped early: ${outcome.error}` : ''}.${since}`,
            remedy:
              'sessions we may not terminate need a superuser or a role in pg_signal_backend; one that does not exit is stuck in the server (its log says where): cancel it with `shipshape db kill <pid>` or ask the DBA',
          };
        } finally {
          own.release();
        }
      },
    },
    {
      name: 'the API answers again',
      run: async (context) => apiAnswersAgain(context.config.apiUrl, apiStateOf(outputOf(context, terminate)), context.signal),
    },
  ],
});

/**
 * Polls GET /health until the API answers with its database. The API answering before the
 * kill and not after is a failure; nothing answering at all means the check could not be made.
 */
async function apiAnswersAgain(apiUrl: string, terminated: ApiState, signal: AbortSignal): Promise<CheckResult> {
  const since = (at: number) => `${((at - terminated.sweptAt) / 1_000).toFixed(1)} s after the sessions were terminated`;
  const deadline = Date.now() + API_RECOVERY_WAIT_MS;
  for (;;) {
    const answer = await probeHealth(apiUrl, API_PROBE_TIMEOUT_MS);
    const said = `HTTP ${answer.status} "${answer.state ?? '?'}", database ${answer.db ?? '?'}`;
    if (answer.status !== null && answer.db === 'ok') return { ok: true, detail: `${answer.url} answers ${said}, ${since(Date.now())}` };
    if (answer.status === null && !terminated.apiAnsweredBefore) {
      return unverified(
        `nothing answered at ${answer.url} before the kill or after it (${answer.error ?? '?'}), so whether the app got its database back could not be checked`,
        'set API_URL to an API instance (curl "$API_URL/health" must answer), or check each instance\'s /health by hand',
      );
    }
    if (Date.now() >= deadline || signal.aborted) {
      return answer.status === null
        ? {
            ok: false,
            detail: `${answer.url} answered before the kill but not in the ${API_RECOVERY_WAIT_MS / 1_000} s after it (${answer.error ?? '?'})`,
            remedy: 'check that the `shipshape serve` processes are still running (their logs say why one stopped) and start any that exited',
          }
        : {
            ok: false,
            detail: `${answer.url} still answers ${said}, ${since(Date.now())}`,
            remedy:
              'the API did not get its database back: check its logs ("database unavailable") and that its DATABASE_URL names this database; restart the instance if it stays degraded',
          };
    }
    await sleep(POLL_MS);
  }
}

interface ApiState {
  readonly sweptAt: number;
  /** Unknown (a run from before this was recorded) counts as not answering. */
  readonly apiAnsweredBefore: boolean;
}

function apiStateOf(data: { readonly sweptAt?: string | undefined; readonly apiBefore?: { readonly status: number | null } | undefined } = {}): ApiState {
  return { sweptAt: data.sweptAt === undefined ? Date.now() : Date.parse(data.sweptAt), apiAnsweredBefore: (data.apiBefore?.status ?? null) !== null };
}

function byApplication(backends: readonly Backend[]): string {
  const counts = new Map<string, number>();
  for (const b of backends) counts.set(b.applicationName ?? 'unnamed', (counts.get(b.applicationName ?? 'unnamed') ?? 0) + 1);
  return [...counts].map(([name, count]) => `${count} × ${name}`).join(', ');
}

const EMBEDDED_REASON = 'the embedded database (PGlite) runs a single backend that every client shares, so there is no other connection to terminate';

function requirePostgres(config: Config): Config {
  if (config.databaseUrl !== undefined) return config;
  throw new ShipError(
    'SHIP_ERR_NOT_SUPPORTED_EMBEDDED',
    `\`shipshape db kill-connections\` does not apply here: ${EMBEDDED_REASON}. To disconnect the app, stop \`shipshape serve\`; to use this procedure, set DATABASE_URL to a PostgreSQL server.`,
  );
}

function warningOf(p: Params): number | undefined {
  return p.warn === undefined || p.warn === 0 ? undefined : p.warn;
}

function warningText(warningMs: number): string {
  return `Maintenance starts in ${humanDuration(warningMs)}.`;
}

/** Takes our banner down and puts back the one it replaced, unless someone has since put up another. Returns whether it did. */
async function takeDownWarning(context: Context, previousBanner: JsonValue, options: { quiet?: boolean } = {}): Promise<boolean> {
  const { pool } = await context.database();
  const now = (await readAppState(pool)).banner;
  if (now?.setBy !== runSetter(context)) {
    if (now && !options.quiet) context.note(`the banner was changed since the warning ("${now.message}", by ${now.setBy ?? '?'}): left as it is`);
    return false;
  }
  const previous = journaledBanner(previousBanner);
  await setBanner(pool, previous ? { ...previous, setBy: previous.setBy ?? runSetter(context) } : { message: null, until: null, setBy: runSetter(context) });
  await announceAppStateChange(context.config, context.logger);
  context.note(previous ? `banner taken down; "${previous.message}" is back` : 'banner taken down');
  return true;
}

function terminationJson(t: Termination): z.input<typeof terminationSchema> {
  return {
    pid: t.pid,
    user: t.user,
    applicationName: t.applicationName,
    clientAddr: t.clientAddr,
    state: t.state,
    backendStart: t.backendStart,
    queryStart: t.queryStart,
    outcome: t.outcome,
    ...(t.error === undefined ? {} : { error: t.error }),
  };
}

function terminationSummary(disconnected: readonly Termination[]): string {
  if (disconnected.length === 0) return 'Nobody else was connected.';
  return `Disconnected ${disconnected.length}: ${disconnected.map((t) => `${describeBackend(t)} → ${t.outcome}`).join('; ')}.`;
}
