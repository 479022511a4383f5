/**
 * Secret scrubbing, once, with one marker (`[redacted]`): for logs (pino's censor and
 * `redactUrl`), alerts, run journals (src/ops/engine/redact.ts adds secret field names) and
 * storage errors.
 *
 * A Slack incoming-webhook URL is itself the credential (anyone holding it can post), and so
 * are PagerDuty routing keys and the password inside SMTP_URL. Provider and network errors
 * can echo any of them back (undici names the URL it failed to reach), so every string that
 * leaves this module's callers goes through a redactor built from the secrets in play.
 */

export const REDACTED = '[redacted]';

export type Redact = (text: string) => string;

/**
 * Hides the credentials in a URL, or in every URL within a text: the password of
 * `scheme://user:password@host` (the user name stays, it says who connected), or the whole
 * user-info when it holds no password (`https://token@host`). The password runs to the last
 * `@` of the token, not the first `/`: AWS secrets may contain `/`, and a half-redacted secret
 * is still a leaked one.
 */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = REDACTED;
    else if (url.username) url.username = REDACTED;
    else return text;
    return url.toString().replace(encodeURIComponent(REDACTED), REDACTED).replace(encodeURIComponent(REDACTED), REDACTED);
  } catch {
    return text.replace(
      /([a-z][a-z0-9+.-]*:\/\/)(?:([^\s:@/]*):)?\S*@/gi,
      (_match, scheme: string, user: string | undefined) => `${scheme}${user === undefined ? '' : `${user}:`}${REDACTED}@`,
    );
  }
}

/** Replaces each secret (four characters or more) and every URL's credentials in `text`. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let redacted = redactUrl(text);
  for (const secret of secrets) {
    if (secret.length >= 4) redacted = redacted.split(secret).join(REDACTED);
  }
  return redacted;
}

/** Patterns that are secret whatever configuration produced them. */
const genericPatterns: readonly RegExp[] = [
  // Slack webhook paths: /services/T…/B…/token, /workflows/…, /triggers/…
  /hooks\.slack(?:-gov)?\.com\/[^\s"'<>)]+/gi,
  // Credentials in any URL's userinfo.
  /(?<=\/\/[^/\s:@]*:)[^@\s/]+(?=@)/g,
];

/**
 * Returns a function that replaces every occurrence of the given secrets (and of the parts of
 * secret URLs that identify them: path and query, userinfo password) with `[redacted]`.
 */
export function createRedactor(secrets: Iterable<string | undefined>): Redact {
  const needles = new Set<string>();
  for (const secret of secrets) {
    if (secret === undefined || secret.length === 0) continue;
    needles.add(secret);
    addUrlParts(secret, needles);
  }
  // Longest first, so a URL is replaced whole before its own path is. Needles shorter than
  // four characters would shred ordinary words; the userinfo pattern still covers such passwords.
  const ordered = [...needles].filter((n) => n.length >= 4).sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const needle of ordered) out = out.split(needle).join(REDACTED);
    for (const pattern of genericPatterns) out = out.replace(pattern, REDACTED);
    return out;
  };
}

function addUrlParts(secret: string, needles: Set<string>): void {
  let url: URL;
  try {
    url = new URL(secret);
  } catch {
    return;
  }
  const pathAndQuery = `${url.pathname}${url.search}`;
  if (pathAndQuery.length > 1) needles.add(pathAndQuery);
  if (url.password !== '') {
    needles.add(url.password);
    needles.add(decodeURIComponentSafe(url.password));
  }
}

function decodeURIComponentSafe(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
