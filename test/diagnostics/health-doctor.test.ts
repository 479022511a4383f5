/**
 * `shipshape health` and `shipshape doctor` against a real API server and database, a fake
 * Sentry, and a real verified backup: healthy is exit 0; maintenance left on, a missing or
 * stale backup, a Sentry spike and too many connections are reported with what to do.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { shipshapeProfile } from '../../src/app-profile.ts';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { openDatabase } from '../../src/db/index.ts';
import { Migrator } from '../../src/db/migrator.ts';
import { setMaintenance } from '../../src/domain/app-state.ts';
import { runDoctor } from '../../src/ops/diagnostics/doctor.ts';
import { gatherHealth } from '../../src/ops/diagnostics/health.ts';
import { runProcedure } from '../../src/ops/engine/index.ts';
import { dbBackup } from '../../src/ops/procedures/db-backup.ts';
import { readConditions } from '../../src/ops/watchdog/conditions.ts';
import { startServer, type RunningServer } from '../../src/runtime/server.ts';
import { startFakeSentry, type FakeSentry } from '../fakes/sentry.ts';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import { runCli } from '../helpers/cli.ts';
import { BUSY_MACHINE_ENV, eventually } from '../helpers/patience.ts';
import { createStateDir } from '../helpers/postgres.ts';
import { clusterUnavailable, startThrowawayCluster } from '../helpers/throwaway-cluster.ts';
import { liveFixture, logger, parseJson, show, type LiveFixture } from '../helpers/live-operations.ts';

const SENTRY_TOKEN = 'sntrys_test_token_0123456789';
let fixture: LiveFixture;
let sentry: FakeSentry;
let api: RunningServer;
let env: Record<string, string>;
let config: Config;

before(async () => {
  fixture = await liveFixture();
  sentry = await startFakeSentry({ org: 'acme', token: SENTRY_TOKEN, acceptedPerHour: [...new Array<number>(23).fill(2), 3] });
  const state = await createStateDir();
  fixture.onCleanup(state.cleanup);
  const base = {
    DATABASE_URL: fixture.database.url,
    STATE_DIR: state.path,
    ADMIN_TOKEN,
    LOG_LEVEL: 'silent',
    SHIPSHAPE_OPERATOR: 'alice',
    APP_STATE_POLL_MS: '200',
    ...BUSY_MACHINE_ENV,
  };
  api = await startServer(loadConfig({ ...base, PORT: '0' }), logger, { migrate: false });
  env = { ...base, API_URL: api.url, SENTRY_API_URL: sentry.url, SENTRY_ORG: 'acme', SENTRY_TOKEN };
  config = loadConfig(env);
  const backup = await runProcedure(dbBackup, {}, { yes: true }, { config, logger });
  assert.equal(backup.exitCode, 0, show(backup));
});

after(async () => {
  await api?.close();
  await sentry?.close();
  await fixture?.cleanup();
});

async function withMaintenance<T>(fn: () => Promise<T>): Promise<T> {
  await setMaintenance(fixture.pool, { enabled: true, message: 'Back soon', setBy: 'test' });
  await apiAnswers(503);
  try {
    return await fn();
  } finally {
    await setMaintenance(fixture.pool, { enabled: false, setBy: 'test' });
    await apiAnswers(200);
  }
}

/** Waits until the API server has seen the maintenance switch (it polls and listens). */
async function apiAnswers(status: number): Promise<void> {
  await eventually(`GET /health answering ${status}`, async () => ((await fetch(`${api.url}/health`)).status === status ? true : undefined));
}

