/**
 * The procedures the rehearsal runs against the live deployment, in order, each through the
 * real CLI with the operator's configuration, and each with the exit code and final state its
 * documentation promises. A procedure throws (assert) on the first expectation that fails.
 *
 * `announces` lists the error codes the procedure tells users about beforehand: its maintenance
 * window (SHIP_ERR_MAINTENANCE) or its connection kill (SHIP_ERR_DATABASE_UNAVAILABLE). Any other
 * 5xx the traffic sees while it runs is a failure.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { shipshapeProfile } from '../../src/app-profile.ts';
import { preRestorePrefix } from '../../src/ops/backups/restore-target.ts';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import type { CliOptions, CliResult } from '../helpers/cli.ts';
import { eventually } from '../helpers/patience.ts';
import { base64UrlSha256, fetchManifest, makeExport, partNamed } from '../helpers/updates.ts';
import { makeDue } from '../helpers/workers.ts';
import type { Deployment } from './deployment.ts';
import { FIRST_APP_VERSION, RUNTIME_VERSION, sentryReleaseOf, sentryUpdateReleaseOf } from './stores.ts';
import type { Traffic } from './traffic.ts';

/**
 * THE ONE PLACE to mark restore as known to fail on a served database. It did until restore was
 * redesigned (issue 10, finding 1: pg_restore --clean in place could not drop pg-boss's
 * partitioned tables, and terminating sessions lost the race with reconnecting pools); it now
 * restores beside and swaps, so nothing is expected to fail.
 */
export const RESTORE_EXPECTED_TO_FAIL: string | undefined = undefined;

export type Form = 'short' | 'full';

export interface RehearsalContext {
  readonly deployment: Deployment;
  readonly traffic: Traffic;
  /** Runs `shipshape <args>` as `operator` (alice by default); its exit code goes into the report. */
  cli(args: string[], operator?: string, options?: CliOptions & { env?: Record<string, string> }): Promise<CliResult>;
  note(line: string): void;
}

export interface RehearsedProcedure {
  readonly name: string;
  readonly forms: readonly Form[];
  readonly announces: readonly string[];
  readonly expectedToFail?: string | undefined;
  run(context: RehearsalContext): Promise<void>;
}

/** git in the app's repository or its remote, for checking what a release left there. */
function gitOf(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
}

const MAINTENANCE = 'SHIP_ERR_MAINTENANCE';
const DATABASE_UNAVAILABLE = 'SHIP_ERR_DATABASE_UNAVAILABLE';
const READ_ONLY = 'SHIP_ERR_READ_ONLY';

