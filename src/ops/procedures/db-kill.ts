/**
 * Runbook: "Investigate High Memory Usage", step 4 — "Kill long-running query (if needed)".
 *
 * The runbook terminates the whole session; a cancel is gentler and usually enough: the
 * statement stops, its transaction rolls back, and the client keeps its connection. So:
 *
 *   1. Cancel the running statement: pg_cancel_backend(pid), then wait for it to stop.
 *   2. Only with --force, and only when the cancel did not end it (or the session is idle in
 *      a transaction, which no cancel can end): terminate the session, pg_terminate_backend.
 *   Verify: the statement (or, with --force, the session) is gone.
 *
 * Refused: pids that are not client sessions of the application database (another
 * database's, a server process such as autovacuum), this run's own connections, and other
 * Shipshape runs' lock connections (killing one would silently release its lock).
 * Neither step can be undone (a cancelled statement is rolled back by PostgreSQL and has to be
 * run again by its client), so each asks for its own confirmation (--yes-irreversible).
 *
 * Not for the embedded database: PGlite is one backend that every client shares.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { BACKEND_COLUMNS, backendOf, describeConnection, holdOwnSessions, terminateBackend, type Backend, type BackendRow } from '../../db/backends.ts';
import type { Pool, Queryable } from '../../db/pool.ts';
import { ShipError } from '../../errors.ts';
import { applicationDatabaseName } from '../backups/database-target.ts';
import { EMBEDDED_SINGLE_BACKEND, requirePostgres } from '../diagnostics/postgres-only.ts';
import { isIdleInTransaction, seconds, shownQuery } from '../diagnostics/sessions.ts';
import { defineProcedure, requireOutput, stepFor, type JsonObject, type RunContext } from '../engine/types.ts';

/** How long a cancelled statement gets to stop before we call it stuck. */
const CANCEL_WAIT_MS = 5_000;
/** How long pg_terminate_backend waits for the session to exit. */
const EXIT_WAIT_MS = 5_000;
const POLL_MS = 100;

const params = z.object({
  pid: z.coerce
    .number({ message: 'must be a process id (a number)' })
    .int('must be a whole number')
    .positive('must be a process id (a positive number)')
    .max(2_147_483_647),
  /** Terminate the session when cancelling does not end it. */
  force: z.boolean().default(false),
});
type Params = z.output<typeof params>;
type Context = RunContext<Params>;

interface Target extends Backend {
  readonly database: string | null;
  readonly backendType: string | null;
  readonly xactStart: string | null;
  readonly querySeconds: number | null;
  /** Masked, one line, cut short; null when hidden. */
  readonly query: string | null;
}

// The step whose output the terminate step and the check read (listed in `steps` below with the others).
const step = stepFor<Params>();

const cancelStatement = step({
  id: 'cancel',
  // The session as the cancel found it; only `gone` and `stopped` when it had ended already.
  output: z.object({
    gone: z.boolean().optional(),
    backendStart: z.string().nullable().optional(),
    queryStart: z.string().nullable().optional(),
    state: z.string().nullable().optional(),
    xactStart: z.string().nullable().optional(),
    cancelled: z.boolean().optional(),
    stopped: z.boolean(),
  }),
  title: 'Cancel the running statement',
  irreversible: 'a cancelled statement is rolled back by PostgreSQL and its client must run it again',
  describe: ({ params: p }) => [`SELECT pg_cancel_backend(${p.pid})`, `wait up to ${CANCEL_WAIT_MS / 1_000} s for the statement to stop`],
  async run(context) {
    const db = await pool(context);
    const before = await findTarget(db, context.params.pid);
    if (before === undefined) {
      context.note(`pid ${context.params.pid} is gone already`);
      return { gone: true, stopped: true };
    }
    const identity = { backendStart: before.backendStart, queryStart: before.queryStart, state: before.state, xactStart: before.xactStart };
    if (before.state !== 'active') {
      context.note(`${before.state ?? 'state hidden'}: no statement to cancel`);
      return { ...identity, cancelled: false, stopped: true };
    }
    const signalled = await signal(db, 'pg_cancel_backend', context.params.pid);
    const stopped = await waitUntil(CANCEL_WAIT_MS, async () => statementEnded(before, await findTarget(db, context.params.pid)));
    const after = await findTarget(db, context.params.pid);
    context.note(
      stopped
        ? `statement cancelled; the session is ${after === undefined || after.backendStart !== before.backendStart ? 'gone' : (after.state ?? 'hidden')}`
        : `the statement did not stop within ${CANCEL_WAIT_MS / 1_000} s of the cancel${context.params.force ? ': terminating' : ' (run again with --force to terminate the session)'}`,
    );
    return { ...identity, cancelled: signalled, stopped };
  },
});