describe('health', () => {
  test('a working system is healthy: API, connections by state, metrics, Sentry and backup age', async () => {
    const report = await gatherHealth(config, logger);
    assert.equal(report.healthy, true, JSON.stringify(report.checks, null, 2));
    assert.deepEqual(
      report.checks.map((c) => [c.name, c.status]),
      [
        ['api', 'ok'],
        ['database', 'ok'],
        ['metrics', 'ok'],
        ['sentry', 'ok'],
        ['backup', 'ok'],
        ['jobs', 'ok'],
      ],
    );
    assert.match(report.checks[2]?.summary ?? '', /^last 5m across \d+ instance\(s\): .* req\/min, errors 0%, p95 [\d.]+ ms \(mean [\d.]+ ms\)/);
    assert.ok((report.database.connections?.byState.length ?? 0) > 0);
    assert.ok((report.database.connections?.maxConnections ?? 0) > 0);
    assert.match(report.checks[3]?.summary ?? '', /49 errors in 24 h, 3 this hour/);
    assert.match(report.checks[4]?.summary ?? '', /newest verified backup .* old/);
    const call = sentry.requests.at(-1);
    assert.equal(call?.authorization, `Bearer ${SENTRY_TOKEN}`);
    assert.equal(call?.query.get('statsPeriod'), '24h');
  });

  test('maintenance mode makes the system not healthy, with the way back', async () => {
    await withMaintenance(async () => {
      const report = await gatherHealth(config, logger);
      assert.equal(report.healthy, false);
      const apiCheck = report.checks.find((c) => c.name === 'api');
      assert.equal(apiCheck?.status, 'fail');
      assert.match(apiCheck?.summary ?? '', /in maintenance: "Back soon"/);
      assert.match(apiCheck?.remedy ?? '', /shipshape emergency enable/);
    });
  });

  test('a Sentry spike warns; Sentry refusing the token is unverified (not ok) without showing the token; neither fails', async () => {
    sentry.setAcceptedPerHour([...new Array<number>(23).fill(1), 40]);
    const spike = await gatherHealth(config, logger);
    assert.equal(spike.checks.find((c) => c.name === 'sentry')?.status, 'warn');
    assert.match(spike.checks.find((c) => c.name === 'sentry')?.summary ?? '', /spike/);
    assert.equal(spike.healthy, true);
    const badToken = await gatherHealth(loadConfig({ ...env, SENTRY_TOKEN: 'wrong-token-value' }), logger);
    const check = badToken.checks.find((c) => c.name === 'sentry');
    assert.equal(check?.status, 'unverified');
    assert.match(check?.summary ?? '', /HTTP 401.*SENTRY_TOKEN/);
    assert.equal(badToken.healthy, true);
    assert.equal(badToken.verified, false);
    assert.doesNotMatch(JSON.stringify(badToken), /wrong-token-value/);
    sentry.setAcceptedPerHour([...new Array<number>(23).fill(2), 3]);
  });

  test('no verified backup, an unreachable API and a wrong admin token fail', async () => {
    const state = await createStateDir();
    fixture.onCleanup(state.cleanup);
    const report = await gatherHealth(
      loadConfig({ ...env, STATE_DIR: state.path, API_URL: 'http://127.0.0.1:9', ADMIN_TOKEN: 'not-the-admin-token-xx' }),
      logger,
    );
    assert.equal(report.healthy, false);
    const status = Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
    assert.equal(status.backup, 'fail');
    assert.equal(status.api, 'fail');
    assert.equal(status.metrics, 'fail');
    const wrongToken = await gatherHealth(loadConfig({ ...env, ADMIN_TOKEN: 'not-the-admin-token-xx' }), logger);
    assert.match(wrongToken.checks.find((c) => c.name === 'metrics')?.remedy ?? '', /ADMIN_TOKEN/);
  });

  test('the CLI: a table and exit 0, --json, and --watch with --count printing each round', async () => {
    const table = await runCli(['health'], env);
    assert.equal(table.code, 0, table.stderr + table.stdout);
    assert.match(table.stdout, /check\s+status\s+detail/);
    assert.match(table.stdout, /Healthy\./);
    const watched = await runCli(['health', '--json', '--watch', '1s', '--count', '2'], env);
    assert.equal(watched.code, 0, watched.stderr);
    const rounds = watched.stdout.trim().split('\n').map(parseJson);
    assert.equal(rounds.length, 2);
    assert.ok(rounds.every((round) => round.healthy === true));
    const text = await runCli(['health', '--watch', '1s', '--count', '2'], env);
    assert.equal((text.stdout.match(/Healthy\./g) ?? []).length, 2, text.stdout);
  });

  test('without ADMIN_TOKEN the error rate and p95 could not be checked: "unverified", never ok, and the CLI exits 5', async () => {
    const { ADMIN_TOKEN: _token, ...withoutToken } = env;
    const report = await gatherHealth(loadConfig(withoutToken), logger);
    const metrics = report.checks.find((c) => c.name === 'metrics');
    assert.equal(metrics?.status, 'unverified');
    assert.match(metrics?.summary ?? '', /ADMIN_TOKEN is not set/);
    assert.equal(report.healthy, true);
    assert.equal(report.verified, false);
    const cli = await runCli(['health'], withoutToken);
    assert.equal(cli.code, 5, cli.stderr + cli.stdout);
    assert.match(cli.stdout, /metrics\s+UNVERIFIED\s+ADMIN_TOKEN is not set/);
    assert.match(cli.stdout, /Healthy as far as checked — unverified: metrics/);
    assert.doesNotMatch(cli.stdout, /^Healthy\.$/m);
  });

  test('the CLI refuses --count without --watch and a zero interval (exit 2), and exits 1 when not healthy', async () => {
    const count = await runCli(['health', '--count', '2'], env);
    assert.equal(count.code, 2);
    assert.match(count.stderr, /--count only applies with --watch/);
    const zero = await runCli(['health', '--watch', '0s'], env);
    assert.equal(zero.code, 2);
    const down = await runCli(['health', '--json'], { ...env, API_URL: 'http://127.0.0.1:9' });
    assert.equal(down.code, 1);
    assert.equal(parseJson(down.stdout).healthy, false);
  });
});

