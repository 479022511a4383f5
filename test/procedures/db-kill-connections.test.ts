/**
 * `shipshape db kill-connections` against a real PostgreSQL database with the API running on
 * it: other sessions are terminated and reported, clients that reconnect are caught, the warning banner goes up
 * (without locking users out) and comes down, an interrupted warning terminates nobody, and
 * the embedded database is refused plainly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { shipshapeProfile } from '../../src/app-profile.ts';
import { loadConfig } from '../../src/config/index.ts';
import { Migrator } from '../../src/db/migrator.ts';
import { readAppState, setBanner, type AppState } from '../../src/domain/app-state.ts';
import { registerDevice } from '../../src/domain/devices.ts';
import { createUser } from '../../src/domain/users.ts';
import { createLogger } from '../../src/log.ts';
import { runProcedure, type EngineDeps, type RunReport } from '../../src/ops/engine/index.ts';
import { dbKillConnections } from '../../src/ops/procedures/db-kill-connections.ts';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { runCli } from '../helpers/cli.ts';
import { eventually } from '../helpers/patience.ts';
import { ADMIN_URL, createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';

const logger = createLogger('silent');
let database: TestDatabase;
let expo: FakeExpo;
/** The API on the same database, as in production: the kill terminates its sessions too, and the run checks that it answers again. */
let api: TestApi;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  database = await createTestDatabase();
  expo = await startFakeExpo();
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  try {
    const outcome = await new Migrator(pool, shipshapeProfile.migrations, logger).up();
    if (outcome.error) throw outcome.error;
    const user = await createUser(pool, { email: 'warned@example.com', password: 'correct horse battery' });
    await registerDevice(pool, user.id, { token: 'ExponentPushToken[warned-device]', platform: 'ios' });
  } finally {
    await pool.end();
  }
  api = await startTestApi({ env: { DATABASE_URL: database.url } });
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await api.close();
  await expo.close();
  await database.drop();
});

async function deps(overrides: Partial<EngineDeps> = {}, env: Record<string, string> = {}): Promise<EngineDeps> {
  const state = await createStateDir();
  cleanups.push(state.cleanup);
  const config = loadConfig({
    DATABASE_URL: database.url,
    STATE_DIR: state.path,
    SHIPSHAPE_OPERATOR: 'alice',
    LOG_LEVEL: 'silent',
    EXPO_PUSH_URL: expo.pushUrl,
    API_URL: api.url,
    ...env,
  });
  return { config, logger, ...overrides };
}

/** A session on the test database that stays open until terminated (and never crashes the test). */
async function victim(applicationName: string, url = database.url): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  client.on('error', () => undefined);
  await client.connect();
  cleanups.push(() => client.end().catch(() => undefined));
  return client;
}

async function pidOf(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return rows[0]?.pid ?? 0;
}

async function isAlive(client: pg.Client): Promise<boolean> {
  return client.query('SELECT 1').then(
    () => true,
    () => false,
  );
}

function stepOutput(report: RunReport, id: string) {
  const step = report.steps.find((candidate) => candidate.id === id);
  assert.ok(step, `no step ${id} in the report`);
  return step.output ?? {};
}

async function withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function appState(): Promise<AppState> {
  return withClient(readAppState);
}