// Run reports and --json answers are read freely; each check names the field it needs.
function jsonOf(result: CliResult): Record<string, any> {
  try {
    return JSON.parse(result.stdout) as Record<string, any>;
  } catch {
    assert.fail(`expected one JSON document (exit ${result.code}):\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
  }
}

function exitsWith(result: CliResult, code: number, what: string): void {
  if (result.code === code) return;
  // A run report says why in its error; anything else, the end of what the command printed.
  let why = result.stdout.slice(-1_500);
  try {
    const report = JSON.parse(result.stdout) as Record<string, any>;
    if (report.error) why = `run ${report.runId ?? ''} ${report.state ?? ''}: ${report.error.code}: ${report.error.message}`;
  } catch {
    // not a run report
  }
  assert.fail(
    `${what}: exit ${result.code ?? result.signal}, documented ${code}\n${why}\n--- stderr (end) ---\n${result.stderr.trim().split('\n').slice(-4).join('\n').slice(-1_500)}`,
  );
}

function stepOutput(report: Record<string, any>, id: string): Record<string, any> {
  const step = (report.steps as Array<Record<string, any>> | undefined)?.find((candidate) => candidate.id === id);
  assert.ok(step?.output, `no output for step ${id} in the run report`);
  return step.output as Record<string, any>;
}

/**
 * Runs a procedure as alice; when policy holds it for a second operator (exit 3, awaiting
 * approval), bob approves it and alice resumes it — the documented two-person flow.
 */
async function withApproval(context: RehearsalContext, args: string[]): Promise<CliResult> {
  const first = await context.cli([...args, '--yes', '--yes-irreversible', '--json'], 'alice');
  const runId = /(r-\d{8}-\d{6}-[0-9a-f]{4})/.exec(first.stdout)?.[1];
  if (first.code !== 3 || !runId || !/awaiting-approval|shipshape approve/.test(first.stdout)) return first;
  context.note(`${args.slice(0, 2).join(' ')}: held for approval (${runId}); bob approved, alice resumed`);
  exitsWith(await context.cli(['approve', runId, '--json'], 'bob'), 0, 'approve');
  return context.cli(['runs', 'resume', runId, '--yes', '--yes-irreversible', '--json'], 'alice');
}

async function health(url: string): Promise<{ status: number; json: Record<string, any> }> {
  const response = await fetch(`${url}/health`);
  return { status: response.status, json: (await response.json()) as Record<string, any> };
}

async function config(url: string): Promise<Record<string, any>> {
  return (await (await fetch(`${url}/config`)).json()) as Record<string, any>;
}

/** Both instances' /health, until each satisfies `ok`. */
async function everyInstance(deployment: Deployment, what: string, ok: (answer: { status: number; json: Record<string, any> }) => boolean): Promise<void> {
  await eventually(what, async () => ((await Promise.all(deployment.instances.map(async (i) => ok(await health(i.url))))).every(Boolean) ? true : undefined));
}

/** Waits until the traffic has acknowledged a write through each instance after now. */
async function trafficFlows(context: RehearsalContext, what: string): Promise<void> {
  const since = Date.now();
  await eventually(what, () => (context.traffic.writesSince(since).size === context.deployment.instances.length ? true : undefined));
}

async function takeBackup(context: RehearsalContext): Promise<string> {
  const result = await context.cli(['db', 'backup', '--yes', '--json']);
  exitsWith(result, 0, 'db backup');
  const id = String(stepOutput(jsonOf(result), 'manifest').backupId);
  assert.match(id, /\S/, 'the backup has an id');
  return id;
}

const backup: RehearsedProcedure = {
  name: 'backup + verify --restore',
  forms: ['short', 'full'],
  announces: [],
  run: async (context) => {
    const id = await takeBackup(context);
    const verified = await context.cli(['db', 'verify', id, '--restore', '--json']);
    exitsWith(verified, 0, 'db verify --restore');
    const answer = jsonOf(verified);
    assert.equal(answer.ok, true, 'the verification passed');
    assert.equal(answer.restoreTested, true, 'a scratch restore was made and compared');
    context.note(`backup ${id} taken and verified by a scratch restore`);
  },
};

/** A migration of the rehearsal's own, beside Shipshape's: the CLI runs it from a copy of the migrations folder. */
const migration: RehearsedProcedure = {
  name: 'migration up and down',
  forms: ['short', 'full'],
  announces: [],
  run: async (context) => {
    const folder = await mkdtemp(path.join(tmpdir(), 'shipshape-rehearsal-migrations-'));
    for (const file of await readdir(shipshapeProfile.migrations.directory))
      await symlink(path.join(shipshapeProfile.migrations.directory, file), path.join(folder, file));
    await writeFile(
      path.join(folder, '9001_rehearsal_probe.sql'),
      'ALTER TABLE tasks ADD COLUMN rehearsal_probe text;\nCREATE TABLE rehearsal_probe (id integer PRIMARY KEY, note text);\n',
    );
    await writeFile(path.join(folder, '9001_rehearsal_probe.down.sql'), 'DROP TABLE rehearsal_probe;\nALTER TABLE tasks DROP COLUMN rehearsal_probe;\n');
    const withProbe = { script: fileURLToPath(new URL('./cli-with-migrations.ts', import.meta.url)), env: { REHEARSAL_MIGRATIONS_DIR: folder } };
    const column = async () =>
      (await context.deployment.pool.query("SELECT 1 FROM information_schema.columns WHERE table_name = 'tasks' AND column_name = 'rehearsal_probe'"))
        .rowCount === 1;

    // The procedure needs a verified backup under an hour old: the backup step took one.
    const up = await context.cli(['db', 'migrate', 'up', '--yes', '--json'], 'alice', withProbe);
    exitsWith(up, 0, 'db migrate up');
    assert.ok(await column(), 'the migration added tasks.rehearsal_probe');
    await trafficFlows(context, 'traffic through both instances with the new column');
    const down = await context.cli(['db', 'migrate', 'down', '--json'], 'alice', withProbe);
    exitsWith(down, 0, 'db migrate down');
    assert.equal(await column(), false, 'the down migration dropped tasks.rehearsal_probe');
    const status = jsonOf(await context.cli(['db', 'migrate', 'status', '--json'], 'alice', withProbe));
    assert.equal((status.migrations as Array<Record<string, any>>).find((m) => m.version === 9001)?.state, 'pending');
  },
};

const killConnections: RehearsedProcedure = {
  name: 'db kill-connections --warn',
  forms: ['short', 'full'],
  announces: [DATABASE_UNAVAILABLE],
  run: async (context) => {
    const result = await context.cli(['db', 'kill-connections', '--warn', '2s', '--yes', '--yes-irreversible', '--json']);
    exitsWith(result, 0, 'db kill-connections');
    const report = jsonOf(result);
    assert.equal(report.state, 'succeeded');
    const terminated = JSON.stringify(report.steps?.find((step: Record<string, any>) => step.id === 'terminate')?.output ?? {});
    context.note(`terminate step: ${terminated.slice(0, 300)}`);
    const banner = (await config(context.deployment.instances[1].url)).banner;
    context.note(`banner on the second instance afterwards: ${JSON.stringify(banner)}`);
  },
};

const dbKill: RehearsedProcedure = {
  name: 'db kill (runaway query)',
  forms: ['full'],
  announces: [],
  run: async (context) => {
    const runaway = new pg.Client({ connectionString: context.deployment.database.url, application_name: 'rehearsal-runaway' });
    await runaway.connect();
    try {
      const pid = (await runaway.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const query = runaway.query('SELECT pg_sleep(3600)').then(
        () => 'finished',
        (error: Error & { code?: string }) => error.code ?? error.message,
      );
      await eventually('the runaway query to be active', async () => {
        const { rows } = await context.deployment.pool.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pid]);
        return rows.length > 0 ? true : undefined;
      });
      const result = await context.cli(['db', 'kill', String(pid), '--yes', '--yes-irreversible', '--json']);
      exitsWith(result, 0, 'db kill');
      assert.equal(await query, '57014', 'the statement was cancelled (query_canceled)');
      assert.equal((await runaway.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1, 'a cancel keeps the session');
    } finally {
      await runaway.end().catch(() => undefined);
    }
  },
};

const emergency: RehearsedProcedure = {
  name: 'emergency disable + enable',
  forms: ['short', 'full'],
  announces: [MAINTENANCE],
  run: async (context) => {
    const message = `Rehearsal emergency ${randomUUID().slice(0, 8)}`;
    const disabled = await withApproval(context, ['emergency', 'disable', '--message', message]);
    exitsWith(disabled, 0, 'emergency disable');
    await everyInstance(context.deployment, 'both instances to answer 503 maintenance with the message', (h) => h.status === 503 && h.json.message === message);
    // Users are locked out while it lasts: some of their requests are turned away.
    const since = Date.now();
    await eventually('the traffic to be told about the maintenance', () =>
      context.traffic.log.some((entry) => entry.at > since && entry.code === MAINTENANCE) ? true : undefined,
    );
    const enabled = await withApproval(context, ['emergency', 'enable']);
    exitsWith(enabled, 0, 'emergency enable');
    await everyInstance(context.deployment, 'both instances healthy again', (h) => h.status === 200 && h.json.status === 'ok');
  },
};

const cacheClear: RehearsedProcedure = {
  name: 'cache clear',
  forms: ['short', 'full'],
  announces: [],
  run: async (context) => {
    const before = Number((await config(context.deployment.instances[1].url)).cacheEpochs?.tasks ?? 0);
    const result = await context.cli(['cache', 'clear', '--scope', 'tasks', '--yes', '--json']);
    exitsWith(result, 0, 'cache clear');
    await eventually('both instances to show the new tasks cache epoch', async () =>
      (await Promise.all(context.deployment.instances.map(async (i) => Number((await config(i.url)).cacheEpochs?.tasks ?? 0) > before))).every(Boolean)
        ? true
        : undefined,
    );
  },
};

const maintenanceRun: RehearsedProcedure = {
  name: 'maintenance run',
  forms: ['full'],
  announces: [MAINTENANCE],
  run: async (context) => {
    const result = await withApproval(context, ['maintenance', 'run']);
    exitsWith(result, 0, 'maintenance run');
    assert.equal(jsonOf(result).state, 'succeeded');
    await everyInstance(context.deployment, 'both instances out of maintenance', (h) => h.status === 200);
  },
};

const gdprErasure: RehearsedProcedure = {
  name: 'GDPR erasure',
  forms: ['full'],
  announces: [],
  run: async (context) => {
    const url = context.deployment.instances[0].url;
    const email = `erase-me-${randomUUID()}@example.com`;
    const registered = await fetch(`${url}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: 'correct horse battery staple' }),
    });
    assert.equal(registered.status, 201);
    const { token, user } = (await registered.json()) as { token: string; user: { id: string } };
    const task = await fetch(`${url}/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ title: 'private' }),
    });
    assert.equal(task.status, 201);
    const ticket = `GDPR-${randomUUID().slice(0, 6)}`;
    exitsWith(
      await context.cli(
        ['user', 'request-deletion', email, '--ticket', ticket, '--identity-ref', 'rehearsal: replied from the account address', '--yes', '--json'],
        'alice',
      ),
      0,
      'user request-deletion',
    );
    exitsWith(await context.cli(['user', 'approve-deletion', email, '--ticket', ticket, '--json'], 'bob'), 0, 'user approve-deletion (legal)');
    exitsWith(
      await context.cli(['user', 'approve-deletion', email, '--ticket', ticket, '--skip-grace', '--json'], 'dana'),
      0,
      'user approve-deletion --skip-grace',
    );
    exitsWith(await context.cli(['user', 'export', email, '--ticket', ticket, '--yes', '--json'], 'alice'), 0, 'user export');
    const erased = await withApproval(context, ['user', 'delete', email, '--ticket', ticket, '--skip-grace']);
    exitsWith(erased, 0, 'user delete');
    const left = await context.deployment.pool.query(
      'SELECT (SELECT count(*) FROM users WHERE id = $1)::int AS users, (SELECT count(*) FROM tasks WHERE user_id = $1)::int AS tasks',
      [user.id],
    );
    assert.deepEqual(left.rows[0], { users: 0, tasks: 0 }, 'the account and its tasks are gone');
    const login = await fetch(`${context.deployment.instances[1].url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: 'correct horse battery staple' }),
    });
    assert.equal(login.status, 401, 'the erased account cannot log in');
  },
};

