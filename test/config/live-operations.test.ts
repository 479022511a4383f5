/**
 * The live-operations settings: defaults, and bad values named without showing secrets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configVariableNames, loadConfig } from '../../src/config/index.ts';
import { isShipError } from '../../src/errors.ts';

test('Sentry and Cloudflare default to their public APIs; the rest is off until set', () => {
  const config = loadConfig({});
  assert.equal(config.sentry.apiUrl, 'https://sentry.io');
  assert.equal(config.cdn.cloudflareApiUrl, 'https://api.cloudflare.com/client/v4');
  assert.equal(config.sentry.org, undefined);
  assert.equal(config.cdn.cloudflareZoneId, undefined);
  assert.equal(config.statusPageWebhookUrl, undefined);
  for (const name of [
    'STATUS_PAGE_WEBHOOK_URL',
    'SENTRY_API_URL',
    'SENTRY_ORG',
    'SENTRY_TOKEN',
    'CLOUDFLARE_API_URL',
    'CLOUDFLARE_API_TOKEN',
    'CLOUDFLARE_ZONE_ID',
    'CDN_BASE_URL',
  ]) {
    assert.ok((configVariableNames() as readonly string[]).includes(name), name);
  }
});

test('a bad value names the variable and shows a good one, hiding secrets', () => {
  const refused = (env: Record<string, string>, pattern: RegExp, secret?: string) =>
    assert.throws(
      () => loadConfig(env),
      (error: unknown) => {
        assert.ok(isShipError(error));
        assert.equal(error.code, 'SHIP_ERR_CONFIG');
        assert.match(error.message, pattern);
        if (secret !== undefined) assert.doesNotMatch(error.message, new RegExp(secret));
        return true;
      },
    );
  refused({ CLOUDFLARE_ZONE_ID: 'not a zone!' }, /CLOUDFLARE_ZONE_ID="not a zone!" is invalid.*zone id/);
  refused({ SENTRY_ORG: 'my org' }, /SENTRY_ORG/);
  refused({ STATUS_PAGE_WEBHOOK_URL: 'hooks/secret-path-123' }, /STATUS_PAGE_WEBHOOK_URL=\(hidden\)/, 'secret-path-123');
  refused({ CDN_BASE_URL: 'cdn.example.com' }, /CDN_BASE_URL/);
});