export const dbKill = defineProcedure({
  id: 'db.kill',
  command: 'db kill',
  title: 'Stop one database session’s statement (cancel; terminate with --force)',
  runbookSection: 'Investigate High Memory Usage',
  whenToUse: 'A long-running query or a session idle in a transaction is holding locks or resources (find it with `shipshape db diagnose`).',
  risk: 'medium',
  expectedDuration: 'under a minute',
  issueType: 'database',
  params,
  locks: (p, config) => {
    requirePostgres(config, 'db kill', `${EMBEDDED_SINGLE_BACKEND}, so there is no other session to cancel or terminate`);
    return [`database-session:${applicationDatabaseName(config)}:${p.pid}`];
  },
  prerequisites: [
    {
      name: 'the pid is a client session of the application database',
      run: async (context) => {
        const target = await findTarget(await pool(context), context.params.pid);
        const name = applicationDatabaseName(context.config);
        if (target === undefined)
          return { ok: false, detail: `no server process has pid ${context.params.pid}`, remedy: 'list the sessions with `shipshape db diagnose`' };
        if (target.backendType !== 'client backend') {
          return {
            ok: false,
            detail: `pid ${target.pid} is the server's ${target.backendType ?? 'own'} process, not a client session`,
            remedy: 'only client sessions are stopped here; server processes are PostgreSQL’s own',
          };
        }
        if (target.database !== name) {
          return {
            ok: false,
            detail: `pid ${target.pid} is connected to database ${target.database ?? '?'}, not ${name}`,
            remedy: 'this command only stops sessions of the application database (DATABASE_URL)',
          };
        }
        return {
          ok: true,
          detail: `${describeConnection(target)} ${target.state ?? 'state hidden'}${target.querySeconds === null ? '' : `, statement running ${seconds(target.querySeconds)}`}${target.query ? `: ${target.query}` : ''}`,
        };
      },
    },
    {
      name: 'it is not one of ours',
      run: async (context) => {
        const pid = context.params.pid;
        const own = await holdOwnSessions(await pool(context));
        own.release();
        if (own.pids.includes(pid)) return { ok: false, detail: `pid ${pid} is this command's own connection`, remedy: 'pick another pid' };
        const target = await findTarget(await pool(context), pid);
        const run = /^shipshape-run (\S+)/.exec(target?.applicationName ?? '')?.[1];
        if (run === context.runId) return { ok: false, detail: `pid ${pid} is this run's own lock connection`, remedy: 'pick another pid' };
        if (run !== undefined) {
          return {
            ok: false,
            detail: `pid ${pid} holds the lock of Shipshape run ${run}; killing it would let another run start beside it`,
            remedy: `stop that run itself (Ctrl-C where it runs, or \`shipshape runs show ${run}\`)`,
          };
        }
        return { ok: true, detail: `not one of this run's connections (${own.pids.join(', ')})` };
      },
    },
    {
      name: 'there is a statement to cancel (or --force)',
      run: async (context) => {
        const target = await findTarget(await pool(context), context.params.pid);
        const state = target?.state ?? null;
        if (state === 'active') return { ok: true, detail: 'a statement is running: it is cancelled first' };
        if (context.params.force) return { ok: true, detail: `${state ?? 'state hidden'}: nothing to cancel, so --force terminates the session` };
        if (isIdleInTransaction(state)) {
          return {
            ok: false,
            detail: `the session is ${state} (open ${seconds(secondsSince(target?.xactStart ?? null))}): a cancel cannot end a transaction that runs no statement`,
            remedy: `terminate it: shipshape db kill ${context.params.pid} --force`,
          };
        }
        return {
          ok: false,
          detail: `the session is ${state ?? 'hidden from this role'}: no statement is running`,
          remedy:
            state === null
              ? 'connect as a role that can see it (pg_read_all_stats) or pass --force'
              : `to disconnect it anyway: shipshape db kill ${context.params.pid} --force`,
        };
      },
    },
  ],
  steps: [
    cancelStatement,
    {
      id: 'terminate',
      title: 'Terminate the session (--force)',
      irreversible: 'a terminated session cannot be brought back: its open transaction is rolled back and its client must reconnect',
      describe: ({ params: p }) =>
        p.force
          ? [`if the cancel did not end it, or it is idle in a transaction: SELECT pg_terminate_backend(${p.pid}, ${EXIT_WAIT_MS})`]
          : ['not without --force'],
      async run(context): Promise<JsonObject> {
        if (!context.params.force) return { terminated: false, reason: 'no --force' };
        const db = await pool(context);
        const cancel = requireOutput(context, cancelStatement);
        const now = await findTarget(db, context.params.pid);
        if (now === undefined || (typeof cancel.backendStart === 'string' && now.backendStart !== cancel.backendStart)) {
          context.note('the session is gone: nothing to terminate');
          return { terminated: false, reason: 'gone' };
        }
        if (cancel.stopped === true && !isIdleInTransaction(now.state)) {
          context.note(`the cancel was enough: the session is ${now.state ?? 'hidden'}, left connected`);
          return { terminated: false, reason: 'cancel was enough' };
        }
        const outcome = await terminateBackend(db, now, EXIT_WAIT_MS);
        if (outcome.outcome === 'not-permitted') {
          throw new ShipError(
            'SHIP_ERR_STEP_FAILED',
            `PostgreSQL refused to terminate pid ${now.pid}: ${outcome.error ?? 'permission denied'}. Connect as a superuser or a member of pg_signal_backend (and the same role, for another role's session).`,
          );
        }
        context.note(`session ${outcome.outcome}`);
        return { terminated: outcome.outcome === 'terminated' || outcome.outcome === 'gone', outcome: outcome.outcome };
      },
    },
  ],
  verification: [
    {
      name: 'the statement is no longer running',
      run: async (context) => {
        const cancel = requireOutput(context, cancelStatement);
        const now = await findTarget(await pool(context), context.params.pid);
        const sameSession = now !== undefined && now.backendStart === cancel.backendStart;
        if (context.params.force) {
          const stillIdleInTx = sameSession && isIdleInTransaction(now.state);
          if (sameSession && (stillRunning(cancel, now) || stillIdleInTx)) {
            return {
              ok: false,
              detail: `pid ${context.params.pid} is still ${now.state ?? '?'} after being terminated`,
              remedy: 'it may be stuck in an uninterruptible call: look at the server (ps, the PostgreSQL log) before anything harsher',
            };
          }
          return { ok: true, detail: sameSession ? `the session is ${now.state ?? '?'} with its statement stopped` : `pid ${context.params.pid} is gone` };
        }
        if (sameSession && stillRunning(cancel, now)) {
          return {
            ok: false,
            detail: `pid ${context.params.pid} still runs the same statement ${seconds(now.querySeconds)} after it began; the cancel did not stop it`,
            remedy: `terminate the session: shipshape db kill ${context.params.pid} --force --yes --yes-irreversible`,
          };
        }
        return {
          ok: true,
          detail: sameSession ? `the session is ${now.state ?? '?'}: its statement was cancelled, the connection kept` : `pid ${context.params.pid} is gone`,
        };
      },
    },
  ],
});