const push: RehearsedProcedure = {
  name: 'push send + scheduled push',
  forms: ['full'],
  announces: [],
  run: async (context) => {
    const { expo } = context.deployment;
    const devices = context.traffic.ledger.users.flatMap((user) => [...user.devices]);
    assert.ok(devices.length > 0, 'the traffic registered devices');
    const title = `Rehearsal push ${randomUUID().slice(0, 8)}`;
    exitsWith(await context.cli(['notify', 'send', '--title', title, '--body', 'rehearsal', '--json']), 0, 'notify send');
    const missed = devices.filter((device) => !expo.deliveries.some((d) => d.title === title && d.to === device));
    assert.deepEqual(missed, [], 'every device registered with a 201 before the send got it');

    const scheduledTitle = `Rehearsal scheduled ${randomUUID().slice(0, 8)}`;
    // An hour ahead (a CLI start on a busy machine can take longer than "a few seconds ahead"), then made due in SQL, as the clock would.
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const scheduled = await context.cli(['notify', 'schedule', '--at', at, '--title', scheduledTitle, '--body', 'rehearsal', '--json']);
    exitsWith(scheduled, 0, 'notify schedule');
    const answer = jsonOf(scheduled);
    const id = String(answer.notification?.id ?? answer.id ?? '');
    assert.match(id, /^[0-9a-f-]{36}$/, `notify schedule --json names the notification: ${scheduled.stdout.slice(0, 300)}`);
    await makeDue(context.deployment.pool, [id]);
    await eventually('the scheduled push to reach Expo', () => (expo.deliveries.some((d) => d.title === scheduledTitle) ? true : undefined));
    const listed = await eventually('the scheduled push to be listed as sent', async () => {
      const list = jsonOf(await context.cli(['notify', 'list', '--json']));
      const found = JSON.stringify(list).includes(scheduledTitle)
        ? (list.notifications as Array<Record<string, any>> | undefined)?.find((n) => n.title === scheduledTitle)
        : undefined;
      return found?.status === 'sent' ? found : undefined;
    });
    const perDevice = new Map<string, number>();
    for (const delivery of expo.deliveries.filter((d) => d.title === scheduledTitle)) perDevice.set(delivery.to, (perDevice.get(delivery.to) ?? 0) + 1);
    assert.deepEqual(
      [...perDevice.values()].filter((n) => n > 1),
      [],
      'three processes run workers; each device got the scheduled push once',
    );
    context.note(`scheduled push sent to ${perDevice.size} device(s); listed ${JSON.stringify({ status: listed.status, recipients: listed.recipients })}`);
  },
};