// The tests share one database and terminate each other's sessions, so they run in order.
describe('db kill-connections', { concurrency: false }, () => {
  test('a dry run shows the exact SQL and who is connected, and terminates nobody', async () => {
    const bystander = await victim('dry-run-bystander');
    const report = await runProcedure(dbKillConnections, {}, { dryRun: true }, await deps());
    assert.equal(report.exitCode, 0, report.error?.message);
    assert.ok(report.steps.find((s) => s.id === 'terminate')?.describe.some((line) => line.includes('pg_terminate_backend')));
    assert.ok(report.steps.find((s) => s.id === 'terminate')?.irreversible);
    const connected = report.prerequisites.find((c) => c.name === 'who is connected now');
    assert.match(connected?.detail ?? '', /dry-run-bystander/);
    assert.ok(await isAlive(bystander));
  });

  test('terminates every other session of the database, reports each, and leaves other databases alone', async () => {
    const victims = [await victim('victim-1'), await victim('victim-2'), await victim('victim-3')];
    const pids = await Promise.all(victims.map(pidOf));
    const elsewhere = await victim('other-database', ADMIN_URL);

    const report = await runProcedure(dbKillConnections, {}, { yes: true, yesIrreversible: true }, await deps());

    assert.equal(report.exitCode, 0, report.error?.message);
    assert.equal(report.state, 'succeeded');
    for (const client of victims) assert.equal(await isAlive(client), false);
    assert.ok(await isAlive(elsewhere), 'a session on another database must survive');

    const output = stepOutput(report, 'terminate');
    const disconnected = Array.isArray(output.disconnected) ? output.disconnected : [];
    for (const [index, pid] of pids.entries()) {
      const entry = disconnected.find((item) => typeof item === 'object' && item !== null && !Array.isArray(item) && item.pid === pid);
      assert.ok(entry && typeof entry === 'object' && !Array.isArray(entry), `pid ${pid} is reported`);
      assert.equal(entry.applicationName, `victim-${index + 1}`);
      assert.equal(entry.outcome, 'terminated');
      assert.equal(entry.user, 'postgres');
      assert.equal(entry.clientAddr, '127.0.0.1');
      assert.ok(typeof entry.state === 'string');
    }
    const verified = report.verification.find((c) => c.name === 'every session that was connected is gone');
    assert.equal(verified?.ok, true);
    assert.match(verified?.detail ?? '', /victim-1/);
    const answers = report.verification.find((c) => c.name === 'the API answers again');
    assert.equal(answers?.ok, true, answers?.detail);
  });

  test('a client that reconnects at once is left connected and reported as connected since, not chased', async () => {
    const replacements: pg.Client[] = [];
    const connect = async (): Promise<pg.Client> => {
      const client = new pg.Client({ connectionString: database.url, application_name: 'eager-pool' });
      // Like a pool refilling itself.
      client.on('error', () => void connect().then((next) => replacements.push(next)));
      await client.connect();
      cleanups.push(() => client.end().catch(() => undefined));
      return client;
    };
    const original = await connect();

    const report = await runProcedure(dbKillConnections, {}, { yes: true, yesIrreversible: true }, await deps());

    assert.equal(report.exitCode, 0, report.error?.message);
    assert.equal(await isAlive(original), false, 'the session that was connected was terminated');
    const [replacement] = await eventually('the eager pool to reconnect', async () => (replacements.length > 0 ? replacements : undefined));
    assert.ok(replacement && (await isAlive(replacement)), 'the reconnection is not chased');
    const gone = report.verification.find((check) => check.name === 'every session that was connected is gone');
    assert.equal(gone?.ok, true);
  });

  test('--warn warns with a banner (users are not locked out) and a push before the kill, then puts back the banner it replaced', async () => {
    const announced = { message: 'Maintenance on Sunday at 2:00.', until: new Date(Date.now() + 3_600_000), setBy: 'maintenance-notice:test' };
    await withClient((client) => setBanner(client, announced));
    const deliveriesBefore = expo.deliveriesTo('ExponentPushToken[warned-device]');
    const run = runProcedure(dbKillConnections, { warn: '2s' }, { yes: true, yesIrreversible: true }, await deps());
    let seen: AppState | undefined;
    let settled = false;
    void run.finally(() => (settled = true));
    while (!settled && seen === undefined) {
      const now = await appState().catch(() => undefined);
      if (now?.banner?.message !== undefined && now.banner.message !== announced.message) seen = now;
      else await sleep(50);
    }
    const report = await run;

    assert.equal(report.exitCode, 0, report.error?.message);
    assert.equal(seen?.banner?.message, 'Maintenance starts in 2 seconds.');
    assert.equal(seen?.maintenance.enabled, false, 'a warning, not maintenance mode');
    assert.equal(expo.deliveriesTo('ExponentPushToken[warned-device]'), deliveriesBefore + 1);
    assert.equal(stepOutput(report, 'end-warning').restored, true);
    const after = await appState();
    assert.equal(after.banner?.message, announced.message);
    assert.equal(after.banner?.setBy, announced.setBy);
    await withClient((client) => setBanner(client, { message: null, until: null, setBy: 'test' }));
  });

  test('interrupting the warning takes the banner down and terminates nobody (exit 1)', async () => {
    const bystander = await victim('patient-user');
    const controller = new AbortController();
    const run = runProcedure(dbKillConnections, { warn: '1h' }, { yes: true, yesIrreversible: true }, await deps({ signal: controller.signal }));
    let settled = false;
    void run.finally(() => (settled = true));
    while (!settled && !(await appState().catch(() => undefined))?.banner) await sleep(50);
    controller.abort(new Error('operator pressed Ctrl-C'));
    const report = await run;

    assert.equal(report.exitCode, 1, report.error?.message);
    assert.equal(report.state, 'rolled-back');
    assert.ok(['pending', 'skipped'].includes(report.steps.find((s) => s.id === 'terminate')?.status ?? ''), 'terminate never ran');
    assert.equal((await appState()).banner, null);
    assert.ok(await isAlive(bystander));
  });

  test('a warning that is not a duration is a usage error naming --warn', async () => {
    const report = await runProcedure(dbKillConnections, { warn: '5' }, { yes: true, yesIrreversible: true, fieldLabel: (f) => `--${f}` }, await deps());
    assert.equal(report.exitCode, 2);
    assert.match(report.error?.message ?? '', /--warn: "5" is not a duration/);
  });

  test('on the embedded database it says plainly that it does not apply, and exits 2 (API and CLI)', async () => {
    const state = await createStateDir();
    cleanups.push(state.cleanup);
    const config = loadConfig({ STATE_DIR: state.path, SHIPSHAPE_OPERATOR: 'alice', LOG_LEVEL: 'silent' });
    const report = await runProcedure(dbKillConnections, {}, { yes: true, yesIrreversible: true }, { config, logger });
    assert.equal(report.exitCode, 2);
    assert.equal(report.error?.code, 'SHIP_ERR_NOT_SUPPORTED_EMBEDDED');
    assert.match(report.error?.message ?? '', /single backend/);

    const cli = await runCli(['db', 'kill-connections', '--yes', '--yes-irreversible'], { STATE_DIR: state.path });
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(cli.stderr, /error\[SHIP_ERR_NOT_SUPPORTED_EMBEDDED\]: `shipshape db kill-connections` does not apply here: the embedded database/);
  });
});
