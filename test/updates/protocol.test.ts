/**
 * Expo Updates protocol v1 against the real server, as an Expo app meets it: publish an
 * `npx expo export` output with the CLI, fetch and parse the multipart manifest, verify its
 * signature with the app's certificate, download every asset by hash; the directives; the
 * headers the protocol refuses; and `update rollback` with a second operator's approval.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ADMIN_TOKEN, startTestApi, type TestApi } from '../helpers/api.ts';
import { runCli } from '../helpers/cli.ts';
import { eventually } from '../helpers/patience.ts';
import {
  base64UrlSha256,
  fetchManifest,
  makeExport,
  makeSigningFiles,
  partNamed,
  signatureValid,
  type FakeExport,
  type ManifestResponse,
  type SigningFiles,
} from '../helpers/updates.ts';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

interface ManifestBody {
  id: string;
  createdAt: string;
  runtimeVersion: string;
  launchAsset: { hash: string; key: string; contentType: string; url: string };
  assets: Array<{ hash: string; key: string; contentType: string; fileExtension: string; url: string }>;
  metadata: Record<string, string>;
  extra: { expoClient?: Record<string, unknown> };
}

describe('Expo Updates protocol v1', () => {
  let api: TestApi;
  let signing: SigningFiles;
  let exported: FakeExport;
  let env: Record<string, string>;
  let updateId: string;

  before(async () => {
    signing = await makeSigningFiles();
    const port = await freePort();
    api = await startTestApi({
      env: { PORT: String(port), UPDATES_ASSET_BASE_URL: `http://127.0.0.1:${port}`, UPDATES_CODE_SIGNING_KEY_FILE: signing.keyFile },
    });
    env = { DATABASE_URL: api.config.databaseUrl!, STATE_DIR: api.config.stateDir, SHIPSHAPE_OPERATOR: 'alice' };
    exported = await makeExport('first', { expoConfig: { name: 'Tasks', slug: 'tasks', runtimeVersion: '1.0.0' } });
    const published = await runCli(
      ['update', 'publish', exported.dir, '--channel', 'production', '--runtime-version', '1.0.0', '--message', 'first update', '--json'],
      env,
    );
    assert.equal(published.code, 0, published.stderr);
    updateId = JSON.parse(published.stdout).update.id;
  });
  after(async () => {
    await api?.close();
    await exported?.cleanup();
    await signing?.cleanup();
  });

  const manifestOf = (response: ManifestResponse): ManifestBody => {
    const part = partNamed(response, 'manifest');
    assert.ok(part, `no manifest part in ${JSON.stringify(response.parts.map((p) => p.headers))}`);
    return JSON.parse(part.body) as ManifestBody;
  };
  const directiveOf = (response: ManifestResponse): { type: string; parameters?: { commitTime: string } } => {
    const part = partNamed(response, 'directive');
    assert.ok(part, `no directive part (status ${response.status})`);
    assert.ok(signatureValid(part, signing.certificatePem), 'the directive is signed with the configured key');
    return JSON.parse(part.body) as { type: string };
  };

  test('a client gets a signed multipart manifest for its platform and downloads every asset, each matching its hash and content type', async () => {
    for (const platform of ['ios', 'android']) {
      const response = await fetchManifest(api.url, { platform, runtimeVersion: '1.0.0', channel: 'production', clientId: 'device-1' });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^multipart\/mixed; boundary=/);
      assert.equal(response.headers.get('expo-protocol-version'), '1');
      assert.equal(response.headers.get('expo-sfv-version'), '0');
      assert.equal(response.headers.get('cache-control'), 'private, max-age=0');
      const part = partNamed(response, 'manifest')!;
      assert.ok(signatureValid(part, signing.certificatePem), 'expo-signature verifies with the public certificate');
      assert.match(part.headers['expo-signature']!, /keyid="main"/);
      assert.ok(partNamed(response, 'extensions'), 'an extensions part accompanies the manifest');

      const manifest = manifestOf(response);
      assert.equal(manifest.id, updateId);
      assert.equal(manifest.runtimeVersion, '1.0.0');
      assert.ok(!Number.isNaN(Date.parse(manifest.createdAt)));
      assert.deepEqual(manifest.extra.expoClient, { name: 'Tasks', slug: 'tasks', runtimeVersion: '1.0.0' });
      const bundlePath = [...exported.files.keys()].find((file) => file.startsWith(`_expo/static/js/${platform}/`))!;
      const expected = new Map<string, Buffer>([[manifest.launchAsset.hash, exported.files.get(bundlePath)!]]);
      for (const [file, content] of exported.files) if (file.startsWith('assets/')) expected.set(base64UrlSha256(content), content);
      assert.equal(manifest.assets.length, 2);
      assert.equal(manifest.launchAsset.contentType, 'application/javascript');
      assert.deepEqual(manifest.assets.map((asset) => asset.contentType).sort(), ['font/ttf', 'image/png']);

      for (const asset of [manifest.launchAsset, ...manifest.assets]) {
        const download = await fetch(asset.url);
        assert.equal(download.status, 200, asset.url);
        const body = Buffer.from(await download.arrayBuffer());
        assert.equal(base64UrlSha256(body), asset.hash, `${asset.url} matches its manifest hash`);
        assert.deepEqual(body, expected.get(asset.hash), 'the bytes published');
        assert.equal(download.headers.get('content-type'), asset.contentType);
        assert.equal(download.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      }
    }
  });

  test('a device already running the served update is told noUpdateAvailable; a runtime version or channel with nothing published too; protocol 0 gets 204', async () => {
    const current = await fetchManifest(api.url, { platform: 'ios', runtimeVersion: '1.0.0', clientId: 'device-1', currentUpdateId: updateId });
    assert.equal(directiveOf(current).type, 'noUpdateAvailable');
    const unknownRuntime = await fetchManifest(api.url, { platform: 'ios', runtimeVersion: '9.9.9', clientId: 'device-1' });
    assert.equal(unknownRuntime.status, 200);
    assert.equal(directiveOf(unknownRuntime).type, 'noUpdateAvailable');
    const unknownChannel = await fetchManifest(api.url, { platform: 'android', runtimeVersion: '1.0.0', channel: 'staging' });
    assert.equal(directiveOf(unknownChannel).type, 'noUpdateAvailable');
    const protocolZero = await fetchManifest(api.url, { platform: 'ios', runtimeVersion: '9.9.9', protocolVersion: '' });
    assert.equal(protocolZero.status, 204);
  });

  test('bad headers answer 400 in the error envelope (never a 5xx), and unknown assets 404', async () => {
    const cases: Array<[string, Parameters<typeof fetchManifest>[1], RegExp]> = [
      ['no platform', { runtimeVersion: '1.0.0' }, /expo-platform/],
      ['an unknown platform', { platform: 'windows', runtimeVersion: '1.0.0' }, /expo-platform/],
      ['no runtime version', { platform: 'ios' }, /expo-runtime-version/],
      ['a runtime version with spaces', { platform: 'ios', runtimeVersion: '1.0 beta' }, /expo-runtime-version/],
      ['an over-long runtime version', { platform: 'ios', runtimeVersion: 'x'.repeat(300) }, /expo-runtime-version/],
      ['protocol version 2', { platform: 'ios', runtimeVersion: '1.0.0', protocolVersion: '2' }, /expo-protocol-version/],
      ['a channel with a slash', { platform: 'ios', runtimeVersion: '1.0.0', channel: 'prod/../x' }, /expo-channel-name/],
      ['an over-long EAS-Client-ID', { platform: 'ios', runtimeVersion: '1.0.0', clientId: 'c'.repeat(500) }, /eas-client-id/],
    ];
    for (const [label, headers, field] of cases) {
      const response = await fetchManifest(api.url, headers);
      assert.equal(response.status, 400, label);
      assert.equal(response.error?.code, 'SHIP_ERR_VALIDATION', label);
      assert.match(response.error?.message ?? '', field, label);
    }
    const missing = await api.request('GET', `/updates/assets/${'0'.repeat(64)}`);
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'SHIP_ERR_NOT_FOUND');
    const malformed = await api.request('GET', '/updates/assets/..%2f..%2fetc%2fpasswd');
    assert.equal(malformed.status, 400);
  });

  test('the manifest is served during maintenance: an emergency fix must reach the app', async () => {
    await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: true, message: 'down' } });
    try {
      const response = await eventually('maintenance on', async () => ((await api.request('GET', '/tasks')).status === 503 ? true : undefined));
      assert.ok(response);
      assert.equal(manifestOf(await fetchManifest(api.url, { platform: 'ios', runtimeVersion: '1.0.0' })).id, updateId);
    } finally {
      await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: false } });
    }
  });

  test('publish refuses an export whose asset changed after `expo export` (exit 2) and serves nothing new', async () => {
    const tampered = await makeExport('tampered');
    try {
      const asset = [...tampered.files.keys()].find((file) => file.startsWith('assets/'))!;
      await writeFile(path.join(tampered.dir, asset), Buffer.concat([await readFile(path.join(tampered.dir, asset)), Buffer.from('x')]));
      const result = await runCli(['update', 'publish', tampered.dir, '--channel', 'production', '--runtime-version', '1.0.0'], env);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /changed after `npx expo export`/);
      const noMetadata = await runCli(['update', 'publish', path.join(tampered.dir, 'assets'), '--channel', 'production', '--runtime-version', '1.0.0'], env);
      assert.equal(noMetadata.code, 2);
      assert.match(noMetadata.stderr, /metadata\.json/);
    } finally {
      await tampered.cleanup();
    }
    const list = await runCli(['update', 'list', '--channel', 'production', '--json'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).updates.map((row: { id: string; state: string }) => [row.id, row.state]),
      [[updateId, 'released']],
    );
  });

  test('update rollout refuses a bad schedule (exit 2) and an update already released to everyone (exit 3); a staged update rolls out from the CLI', async () => {
    const badSchedule = await runCli(['update', 'rollout', updateId, '--schedule', '5,1,100'], env);
    assert.equal(badSchedule.code, 2);
    assert.match(badSchedule.stderr, /must increase/);
    const released = await runCli(['update', 'rollout', updateId, '--schedule', '1,100'], env);
    assert.equal(released.code, 3, released.stderr);
    assert.match(released.stderr, /already released/);
    const staged = await makeExport('staged');
    try {
      const published = await runCli(['update', 'publish', staged.dir, '--channel', 'canary', '--runtime-version', '1.0.0', '--staged', '--json'], env);
      assert.equal(published.code, 0, published.stderr);
      const stagedId: string = JSON.parse(published.stdout).update.id;
      assert.equal(
        directiveOf(await fetchManifest(api.url, { platform: 'ios', runtimeVersion: '1.0.0', channel: 'canary', clientId: 'device-9' })).type,
        'noUpdateAvailable',
        'staged: served to nobody',
      );
      const rollout = await runCli(['update', 'rollout', stagedId, '--schedule', '100', '--json'], env);
      assert.equal(rollout.code, 0, rollout.stderr);
      assert.equal(JSON.parse(rollout.stdout).rollout.status, 'completed');
      const served = await eventually('the staged update served', async () => {
        const part = partNamed(await fetchManifest(api.url, { platform: 'ios', runtimeVersion: '1.0.0', channel: 'canary', clientId: 'device-9' }), 'manifest');
        return part ? (JSON.parse(part.body) as ManifestBody).id : undefined;
      });
      assert.equal(served, stagedId);
    } finally {
      await staged.cleanup();
    }
  });

  test('update rollback needs a second operator; once approved the previous release is served again, and with none the app is told to roll back to its embedded update', async () => {
    const second = await makeExport('second');
    try {
      const published = await runCli(['update', 'publish', second.dir, '--channel', 'production', '--runtime-version', '1.0.0', '--json'], env);
      assert.equal(published.code, 0, published.stderr);
      const secondId: string = JSON.parse(published.stdout).update.id;
      await eventually('the second update served', async () => ((await manifestIdFor('device-2')) === secondId ? true : undefined));

      const first = await runCli(['update', 'rollback', secondId, '--yes', '--reason', 'crash on launch'], env);
      assert.equal(first.code, 3, first.stderr);
      const runId = /shipshape approve (r-\d{8}-\d{6}-[0-9a-f]{4})/.exec(first.stdout)?.[1];
      assert.ok(runId, first.stdout);
      const approved = await runCli(['approve', runId], { ...env, SHIPSHAPE_OPERATOR: 'bob' });
      assert.equal(approved.code, 0, approved.stderr);
      const resumed = await runCli(['runs', 'resume', runId, '--yes'], env);
      assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
      await eventually('the first update served again', async () => ((await manifestIdFor('device-2')) === updateId ? true : undefined));

      const shown = await runCli(['update', 'show', secondId, '--json'], env);
      assert.equal(JSON.parse(shown.stdout).update.id, secondId);

      // With the first rolled back too, nothing is left: devices go back to the embedded update.
      const again = await runCli(['update', 'rollback', updateId, '--yes', '--approved-by', 'bob'], { ...env, SHIPSHAPE_ALLOW_INLINE_APPROVAL: 'true' });
      assert.equal(again.code, 0, again.stdout + again.stderr);
      const directive = await eventually('rollBackToEmbedded', async () => {
        const response = await fetchManifest(api.url, { platform: 'ios', runtimeVersion: '1.0.0', clientId: 'device-2' });
        return partNamed(response, 'directive') ? directiveOf(response) : undefined;
      });
      assert.equal(directive.type, 'rollBackToEmbedded');
      assert.ok(!Number.isNaN(Date.parse(directive.parameters!.commitTime)));
    } finally {
      await second.cleanup();
    }
  });

  async function manifestIdFor(clientId: string): Promise<string | undefined> {
    const response = await fetchManifest(api.url, { platform: 'ios', runtimeVersion: '1.0.0', clientId });
    const part = partNamed(response, 'manifest');
    return part ? (JSON.parse(part.body) as ManifestBody).id : undefined;
  }
});