const credentialRotation: RehearsedProcedure = {
  name: 'credential rotation (admin token)',
  forms: ['full'],
  announces: [],
  run: async (context) => {
    const result = await context.cli(['admin-token', 'rotate', '--overlap', '1h', '--json']);
    exitsWith(result, 0, 'admin-token rotate');
    const answer = jsonOf(result);
    const token = String(answer.token ?? answer.secret ?? '');
    assert.ok(token.length >= 16, `the new token is printed once: ${result.stdout.slice(0, 300)}`);
    for (const instance of context.deployment.instances) {
      for (const [which, bearer] of [
        ['new', token],
        ['old (within the overlap)', ADMIN_TOKEN],
      ] as const) {
        const status = await eventually(`${instance.name} to accept the ${which} admin token`, async () => {
          const response = await fetch(`${instance.url}/admin/notifications`, { headers: { authorization: `Bearer ${bearer}` } });
          return response.status === 200 ? response.status : undefined;
        });
        assert.equal(status, 200);
      }
    }
  },
};

const restore: RehearsedProcedure = {
  name: 'restore (with approval)',
  forms: ['full'],
  announces: [READ_ONLY, MAINTENANCE, DATABASE_UNAVAILABLE],
  expectedToFail: RESTORE_EXPECTED_TO_FAIL,
  run: async (context) => {
    const { ledger } = context.traffic;
    // Taken with no request in flight: a write answered after it may or may not be in the backup.
    const { expected, backupStarted } = await context.traffic.whilePaused(async () => ({ expected: ledger.snapshot(), backupStarted: Date.now() }));
    const id = await takeBackup(context);
    // Taken with no request in flight, so every write after it is one the restore may have kept on either side.
    const { restoreStarted, beforeRestore } = await context.traffic.whilePaused(async () => ({ restoreStarted: Date.now(), beforeRestore: ledger.snapshot() }));
    const restored = await withApproval(context, ['db', 'restore', id]);
    exitsWith(restored, 0, 'db restore');
    // Nothing acknowledged is lost: what was acknowledged before the restore began is in the
    // database it replaced, which it keeps. Checked with the traffic held, so the ledger does not
    // move under the check.
    const kept = await context.deployment.pool.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE starts_with(datname, $1::text) ORDER BY datname DESC LIMIT 1',
      [preRestorePrefix(context.deployment.database.name)],
    );
    assert.equal(kept.rows.length, 1, 'the restore kept the database it replaced');
    const keptUrl = new URL(context.deployment.database.url);
    keptUrl.pathname = `/${kept.rows[0]!.datname}`;
    const keptPool = new pg.Pool({ connectionString: keptUrl.toString(), max: 2 });
    try {
      await context.traffic.whilePaused(async () => {
        const everything = ledger.snapshot();
        ledger.restore(beforeRestore);
        ledger.uncertainBetween(restoreStarted, Date.now());
        const { checked, missing } = await ledger.missing(keptPool);
        ledger.restore(everything);
        assert.deepEqual(missing, [], `writes acknowledged before the restore, missing from ${kept.rows[0]!.datname}`);
        context.note(`kept ${kept.rows[0]!.datname}: all ${checked} writes acknowledged before the restore are in it`);
      });
    } finally {
      await keptPool.end();
    }
    // Writes made after the backup are gone from the live database by design; what the backup held
    // must be back. Writes answered since the backup began (during it, or after the swap) may be
    // on either side of it, so they are not held against the live database here; the next
    // procedures' checks see the ones made from now on.
    await context.traffic.whilePaused(async () => {
      ledger.restore(expected);
      ledger.uncertainBetween(backupStarted, Date.now());
    });
    const report = jsonOf(restored);
    assert.equal(report.state, 'succeeded');
    context.note(`restore report: ${JSON.stringify({ state: report.state, exitCode: report.exitCode, error: report.error?.code }).slice(0, 300)}`);
    await everyInstance(context.deployment, 'both instances healthy after the restore', (h) => h.status === 200);
  },
};

