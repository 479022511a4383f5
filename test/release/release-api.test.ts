/**
 * What the API adds for releases: admins read the release records (`GET /admin/releases`,
 * `/admin/releases/:version`), and `/metrics` breaks the API error rate down by the app version
 * the app sends in `X-App-Version` — the figure the release health gates compare.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createRelease, recordBuild } from '../../src/domain/releases.ts';
import { ADMIN_TOKEN, startTestApi, type TestApi } from '../helpers/api.ts';
import { call } from '../helpers/http-call.ts';

let api: TestApi;

before(async () => {
  api = await startTestApi();
  const { pool } = api.server.database;
  await createRelease(pool, {
    version: '3.1.0',
    gitTag: 'v3.1.0',
    gitCommit: null,
    bump: 'minor',
    controlVersion: '3.0.4',
    runId: 'r-1',
    createdBy: 'operator:alice',
  });
  await recordBuild(pool, '3.1.0', 'android', { id: 'build-a', status: 'FINISHED', buildVersion: '310' });
});

after(async () => {
  await api?.close();
});

test('admins read the release records; others are refused and a malformed version is bad input', async () => {
  const list = await call(api.url, 'GET', '/admin/releases?limit=5', { token: ADMIN_TOKEN });
  assert.equal(list.status, 200);
  assert.deepEqual(
    list.json.releases.map((r: { version: string; state: string }) => [r.version, r.state]),
    [['3.1.0', 'building']],
  );
  const one = await call(api.url, 'GET', '/admin/releases/3.1.0', { token: ADMIN_TOKEN });
  assert.equal(one.status, 200);
  assert.equal(one.json.release.builds.android.buildVersion, '310');
  assert.equal(one.json.release.controlVersion, '3.0.4');
  assert.equal((await call(api.url, 'GET', '/admin/releases/9.9.9', { token: ADMIN_TOKEN })).status, 404);
  assert.equal((await call(api.url, 'GET', '/admin/releases/latest', { token: ADMIN_TOKEN })).status, 400);
  assert.equal((await call(api.url, 'GET', '/admin/releases')).status, 403);
});

test('/metrics breaks requests and 5xx down by X-App-Version', async () => {
  for (let i = 0; i < 3; i++) await call(api.url, 'GET', '/config', { headers: { 'x-app-version': '3.1.0' } });
  await call(api.url, 'GET', '/config', { headers: { 'x-app-version': 'not-a-version' } });
  const metrics = await call(api.url, 'GET', '/metrics', { token: ADMIN_TOKEN });
  assert.equal(metrics.status, 200);
  const rows: Array<{ version: string; requests: number; errors: number }> = metrics.json.byAppVersion;
  assert.deepEqual(
    rows.find((r) => r.version === '3.1.0'),
    { version: '3.1.0', requests: 3, errors: 0, errorRate: 0 },
  );
  assert.ok((rows.find((r) => r.version === 'unknown')?.requests ?? 0) >= 1, 'a header that is not a version counts as unknown');
});
