/**
 * `shipshape maintenance monitor`: reads /metrics on a short interval for a short watch and
 * holds each reading to the plan's success criteria (error rate < 0.1 %, p95 < 500 ms), then
 * runs the smoke tests. Against the real API it passes; against an endpoint reporting a bad
 * minute it reports the breach and exits 1.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ADMIN_TOKEN, startTestApi, type TestApi } from '../helpers/api.ts';
import { runCli } from '../helpers/cli.ts';
import { createStateDir } from '../helpers/postgres.ts';

describe('maintenance monitor', () => {
  let api: TestApi;
  let state: { path: string; cleanup(): Promise<void> };
  let badMinute: Server;
  let badUrl: string;

  before(async () => {
    api = await startTestApi();
    state = await createStateDir();
    // Answers GET /metrics as the API documents it, for a minute that missed both criteria.
    badMinute = createServer((request, response) => {
      if (request.url !== '/metrics' || !request.headers.authorization?.startsWith('Bearer ')) {
        response.writeHead(404).end();
        return;
      }
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ activeUsers: 3, requestsPerMinute: 1000, errorRate: 0.002, avgResponseTime: 120, p95ResponseTime: 640 }));
    });
    await new Promise<void>((resolve) => badMinute.listen(0, '127.0.0.1', resolve));
    badUrl = `http://127.0.0.1:${(badMinute.address() as AddressInfo).port}`;
  });
  after(async () => {
    await api?.close();
    await state?.cleanup();
    await new Promise((resolve) => badMinute?.close(resolve));
  });

  const env = () => ({ DATABASE_URL: api.config.databaseUrl!, STATE_DIR: state.path, ADMIN_TOKEN, API_URL: api.url });

  test('passes when every reading meets the success criteria and the smoke tests pass', async () => {
    const result = await runCli(['maintenance', 'monitor', '--for', '2s', '--every', '1s', '--json'], env());
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.passed, true);
    assert.ok(report.samples.length >= 2, 'read at the start and on every interval');
    assert.ok(report.samples.every((sample: Record<string, unknown>) => sample.ok === true));
    assert.deepEqual(
      report.smoke.map((check: Record<string, unknown>) => check.ok),
      [true, true, true, true, true, true],
    );
    assert.match(result.stderr, /watching .*\/metrics for 2s, every 1s/);
  });

  test('reports a breach of either criterion and exits 1', async () => {
    const result = await runCli(['maintenance', 'monitor', '--for', '1s', '--every', '1s', '--api-url', badUrl, '--no-smoke'], env());
    assert.equal(result.code, 1);
    assert.match(result.stdout, /NOT MET/);
    assert.match(result.stderr, /error rate 0\.2% ≥ 0\.1%; p95 640 ms ≥ 500 ms/);
  });

  test('refuses watch lengths and intervals outside its bounds', async () => {
    for (const args of [
      ['--every', '0s'],
      ['--every', '2h'],
      ['--for', '25h'],
      ['--for', 'soon'],
    ]) {
      const result = await runCli(['maintenance', 'monitor', ...args], env());
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, /must be a duration from 1s to/);
    }
  });
});