/** A release's record, as `release show` reads it: its state and each store's rollout. */
async function releaseRecord(context: RehearsalContext, version: string): Promise<{ state: string | undefined; rollouts: Record<string, string> }> {
  const { pool } = context.deployment;
  const state = (await pool.query<{ state: string }>('SELECT state FROM releases WHERE version = $1', [version])).rows[0]?.state;
  const { rows } = await pool.query<{ platform: string; status: string; fraction: number }>(
    'SELECT platform, status, fraction FROM release_rollouts WHERE version = $1 ORDER BY platform',
    [version],
  );
  return { state, rollouts: Object.fromEntries(rows.map((r) => [r.platform, `${r.status} ${Math.round(r.fraction * 100)} %`])) };
}

/** The fractions Play was told for a version code, in order (one entry per accepted track update). */
function playSteps(context: RehearsalContext, versionCode: string): string[] {
  return context.deployment.stores.play.requests
    .filter((r) => r.method === 'PUT' && r.path.endsWith('/tracks/production') && r.status === 200)
    .flatMap((r) => (r.body as { releases?: Array<{ versionCodes?: string[]; status?: string; userFraction?: number }> }).releases ?? [])
    .filter((release) => release.versionCodes?.includes(versionCode))
    .map((release) => (release.status === 'inProgress' ? `${Math.round((release.userFraction ?? 0) * 100)} %` : String(release.status)));
}

/** Which Shipshape process logged `pattern` (the scheduler of each logs what it did to a release). */
function loggedBy(context: RehearsalContext, pattern: RegExp): string[] {
  return context.deployment.processes.flatMap((p) => (p.output().match(new RegExp(pattern.source, 'g')) ?? []).map(() => p.name));
}

/** Scheduler ticks that failed to evaluate a release or an update rollout: logged, never seen by the traffic. */
const SCHEDULER_TROUBLE =
  /release rollouts could not be advanced this tick|the rollout step could not be evaluated|update rollouts could not be evaluated this tick/;

/** How many times the processes have logged scheduler trouble so far. */
function schedulerTrouble(context: RehearsalContext): number {
  return loggedBy(context, SCHEDULER_TROUBLE).length;
}

/** Fails, quoting the lines, when a process logged scheduler trouble since `before` (a count from `schedulerTrouble`). */
function noNewSchedulerTrouble(context: RehearsalContext, before: number): void {
  const lines = context.deployment.processes.flatMap((p) =>
    p
      .output()
      .split('\n')
      .filter((line) => SCHEDULER_TROUBLE.test(line))
      .map((line) => `${p.name}: ${line.slice(0, 400)}`),
  );
  assert.equal(lines.length, before, `the schedulers could not evaluate a rollout:\n${lines.slice(before).join('\n')}`);
}

