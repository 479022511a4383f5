/**
 * `shipshape cdn purge --all | --files <url…>` (runbook: Clear CDN Cache) against a loopback
 * Cloudflare that checks the purge API's documented shape and auth and serves files with
 * cf-cache-status: batches of 30, verification by HEAD (MISS after the purge, HIT after),
 * and the failure paths — bad token, rate limits, a purge the edge ignores, bad input.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runProcedure, type EngineDeps } from '../../src/ops/engine/index.ts';
import { presentReport } from '../../src/ops/present/present.ts';
import { cdnPurge } from '../../src/ops/procedures/cdn-purge.ts';
import { startFakeCloudflare, type FakeCloudflare } from '../fakes/cloudflare.ts';
import { runCli } from '../helpers/cli.ts';
import { liveFixture, show, stepOutput, type LiveFixture } from '../helpers/live-operations.ts';

const TOKEN = 'cf-test-token-0123456789abcdef';
const ZONE = '023e105f4ecef8ad9ca31a8372d0c353';
let fixture: LiveFixture;
let cloudflare: FakeCloudflare;

before(async () => {
  fixture = await liveFixture();
  cloudflare = await startFakeCloudflare({ token: TOKEN, zoneId: ZONE });
});

after(async () => {
  await cloudflare?.close();
  await fixture?.cleanup();
});

function cdnEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return { CLOUDFLARE_API_URL: cloudflare.apiUrl, CLOUDFLARE_API_TOKEN: TOKEN, CLOUDFLARE_ZONE_ID: ZONE, CDN_BASE_URL: cloudflare.cdnUrl, ...overrides };
}

async function deps(overrides: Record<string, string> = {}): Promise<EngineDeps> {
  return fixture.deps(cdnEnv(overrides));
}

describe('cdn purge', () => {
  test('purges 65 URLs in batches of 30 with the documented request, then sees MISS and HIT', async () => {
    const paths = Array.from({ length: 65 }, (_, i) => `/img/${i}.png`);
    for (const path of paths) cloudflare.cache(path, 3_600);
    const files = paths.map((path, i) => (i % 2 === 0 ? `${cloudflare.cdnUrl}${path}` : path));
    const before = cloudflare.purges.length;
    const report = await runProcedure(cdnPurge, { files }, {}, await deps());
    assert.equal(report.exitCode, 0, show(report));
    const requests = cloudflare.purges.slice(before);
    assert.deepEqual(
      requests.map((r) => r.status),
      [200, 200, 200],
    );
    assert.ok(requests.every((r) => r.authorization === `Bearer ${TOKEN}` && r.contentType === 'application/json'));
    assert.deepEqual(
      cloudflare.accepted.slice(-3).map((batch) => (batch === 'everything' ? 0 : batch.length)),
      [30, 30, 5],
    );
    assert.equal(stepOutput(report, 'purge').requests, 3);
    assert.match(report.verification[0]?.detail ?? '', /MISS, then HIT/);
    assert.doesNotMatch(JSON.stringify(report), new RegExp(TOKEN), 'the token never reaches the report');
  });

  test('--all sends purge_everything and checks CDN_BASE_URL', async () => {
    cloudflare.cache('/', 600);
    const report = await runProcedure(cdnPurge, { all: true }, {}, await deps());
    assert.equal(report.exitCode, 0, show(report));
    assert.equal(cloudflare.accepted.at(-1), 'everything');
    assert.deepEqual(cloudflare.purges.at(-1)?.body, { purge_everything: true });
    assert.match(report.verification[0]?.detail ?? '', /MISS/);
  });

  test('--all without CDN_BASE_URL purges, but says the edge could not be checked: unverified (exit 5), never ✓', async () => {
    const report = await runProcedure(cdnPurge, { all: true }, {}, await deps({ CDN_BASE_URL: '' }));
    assert.equal(report.exitCode, 5, show(report));
    assert.equal(report.state, 'unverified');
    assert.equal(cloudflare.accepted.at(-1), 'everything');
    const check = report.verification[0];
    assert.equal(check?.ok, false);
    assert.equal(check?.unverified, true);
    assert.match(check?.detail ?? '', /CDN_BASE_URL is not set/);
    const shown = presentReport(report, { json: false, color: false }).stdout;
    assert.match(shown, /\? verify the edge serves fresh copies \(cf-cache-status\): unverified: CDN_BASE_URL is not set/);
    assert.doesNotMatch(shown, /✓ verify/);
  });

  test('a rate-limited purge is retried after Retry-After', async () => {
    cloudflare.failNext(429, 1);
    const report = await runProcedure(cdnPurge, { files: ['/logo.png'] }, {}, await deps());
    assert.equal(report.exitCode, 0, show(report));
    assert.deepEqual(
      cloudflare.purges.slice(-2).map((r) => r.status),
      [429, 200],
    );
  });

  test('a refused token fails the run with what to check, never showing the token', async () => {
    const report = await runProcedure(cdnPurge, { files: ['/logo.png'] }, {}, await deps({ CLOUDFLARE_API_TOKEN: 'wrong-token-9999' }));
    assert.equal(report.exitCode, 1, show(report));
    assert.match(report.error?.message ?? '', /Authentication error.*CLOUDFLARE_API_TOKEN/);
    assert.doesNotMatch(JSON.stringify(report), /wrong-token-9999/);
  });

  test('a purge the edge ignores fails verification: copies older than the purge are still served', async () => {
    cloudflare.cache('/stale.png', 7_200);
    cloudflare.ignorePurges(true);
    try {
      const report = await runProcedure(cdnPurge, { files: ['/stale.png'] }, {}, await deps());
      assert.equal(report.exitCode, 1, show(report));
      assert.equal(report.verification[0]?.ok, false);
      assert.match(report.verification[0]?.detail ?? '', /still HIT with age \d+ s, older than the purge/);
      assert.match(report.verification[0]?.remedy ?? '', /CLOUDFLARE_ZONE_ID/);
    } finally {
      cloudflare.ignorePurges(false);
    }
  });

  test('URLs not served through Cloudflare fail verification; uncached ones pass', async () => {
    cloudflare.notProxied('/direct.png');
    cloudflare.dynamic('/api.json');
    const report = await runProcedure(cdnPurge, { files: ['/direct.png', '/api.json'] }, {}, await deps());
    assert.equal(report.exitCode, 1, show(report));
    assert.match(report.verification[0]?.detail ?? '', /direct.png: HTTP 200 without cf-cache-status/);
    assert.match(report.verification[0]?.detail ?? '', /api.json: DYNAMIC/);
  });

  test('bad input is refused (exit 2) and missing configuration is a prerequisite (exit 3)', async () => {
    const engine = await deps();
    for (const input of [{}, { all: true, files: ['/a.png'] }, { files: ['ftp://cdn/a.png'] }, { files: ['logo.png'] }]) {
      const report = await runProcedure(cdnPurge, input, {}, engine);
      assert.equal(report.exitCode, 2, `${JSON.stringify(input)}: ${show(report)}`);
    }
    const unconfigured = await runProcedure(cdnPurge, { all: true }, {}, await fixture.deps());
    assert.equal(unconfigured.exitCode, 3);
    assert.match(JSON.stringify(unconfigured.prerequisites), /CLOUDFLARE_API_TOKEN and CLOUDFLARE_ZONE_ID are not set/);
    const relative = await runProcedure(cdnPurge, { files: ['/logo.png'] }, {}, await deps({ CDN_BASE_URL: '' }));
    assert.equal(relative.exitCode, 3);
    assert.match(JSON.stringify(relative.prerequisites), /CDN_BASE_URL is not set/);
  });

  test('the CLI takes --files with several URLs, and refuses --all with --files', async () => {
    const env = await fixture.cliEnv(cdnEnv());
    const ok = await runCli(['cdn', 'purge', '--files', '/a.png', `${cloudflare.cdnUrl}/b.png`, '--json'], env);
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.deepEqual(cloudflare.accepted.at(-1), [`${cloudflare.cdnUrl}/a.png`, `${cloudflare.cdnUrl}/b.png`]);
    const both = await runCli(['cdn', 'purge', '--all', '--files', '/a.png'], env);
    assert.equal(both.code, 2);
    assert.match(both.stderr + both.stdout, /--all: give either --all or --files/);
  });
});
