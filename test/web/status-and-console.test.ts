/**
 * The status page's figures and cost, and the console's sign-in and form protections, over
 * plain HTTP (test/web/browser.test.ts covers the same pages in Chromium).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { issueAdminToken, revokeAdminToken } from '../../src/domain/admin-tokens.ts';
import { setBanner, setMaintenance } from '../../src/domain/app-state.ts';
import { queryAudit } from '../../src/domain/audit-query.ts';
import { recordMaintenanceNotice } from '../../src/domain/maintenance-notices.ts';
import { loadRun } from '../../src/ops/engine/index.ts';
import { listSchedules } from '../../src/scheduler/schedules.ts';
import { ADMIN_TOKEN, startTestApi, type TestApi } from '../helpers/api.ts';
import { runCli, spawnCli, type RunningCli } from '../helpers/cli.ts';
import { eventually } from '../helpers/patience.ts';

describe('status page', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(async () => api?.close());

  const status = async () => (await api.request('GET', '/status.json')).json;

  test('it follows maintenance and read-only mode from the live state, and answers while the app is closed', async () => {
    const pool = api.server.database.pool;
    assert.equal((await status()).state, 'operational');
    await setMaintenance(pool, { enabled: true, mode: 'read-only', message: 'Restoring a backup', setBy: 'operator:ada' });
    await eventually('read-only on the status page', async () => ((await status()).state === 'read-only' ? true : undefined));
    await setMaintenance(pool, { enabled: true, message: 'Upgrading the database', setBy: 'operator:ada' });
    await eventually('maintenance on the status page', async () => ((await status()).state === 'maintenance' ? true : undefined));
    assert.equal((await api.request('GET', '/tasks')).status, 503, 'the app itself is closed');
    const page = await api.request('GET', '/status');
    assert.equal(page.status, 200);
    assert.match(page.text, /Down for maintenance/);
    assert.match(page.text, /Upgrading the database/);
    await setMaintenance(pool, { enabled: false, setBy: 'operator:ada' });
    await eventually('operational again', async () => ((await status()).state === 'operational' ? true : undefined));
  });

  test('it shows the announced window and banner, and 90-day uptime from the minute samples', async () => {
    const pool = api.server.database.pool;
    const startsAt = new Date(Date.now() + 3 * 86_400_000);
    await recordMaintenanceNotice(pool, {
      windowStartsAt: startsAt,
      windowEndsAt: new Date(startsAt.getTime() + 7_200_000),
      subject: 'Monthly maintenance',
      body: 'We will be down for two hours.',
      createdBy: 'operator:ada',
    });
    // Two days ago: every minute sampled but 144 in the middle of the day (10 %), which count as down.
    await pool.query(
      `INSERT INTO status_samples (minute, state)
       SELECT m, 'operational' FROM generate_series(date_trunc('day', now() - interval '2 days'), date_trunc('day', now() - interval '2 days') + interval '1 day' - interval '1 minute', interval '1 minute') AS m
        WHERE extract(hour FROM m) * 60 + extract(minute FROM m) NOT BETWEEN 600 AND 743
       ON CONFLICT DO NOTHING`,
    );
    // A banner change is an app-state change, which makes the board read its figures again. The
    // banner itself shows at once (it is app state); the figures follow when that read is done.
    await setBanner(pool, { message: 'Maintenance on Sunday 02:00-04:00', until: null, setBy: 'operator:ada' });
    const day = new Date(Date.now() - 2 * 86_400_000).toISOString().slice(0, 10);
    const seen = await eventually('the window and the sampled day on the status page', async () => {
      const json = await status();
      return json.maintenanceWindow && json.banner && json.uptime.days.some((d: { day: string }) => d.day === day) ? json : undefined;
    });
    assert.equal(seen.maintenanceWindow.subject, 'Monthly maintenance');
    assert.equal(seen.banner.message, 'Maintenance on Sunday 02:00-04:00');
    const sampled = seen.uptime.days.find((d: { day: string }) => d.day === day);
    assert.ok(sampled, JSON.stringify(seen.uptime));
    assert.ok(Math.abs(sampled.percent - 90) < 0.01, `90 % that day, got ${sampled.percent}`);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    assert.equal(seen.uptime.days.find((d: { day: string }) => d.day === yesterday)?.percent, 0, 'a day no instance sampled at all is a day down');
    const html = (await api.request('GET', '/status')).text;
    assert.match(html, /Monthly maintenance/);
    assert.match(html, /Maintenance on Sunday 02:00-04:00/);
  });

  test('reading it costs no query: a hundred reads, at most one refresh of its figures', async () => {
    const pool = api.server.database.pool;
    const original = pool.query.bind(pool);
    let reads = 0;
    // Counting the board's own statement (runs mirror), whatever else the server does meanwhile.
    pool.query = ((text: string, values?: unknown[]) => {
      if (typeof text === 'string' && text.includes('shipshape.runs')) reads++;
      return original(text, values);
    }) as typeof pool.query;
    try {
      for (let i = 0; i < 100; i++) assert.equal((await api.request('GET', i % 2 ? '/status' : '/status.json')).status, 200);
    } finally {
      pool.query = original;
    }
    assert.ok(reads <= 1, `status reads queried the database ${reads} times`);
  });
});

describe('operator console sign-in', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ env: { TRUST_PROXY: 'true' } });
  });
  after(async () => api?.close());

  async function post(path: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
    const response = await fetch(`${api.url}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(fields).toString(),
    });
    return { status: response.status, headers: response.headers, text: await response.text() };
  }
  async function signIn(operator: string, token = ADMIN_TOKEN, headers: Record<string, string> = {}) {
    const answer = await post('/console/login', { operator, token }, headers);
    const cookie = answer.headers.get('set-cookie') ?? '';
    return { ...answer, cookie, session: cookie.split(';')[0] ?? '' };
  }
  async function get(path: string, session: string) {
    const response = await fetch(`${api.url}${path}`, { redirect: 'manual', headers: { cookie: session } });
    return { status: response.status, location: response.headers.get('location'), text: await response.text() };
  }

  test('a wrong token is refused and audited; a right one gives a strict cookie, never the token', async () => {
    const wrong = await signIn('mallory', 'not-the-admin-token-at-all');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.cookie, '');
    const failed = await queryAudit(api.server.database.pool, { action: 'console.login.failed', limit: 5 });
    assert.equal(failed[0]?.actor, 'operator:mallory');

    const plain = await signIn('ada');
    assert.equal(plain.status, 303);
    assert.match(plain.cookie, /HttpOnly/);
    assert.match(plain.cookie, /SameSite=Strict/);
    assert.match(plain.cookie, /Path=\/console/);
    assert.doesNotMatch(plain.cookie, /Secure/, 'plain http: a Secure cookie would never come back');
    assert.ok(!plain.cookie.includes(ADMIN_TOKEN));
    const secure = await signIn('ada', ADMIN_TOKEN, { 'x-forwarded-proto': 'https' });
    assert.match(secure.cookie, /; Secure/);

    const runs = await get('/console', plain.session);
    assert.equal(runs.status, 200);
    assert.ok(!runs.text.includes(ADMIN_TOKEN));
    assert.equal((await get('/console', '')).location, '/console/login');
  });

  test('forms need the session CSRF token and this site; sign-out ends the session', async () => {
    const { session } = await signIn('ada');
    const page = await get('/console', session);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1];
    assert.ok(csrf);
    assert.equal((await post('/console/logout', {}, { cookie: session })).status, 403, 'no CSRF token');
    assert.equal((await post('/console/logout', { csrf: 'x'.repeat(43) }, { cookie: session })).status, 403, 'a wrong one');
    assert.equal((await post('/console/logout', { csrf }, { cookie: session, 'sec-fetch-site': 'cross-site' })).status, 403, 'from another site');
    const out = await post('/console/logout', { csrf }, { cookie: session });
    assert.equal(out.status, 303);
    assert.equal((await get('/console', session)).location, '/console/login');
  });

  test('pausing a schedule from the console goes through the scheduler and is audited under the operator name', async () => {
    const { session } = await signIn('ada');
    const page = await get('/console/schedules', session);
    assert.equal(page.status, 200);
    assert.match(page.text, /daily-backup/);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? '';
    const paused = await post('/console/schedules/daily-backup/pause', { csrf }, { cookie: session });
    assert.equal(paused.status, 303);
    const schedules = await listSchedules(api.server.database.pool);
    assert.equal(schedules.find((s) => s.name === 'daily-backup')?.paused, true);
    const audit = await queryAudit(api.server.database.pool, { action: 'schedule.paused', limit: 1 });
    assert.equal(audit[0]?.actor, 'operator:ada');
    assert.equal((await get('/console/schedules/daily-backup/nonsense', session)).status, 404);
    assert.equal((await post('/console/schedules/daily-backup/resume', { csrf }, { cookie: session })).status, 303);
  });

  test('refusing a waiting run from the console ends it through the engine, journaled and audited under the operator name', async () => {
    const env = { DATABASE_URL: api.config.databaseUrl ?? '', STATE_DIR: api.config.stateDir, API_URL: api.url, ADMIN_TOKEN, SHIPSHAPE_OPERATOR: 'ada' };
    const requested = await runCli(['emergency', 'disable', '--message', 'Not really', '--yes', '--json'], env);
    assert.equal(requested.code, 3, requested.stdout + requested.stderr);
    const runId = /(r-\d{8}-\d{6}-[0-9a-f]{4})/.exec(requested.stdout)?.[1] ?? '';
    const { session } = await signIn('grace');
    const page = await get(`/console/runs/${runId}`, session);
    assert.match(page.text, /Refuse as grace/);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? '';
    assert.equal((await post(`/console/runs/${runId}/refuse`, { reason: 'no' }, { cookie: session })).status, 403, 'no CSRF token');
    const refused = await post(`/console/runs/${runId}/refuse`, { csrf, reason: 'not during the sale' }, { cookie: session });
    assert.equal(refused.status, 303);
    const after = await get(`/console/runs/${runId}`, session);
    assert.match(after.text, /id="run-state">failed</);
    assert.match(after.text, /refused by grace: not during the sale/);
    assert.doesNotMatch(after.text, /Refuse as/);
    const shown = await runCli(['runs', 'show', runId, '--json'], env);
    assert.match(shown.stdout, /SHIP_ERR_APPROVAL_REFUSED/, '`shipshape runs show` reads the same refusal');
    const audit = await queryAudit(api.server.database.pool, { action: 'console.run.refused', limit: 1 });
    assert.equal(audit[0]?.actor, 'operator:grace');
    assert.equal(audit[0]?.details.reason, 'not during the sale');
    assert.equal((await post(`/console/runs/${runId}/refuse`, { csrf, reason: 'again' }, { cookie: session })).status, 400, 'a run no longer waiting');
  });

  test('--wait-for-approval keeps the requester waiting until a refusal (exit 3 naming who and why); Ctrl-C leaves the run waiting; `runs resume --wait-for-approval` goes ahead once approved', async () => {
    const env = { DATABASE_URL: api.config.databaseUrl ?? '', STATE_DIR: api.config.stateDir, API_URL: api.url, ADMIN_TOKEN, SHIPSHAPE_OPERATOR: 'ada' };
    const waitingRun = async (cli: RunningCli) => {
      let stderr = '';
      cli.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      return eventually('the CLI to say it waits', async () => /Waiting for another operator to approve run (r-\d{8}-\d{6}-[0-9a-f]{4})/.exec(stderr)?.[1]);
    };
    const refusedCli = spawnCli(['emergency', 'disable', '--message', 'Not really', '--yes', '--wait-for-approval'], env);
    const runId = await waitingRun(refusedCli);
    const refusal = await runCli(['refuse', runId, '--reason', 'not during the sale'], { ...env, SHIPSHAPE_OPERATOR: 'grace' });
    assert.equal(refusal.code, 0, refusal.stdout + refusal.stderr);
    assert.match(refusal.stdout, /Refused run/);
    const refused = await refusedCli.done;
    assert.equal(refused.code, 3, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /refused by grace: not during the sale/);

    const stoppedCli = spawnCli(['emergency', 'disable', '--message', 'Not really', '--yes', '--wait-for-approval'], env);
    const stoppedId = await waitingRun(stoppedCli);
    stoppedCli.child.kill('SIGINT');
    const stopped = await stoppedCli.done;
    assert.equal(stopped.code, 3, stopped.stdout + stopped.stderr);
    assert.match(stopped.stderr, /Stopped waiting/);
    assert.equal((await loadRun(api.config.stateDir, stoppedId)).state, 'awaiting-approval');

    // Later she waits again with `runs resume --wait-for-approval`; an approval from the CLI lets it go ahead.
    const resumedCli = spawnCli(['runs', 'resume', stoppedId, '--yes', '--wait-for-approval'], env);
    assert.equal(await waitingRun(resumedCli), stoppedId);
    const approval = await runCli(['approve', stoppedId], { ...env, SHIPSHAPE_OPERATOR: 'grace' });
    assert.equal(approval.code, 0, approval.stdout + approval.stderr);
    const resumed = await resumedCli.done;
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    assert.equal((await loadRun(api.config.stateDir, stoppedId)).state, 'succeeded');
    // Leave the service as the other tests expect it.
    const enabled = await runCli(['emergency', 'enable', '--approved-by', 'grace', '--yes'], { ...env, SHIPSHAPE_ALLOW_INLINE_APPROVAL: 'true' });
    assert.equal(enabled.code, 0, enabled.stdout + enabled.stderr);
  });

  test('verifying a backup from the console records the verification the CLI shows', async () => {
    const env = { DATABASE_URL: api.config.databaseUrl ?? '', STATE_DIR: api.config.stateDir, API_URL: api.url, ADMIN_TOKEN, SHIPSHAPE_OPERATOR: 'ada' };
    const backup = await runCli(['db', 'backup', '--compression', '0', '--yes', '--json'], env);
    assert.equal(backup.code, 0, backup.stdout + backup.stderr);
    const { session } = await signIn('ada');
    const before = await get('/console/backups', session);
    const backupId = /<td>(b-\d{8}-\d{6}-[a-z0-9_]+(?:-\d+)?)<\/td>/.exec(before.text)?.[1];
    assert.ok(backupId, before.text);
    const csrf = /name="csrf" value="([^"]+)"/.exec(before.text)?.[1] ?? '';
    assert.equal((await post(`/console/backups/${backupId}/verify`, { csrf }, { cookie: session })).status, 303);
    const after = await get('/console/backups', session);
    assert.match(after.text, /ok at \d{4}-/);
    const listed = await runCli(['db', 'backups', '--json'], env);
    assert.match(listed.stdout, /"verified": "yes, re-checked \d{4}-/, '`shipshape db backups` sees the re-check made from the console');
    const audit = await queryAudit(api.server.database.pool, { action: 'backup.verified', limit: 1 });
    assert.equal(audit[0]?.actor, 'operator:ada');
    assert.equal(audit[0]?.details.ok, true);
  });

  test('a restore started from the console goes through the engine as the operator and stops awaiting approval, restoring nothing', async () => {
    const env = { DATABASE_URL: api.config.databaseUrl ?? '', STATE_DIR: api.config.stateDir, API_URL: api.url, ADMIN_TOKEN, SHIPSHAPE_OPERATOR: 'ada' };
    const backup = await runCli(['db', 'backup', '--compression', '0', '--yes', '--json'], env);
    assert.equal(backup.code, 0, backup.stdout + backup.stderr);
    const backupId = /"backupId": "([^"]+)"/.exec(backup.stdout)?.[1] ?? /(b-\d{8}-\d{6}-[a-z0-9_]+(?:-\d+)?)/.exec(backup.stdout)?.[1] ?? '';
    assert.ok(backupId, backup.stdout);
    const { session } = await signIn('ada');
    const page = await get('/console/backups', session);
    assert.match(page.text, new RegExp(`<option value="${backupId}"`));
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? '';
    const database = new URL(api.config.databaseUrl ?? '').pathname.slice(1);

    const mistyped = await post('/console/restore', { csrf, backup: backupId, confirm: 'not-the-name' }, { cookie: session });
    assert.equal(mistyped.status, 422);
    assert.match(mistyped.text, /type the database name exactly/);
    assert.equal((await post('/console/restore', { backup: backupId, confirm: database }, { cookie: session })).status, 403, 'no CSRF token');

    const started = await post('/console/restore', { csrf, backup: backupId, confirm: database }, { cookie: session });
    assert.equal(started.status, 303, started.text);
    const runId = /\/console\/runs\/(r-[0-9a-f-]+)$/.exec(started.headers.get('location') ?? '')?.[1] ?? '';
    assert.ok(runId, started.headers.get('location') ?? '');
    const run = await loadRun(api.config.stateDir, runId);
    assert.equal(run.state, 'awaiting-approval');
    assert.equal(run.created.operator, 'ada');
    assert.equal(run.created.procedure.command, 'db restore');
    assert.ok(
      run.steps.every((step) => step.status === 'pending'),
      'nothing restored',
    );
    assert.ok(!(await get(`/console/runs/${runId}`, session)).text.includes('Approve as'), 'ada may not approve her own restore');
    const audit = await queryAudit(api.server.database.pool, { action: 'console.restore.requested', limit: 1 });
    assert.equal(audit[0]?.actor, 'operator:ada');
    assert.equal(audit[0]?.details.runId, runId);
  });

  test('the health page charts the last hour of request metrics against the runbook thresholds', async () => {
    const buckets = Array.from({ length: 20 }, (_, i) => (i === 12 ? 40 : 0));
    await api.server.database.pool.query(
      `INSERT INTO request_metrics (instance_id, period_start, period_end, requests, errors, duration_ms_sum, latency_buckets)
       VALUES ('chart-test', now() - interval '10 minutes', now() - interval '9 minutes', 40, 2, 24000, $1::int[])`,
      [buckets],
    );
    const { session } = await signIn('ada');
    const page = await get('/console/health', session);
    assert.equal(page.status, 200);
    assert.match(page.text, /<svg[^>]*aria-label="Requests per minute, last hour"/);
    assert.match(page.text, /Error rate \(highest 5\.00 %, runbook threshold 0\.10 %\)/);
    assert.match(page.text, /p95 response time \(highest \d+ ms, runbook threshold 500 ms\)/);
    assert.match(page.text, /id="doctor"/);
  });

  test('revoking the admin token a session came from ends the session', async () => {
    const pool = api.server.database.pool;
    const issued = await issueAdminToken(pool, { label: 'console test', createdBy: 'test' });
    const { session, status } = await signIn('bob', issued.token);
    assert.equal(status, 303);
    assert.equal((await get('/console', session)).status, 200);
    await revokeAdminToken(pool, issued.record.id, 'test');
    assert.equal((await get('/console', session)).location, '/console/login');
  });
});