/**
 * `release deploy --bump minor`, then the app as users would run it: half the users move to
 * the new version (their requests carry it in X-App-Version, which the gates count) and Sentry
 * reports its sessions healthy; the schedulers of the live instances take the rollout step by
 * step (Play through RELEASE_ROLLOUT_STEPS; Apple's phased release along its days) to 100 %.
 * Each step must be taken once, by one process.
 */
async function deployMinor(context: RehearsalContext): Promise<{ version: string; versionCode: string; report: Record<string, any> }> {
  const deployed = await withApproval(context, ['release', 'deploy', '--bump', 'minor']);
  exitsWith(deployed, 0, 'release deploy');
  const report = jsonOf(deployed);
  assert.equal(report.state, 'succeeded');
  const build = stepOutput(report, 'build');
  const versionCode = String(build.androidVersionCode);
  const steps = (report.steps as Array<Record<string, any>> | undefined) ?? [];
  context.note(`release deploy: ${report.durationMs ?? '?'} ms in the run; steps ${steps.map((step) => `${step.id} ${step.durationMs ?? '?'} ms`).join(', ')}`);
  const version = (await context.deployment.pool.query<{ version: string }>('SELECT version FROM releases ORDER BY created_at DESC LIMIT 1')).rows[0]!.version;
  return { version, versionCode, report };
}

const releaseDeployProcedure: RehearsedProcedure = {
  name: 'release deploy → staged rollout to 100 %',
  forms: ['short', 'full'],
  announces: [],
  run: async (context) => {
    const troubleBefore = schedulerTrouble(context);
    const { stores } = context.deployment;
    const started = Date.now();
    const { version, versionCode } = await deployMinor(context);
    const deployedAfter = Date.now() - started;
    assert.equal(gitOf(stores.remote, 'tag', '--list', `v${version}`), `v${version}`, 'the annotated tag is on the remote');
    assert.deepEqual((await releaseRecord(context, version)).rollouts, { android: 'inProgress 5 %', ios: 'inProgress 1 %' }, 'the staged rollout began');
    assert.equal(stores.asc.phasedRelease(version)?.state, 'ACTIVE');
    context.note(`deployed ${version} (Play version code ${versionCode}); Play at 5 %, App Store phased release ACTIVE`);

    // Users on the new build, healthy: the gates have their sample and hold.
    context.traffic.appHeaders = (i) => ({ 'x-app-version': i % 2 === 0 ? version : FIRST_APP_VERSION });
    stores.sentry.setRelease(sentryReleaseOf(version), { sessions: 1_000, crashFreeRate: 0.998 });
    stores.sentry.setRelease(sentryReleaseOf(FIRST_APP_VERSION), { sessions: 8_000, crashFreeRate: 0.997 });
    await eventually(`Play at 100 % for ${version} (the schedulers advancing it)`, async () =>
      (await releaseRecord(context, version)).rollouts.android === 'completed 100 %' ? true : undefined,
    );
    const playDoneAfter = Date.now() - started;
    // Apple's clock: its phased release reaches day 7 and Apple completes it.
    stores.asc.setDay(version, 7);
    const done = await eventually(`release ${version} completed`, async () => {
      const record = await releaseRecord(context, version);
      return record.state === 'completed' ? record : undefined;
    });
    const completedAfter = Date.now() - started;
    assert.deepEqual(done.rollouts, { android: 'completed 100 %', ios: 'completed 100 %' });
    assert.deepEqual(playSteps(context, versionCode), ['5 %', '25 %', 'completed'], 'Play was moved through each step once');
    const advancedBy = loggedBy(context, new RegExp(`release ${version.replaceAll('.', '\\.')}: advanced`));
    const completedBy = loggedBy(context, new RegExp(`release ${version.replaceAll('.', '\\.')}: completed`));
    assert.equal(completedBy.length, 1, `one process completed the release (logged by ${completedBy.join(', ')})`);
    const { rows: audit } = await context.deployment.pool.query<{ action: string }>(
      "SELECT action FROM audit_log WHERE action IN ('release.advanced', 'release.completed') AND details->>'version' = $1 ORDER BY id",
      [version],
    );
    assert.equal(audit.filter((a) => a.action === 'release.completed').length, 1, 'the release was completed once');
    const status = await context.cli(['release', 'show', version, '--json']);
    exitsWith(status, 0, 'release show');
    assert.equal(jsonOf(status).release?.state ?? jsonOf(status).state, 'completed');
    context.traffic.appHeaders = () => ({ 'x-app-version': version });
    noNewSchedulerTrouble(context, troubleBefore);
    context.note(
      `deploy run ${(deployedAfter / 1000).toFixed(1)} s; Play at 100 % after ${(playDoneAfter / 1000).toFixed(1)} s, release completed after ${(completedAfter / 1000).toFixed(1)} s`,
    );
    context.note(
      `scheduler steps: ${advancedBy.length} advance(s) by ${[...new Set(advancedBy)].join(', ')}, completed by ${completedBy.join(', ')}; Play saw ${playSteps(context, versionCode).join(' → ')}`,
    );
  },
};