async function pool(context: Context): Promise<Pool> {
  return (await context.database()).pool;
}

async function findTarget(db: Queryable, pid: number): Promise<Target | undefined> {
  const { rows } = await db.query<
    BackendRow & { datname: string | null; backend_type: string | null; xact_start: Date | null; query_seconds: number | null; query: string | null }
  >(
    `SELECT ${BACKEND_COLUMNS}, datname, backend_type, xact_start, extract(epoch FROM now() - query_start)::float8 AS query_seconds, query
       FROM pg_stat_activity WHERE pid = $1::integer`,
    [pid],
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  return {
    ...backendOf(row),
    database: row.datname,
    backendType: row.backend_type,
    xactStart: row.xact_start?.toISOString() ?? null,
    querySeconds: row.query_seconds,
    query: shownQuery(row.query),
  };
}

async function signal(db: Queryable, fn: 'pg_cancel_backend', pid: number): Promise<boolean> {
  try {
    const { rows } = await db.query<{ ok: boolean }>(`SELECT ${fn}($1::integer) AS ok`, [pid]);
    return rows[0]?.ok === true;
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === '42501') {
      throw new ShipError(
        'SHIP_ERR_STEP_FAILED',
        `PostgreSQL refused to cancel pid ${pid}: ${error.message}. Connect as a superuser or a member of pg_signal_backend (and the same role, for another role's session).`,
      );
    }
    throw error;
  }
}

/** The statement seen before the cancel is over: the session is gone, replaced, or doing something else. */
function statementEnded(before: Target, now: Target | undefined): boolean {
  if (now === undefined || now.backendStart !== before.backendStart) return true;
  return now.state !== 'active' || now.queryStart !== before.queryStart;
}

function stillRunning(cancel: { readonly state?: string | null | undefined; readonly queryStart?: string | null | undefined }, now: Target): boolean {
  return cancel.state === 'active' && now.state === 'active' && now.queryStart === cancel.queryStart;
}

function secondsSince(iso: string | null): number | null {
  return iso === null ? null : (Date.now() - Date.parse(iso)) / 1_000;
}

async function waitUntil(ms: number, done: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await done()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
}
