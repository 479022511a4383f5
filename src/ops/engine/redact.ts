/**
 * Keeps secrets out of run journals (and so out of the database mirror and `runs show`).
 *
 * Two nets: any field whose name looks secret is replaced whole, and every string is
 * scrubbed of the secrets configuration knows (admin token, database and SMTP passwords,
 * webhook URLs, routing keys) and of passwords in any URL's userinfo. Step outputs come
 * back from the journal redacted, which is why procedures must not pass secrets between
 * steps through outputs: re-read them from configuration instead.
 */
import { createRedactor, REDACTED, type Redact } from '../../redact.ts';
import type { Config } from '../../config/index.ts';
import type { JsonObject, JsonValue } from './types.ts';

const SECRET_NAME_PATTERNS: readonly RegExp[] = [
  /passw(or)?d/,
  /passphrase/,
  /^pwd$/,
  /secret/,
  /token/,
  /credential/,
  /api_?key/,
  /access_?key/,
  /private_?key/,
  /routing_?key/,
  /signing_?key/,
  /^key$/,
  /authorization/,
  /cookie/,
  /^dsn$/,
  /connection_?string/,
  /webhook/,
];

/** `newPassword`, `api-key`, `SLACK_WEBHOOK_URL` → secret; `objectKey`, `dedupKey` → not. */
export function isSecretName(name: string): boolean {
  const normalised = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[-\s.]/g, '_')
    .toLowerCase();
  const compact = normalised.replaceAll('_', '');
  return SECRET_NAME_PATTERNS.some((pattern) => pattern.test(normalised) || pattern.test(compact));
}

export interface JsonRedactor {
  /** Scrubs one string (error messages, describe lines, notes). */
  text(value: string): string;
  /** A redacted deep copy. */
  object(value: JsonObject): JsonObject;
  /** A redacted deep copy, and the paths of the fields replaced because of their names. */
  objectWithPaths(value: JsonObject): { value: JsonObject; redactedPaths: string[] };
}

export function secretsOf(config: Config): Array<string | undefined> {
  return [
    config.adminToken,
    config.databaseUrl,
    config.smtpUrl,
    config.redisUrl,
    config.alerts.slackWebhookUrl,
    config.alerts.pagerDutyRoutingKey,
    config.push.expoAccessToken,
    config.statusPageWebhookUrl,
    config.sentry.token,
    config.cdn.cloudflareApiToken,
    config.backups.scratchDatabaseUrl,
  ];
}

export function createJsonRedactor(secrets: Iterable<string | undefined>): JsonRedactor {
  const scrub: Redact = createRedactor(secrets);
  const walkObject = (value: JsonObject, path: string, found: string[]): JsonObject => {
    const out: JsonObject = {};
    for (const [key, item] of Object.entries(value)) {
      const at = path === '' ? key : `${path}.${key}`;
      if (isSecretName(key) && item !== null && item !== '') {
        out[key] = REDACTED;
        found.push(at);
      } else {
        out[key] = walk(item, at, found);
      }
    }
    return out;
  };
  const walk = (value: JsonValue, path: string, found: string[]): JsonValue => {
    if (typeof value === 'string') return scrub(value);
    if (value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map((item, index) => walk(item, `${path}[${index}]`, found));
    return walkObject(value, path, found);
  };
  return {
    text: scrub,
    object: (value) => walkObject(value, '', []),
    objectWithPaths(value) {
      const redactedPaths: string[] = [];
      return { value: walkObject(value, '', redactedPaths), redactedPaths };
    },
  };
}