const releaseRollbackProcedure: RehearsedProcedure = {
  name: 'release rollback (Rollback Deployment)',
  forms: ['full'],
  announces: [],
  run: async (context) => {
    const troubleBefore = schedulerTrouble(context);
    const { stores, pool } = context.deployment;
    const stable = (await pool.query<{ version: string }>("SELECT version FROM releases WHERE state = 'completed' ORDER BY created_at DESC LIMIT 1")).rows[0]
      ?.version;
    assert.ok(stable, 'a completed release to roll back to (the deploy procedure leaves one)');
    const stableBuilds = (await pool.query<{ builds: Record<string, { id: string }> }>('SELECT builds FROM releases WHERE version = $1', [stable])).rows[0]!
      .builds;
    const { version } = await deployMinor(context);
    // The new version crashes: the gates see it on the next step and halt both stores with a page.
    context.traffic.appHeaders = (i) => ({ 'x-app-version': i % 2 === 0 ? version : stable });
    stores.sentry.setRelease(sentryReleaseOf(version), { sessions: 1_000, crashFreeRate: 0.9 });
    const halted = await eventually(`the gates to halt ${version}`, async () => {
      const record = await releaseRecord(context, version);
      return record.state === 'halted' ? record : undefined;
    });
    assert.deepEqual(halted.rollouts, { android: 'halted 5 %', ios: 'halted 1 %' });
    assert.equal(context.deployment.pagerDuty.incidents.get(`shipshape-release-${version}-gates`)?.status, 'triggered', 'the Application on-call was paged');

    const submitsBefore = (await stores.eas.calls()).filter((c) => c.argv[0] === 'submit').length;
    const devices = context.traffic.ledger.users.flatMap((user) => [...user.devices]);
    const rolledBack = await withApproval(context, ['release', 'rollback']);
    exitsWith(rolledBack, 0, 'release rollback');
    const submits = (await stores.eas.calls())
      .filter((c) => c.argv[0] === 'submit')
      .slice(submitsBefore)
      .map((c) => c.argv.slice(0, 5).join(' '));
    assert.deepEqual(
      submits,
      [`submit --platform ios --id ${stableBuilds.ios!.id}`, `submit --platform android --id ${stableBuilds.android!.id}`],
      `the builds of ${stable} were re-submitted`,
    );
    assert.equal((await releaseRecord(context, version)).state, 'rolled-back');
    assert.equal(stores.asc.phasedRelease(version)?.state, 'PAUSED');
    await eventually('both instances to show the rollback notice in /config', async () =>
      (await Promise.all(context.deployment.instances.map(async (i) => /rolling back/i.test(String((await config(i.url)).banner?.message ?? ''))))).every(
        Boolean,
      )
        ? true
        : undefined,
    );
    assert.equal(context.deployment.pagerDuty.incidents.get(`shipshape-release-${version}-rollback`)?.status, 'triggered');
    const unwarned = devices.filter(
      (device) => !context.deployment.expo.deliveries.some((d) => d.to === device && d.title === "We're rolling back the latest update"),
    );
    assert.deepEqual(unwarned, [], 'every device registered before the rollback got its push');
    await eventually('the rollback notice emails to be sent by the workers', async () => {
      const { rows } = await pool.query<{ status: string }>(
        "SELECT status FROM maintenance_notices WHERE subject = 'We are rolling back the latest app update'",
      );
      return rows.length > 0 && rows.every((row) => row.status === 'done') ? true : undefined;
    });
    noNewSchedulerTrouble(context, troubleBefore);
    context.note(`${version} halted by the gates, then rolled back to ${stable}: ${submits.length} re-submissions; exit ${rolledBack.code}`);
  },
};

/** What a device on the production channel is served (the update id), asking one instance. */
async function servedTo(url: string, clientId: string, currentUpdateId?: string): Promise<string> {
  const response = await fetchManifest(url, {
    platform: 'ios',
    runtimeVersion: RUNTIME_VERSION,
    channel: 'production',
    clientId,
    ...(currentUpdateId ? { currentUpdateId } : {}),
  });
  assert.equal(response.status, 200, `GET /updates/manifest answered ${response.status} ${JSON.stringify(response.error ?? {})}`);
  const manifest = partNamed(response, 'manifest');
  if (manifest) return String((JSON.parse(manifest.body) as { id: string }).id);
  return partNamed(response, 'directive') ? 'directive' : 'noUpdateAvailable';
}

async function launchAssetOf(url: string, clientId: string): Promise<{ url: string; hash: string }> {
  const response = await fetchManifest(url, { platform: 'android', runtimeVersion: RUNTIME_VERSION, channel: 'production', clientId });
  const manifest = partNamed(response, 'manifest');
  assert.ok(manifest, `a manifest part (status ${response.status})`);
  return (JSON.parse(manifest.body) as { launchAsset: { url: string; hash: string } }).launchAsset;
}