describe('doctor', () => {
  test('a healthy system has no findings (exit 0); slow queries without pg_stat_statements are unverified, never ok (exit 5)', async () => {
    const report = await runDoctor(config, logger);
    assert.equal(report.healthy, true, JSON.stringify(report.checks, null, 2));
    assert.deepEqual(
      report.checks.map((c) => c.name),
      ['connection count', 'slow queries', 'database size', 'long transactions', 'maintenance mode', 'backup freshness', 'pending migrations'],
    );
    const slow = report.checks.find((c) => c.name === 'slow queries');
    const cli = await runCli(['doctor'], env);
    assert.match(cli.stdout, /No findings/);
    if (slow?.status === 'unverified') {
      // This cluster has no pg_stat_statements preloaded: doctor cannot tell, and says so.
      assert.match(slow.detail, /^cannot tell: /);
      assert.equal(report.verified, false);
      assert.equal(cli.code, 5, cli.stdout + cli.stderr);
      assert.match(cli.stdout, /unverified\s+slow queries: cannot tell/);
      assert.match(cli.stdout, /Unverified \(could not be checked\): slow queries/);
    } else {
      assert.equal(slow?.status, 'ok');
      assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    }
  });

  test('maintenance left on and a missing backup are findings with the command that fixes each (exit 1)', async () => {
    const state = await createStateDir();
    fixture.onCleanup(state.cleanup);
    await withMaintenance(async () => {
      const cli = await runCli(['doctor', '--json'], { ...env, STATE_DIR: state.path });
      assert.equal(cli.code, 1, cli.stderr);
      const report = parseJson(cli.stdout);
      const checks = Array.isArray(report.checks)
        ? report.checks.map((c: unknown) => (typeof c === 'object' && c !== null ? Object.fromEntries(Object.entries(c)) : {}))
        : [];
      const maintenance = checks.find((c) => c.name === 'maintenance mode');
      assert.equal(maintenance?.status, 'finding');
      assert.deepEqual(maintenance?.commands, ['shipshape emergency enable']);
      const backup = checks.find((c) => c.name === 'backup freshness');
      assert.equal(backup?.status, 'finding');
      assert.deepEqual(backup?.commands, ['shipshape db backup']);
    });
  });

  test('on the embedded database the server-only checks are skipped and pending migrations found', async () => {
    const state = await createStateDir();
    fixture.onCleanup(state.cleanup);
    const cli = await runCli(['doctor'], { STATE_DIR: state.path });
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stdout, /skipped\s+connection count: does not apply/);
    assert.match(cli.stdout, /FINDING\s+pending migrations/);
    assert.match(cli.stdout, /run: shipshape db migrate up --backup/);
  });
});

describe('connections near the limit', { skip: clusterUnavailable() }, () => {
  test('are a finding for doctor, a failure for health and a breach for the watchdog, all from 80 %', async () => {
    const cluster = await startThrowawayCluster({ settings: { max_connections: '12', superuser_reserved_connections: '3' } });
    const clients: pg.Client[] = [];
    try {
      const url = await cluster.createDatabase('app');
      const pool = new pg.Pool({ connectionString: url, max: 1 });
      const outcome = await new Migrator(pool, shipshapeProfile.migrations, logger).up();
      await pool.end();
      if (outcome.error) throw outcome.error;
      for (let i = 0; i < 7; i++) {
        const client = new pg.Client({ connectionString: url, application_name: `leak-${i}` });
        await client.connect();
        clients.push(client);
      }
      const state = await createStateDir();
      fixture.onCleanup(state.cleanup);
      const clusterConfig = loadConfig({ DATABASE_URL: url, STATE_DIR: state.path, LOG_LEVEL: 'silent', DATABASE_POOL_MAX: '1' });
      const doctor = await runDoctor(clusterConfig, logger);
      const check = doctor.checks.find((c) => c.name === 'connection count');
      assert.equal(check?.status, 'finding', JSON.stringify(check));
      assert.match(check?.remedy ?? '', /connection pooling/);
      assert.ok(check?.commands?.some((command) => command.startsWith('shipshape db diagnose')));
      const health = await gatherHealth(clusterConfig, logger);
      assert.equal(health.checks.find((c) => c.name === 'database')?.status, 'fail');
      const database = await openDatabase(clusterConfig, logger);
      try {
        const reading = (await readConditions(clusterConfig, database)).find((r) => r.condition === 'connections');
        assert.equal(reading?.state, 'breached', reading?.summary);
        assert.match(reading?.summary ?? '', /of 9 usable connections/);
      } finally {
        await database.close();
      }
    } finally {
      for (const client of clients) await client.end().catch(() => undefined);
      await cluster.stop();
    }
  });
});