const updateRolloutProcedure: RehearsedProcedure = {
  name: 'update publish + rollout + rollback',
  forms: ['full'],
  announces: [],
  run: async (context) => {
    const troubleBefore = schedulerTrouble(context);
    const { stores, pool, instances } = context.deployment;
    const [baseline, candidate] = await Promise.all([makeExport(`baseline ${randomUUID()}`), makeExport(`candidate ${randomUUID()}`)]);
    try {
      const publish = async (dir: string, staged: boolean) => {
        const result = await context.cli([
          'update',
          'publish',
          dir,
          '--channel',
          'production',
          '--runtime-version',
          RUNTIME_VERSION,
          '--message',
          'rehearsal',
          ...(staged ? ['--staged'] : []),
          '--json',
        ]);
        exitsWith(result, 0, `update publish${staged ? ' --staged' : ''}`);
        return String(jsonOf(result).update.id);
      };
      const a = await publish(baseline.dir, false);
      const devices = Array.from({ length: 40 }, () => randomUUID());
      for (const instance of instances) assert.equal(await servedTo(instance.url, devices[0]!), a, `${instance.name} serves the released update`);
      // What the other instance names, this one serves: the files are in the shared UPDATES_STORAGE_URL.
      const launch = await launchAssetOf(instances[0].url, devices[0]!);
      const bytes = Buffer.from(await (await fetch(new URL(new URL(launch.url).pathname, instances[1].url))).arrayBuffer());
      assert.equal(base64UrlSha256(bytes), launch.hash, `${instances[1].name} serves the launch asset ${instances[0].name} named, byte for byte`);
      const b = await publish(candidate.dir, true);
      assert.equal(await servedTo(instances[1].url, devices[0]!), a, 'a staged update is served to no one');

      // The app as users run it: devices on the new update say so in x-update-id; Sentry has their sessions.
      context.traffic.appHeaders = (i) => ({ 'x-app-version': FIRST_APP_VERSION, 'x-update-id': i % 2 === 0 ? b : a });
      stores.sentry.setRelease(sentryUpdateReleaseOf(b), { sessions: 1_000, crashFreeRate: 0.998 });
      stores.sentry.setRelease(sentryUpdateReleaseOf(a), { sessions: 8_000, crashFreeRate: 0.997 });
      const rollout = await context.cli(['update', 'rollout', b, '--schedule', '10,50,100', '--every', '1s', '--min-sample', '10', '--json']);
      exitsWith(rollout, 0, 'update rollout');
      const rolloutId = String(jsonOf(rollout).rollout.id);
      const share = async () => (await Promise.all(devices.map((d, i) => servedTo(instances[i % 2]!.url, d)))).filter((id) => id === b).length;
      const early = await share();
      await eventually(`rollout ${rolloutId} completed (the schedulers advancing it)`, async () => {
        const { rows } = await pool.query<{ status: string }>('SELECT status FROM ota_rollouts WHERE id = $1', [rolloutId]);
        return rows[0]?.status === 'completed' ? true : undefined;
      });
      const { rows: steps } = await pool.query<{ action: string; percent: string }>(
        "SELECT action, details->>'percent' AS percent FROM audit_log WHERE action IN ('update.rollout.advanced', 'update.rollout.completed') AND details->>'rollout' = $1 ORDER BY id",
        [rolloutId],
      );
      assert.deepEqual(
        steps.map((s) => `${s.action.replace('update.rollout.', '')} ${s.percent}`),
        ['advanced 50', 'completed 100'],
        'each step taken once',
      );
      assert.equal(await share(), devices.length, 'every device is served the update once released');

      const rolledBack = await withApproval(context, ['update', 'rollback', b, '--reason', 'rehearsal: crash on launch']);
      exitsWith(rolledBack, 0, 'update rollback');
      for (const [i, instance] of instances.entries())
        assert.equal(await servedTo(instance.url, devices[i]!, b), a, `${instance.name} serves the release before again to a device running ${b}`);
      context.traffic.appHeaders = () => ({ 'x-app-version': FIRST_APP_VERSION, 'x-update-id': a });
      noNewSchedulerTrouble(context, troubleBefore);
      context.note(`update ${b}: ${early}/${devices.length} devices in the 10 % step, released to all by the schedulers, rolled back to ${a}`);
    } finally {
      await Promise.all([baseline.cleanup(), candidate.cleanup()]);
    }
  },
};

const ALL: readonly RehearsedProcedure[] = [
  backup,
  migration,
  killConnections,
  dbKill,
  emergency,
  cacheClear,
  gdprErasure,
  push,
  credentialRotation,
  releaseDeployProcedure,
  releaseRollbackProcedure,
  updateRolloutProcedure,
  maintenanceRun,
  restore,
];

export function proceduresFor(form: Form): RehearsedProcedure[] {
  return ALL.filter((procedure) => procedure.forms.includes(form));
}

export const procedureNames = ALL.map((procedure) => procedure.name);
