/**
 * Cloudflare cache purge (runbook: "Clear CDN Cache") through the v4 API:
 * `POST {apiUrl}/zones/{zone_id}/purge_cache` with `Authorization: Bearer <API token>` and
 * either `{"purge_everything": true}` or `{"files": [url, …]}`. Answers are Cloudflare's
 * envelope `{success, errors: [{code, message}], messages, result: {id}}`.
 *
 * Limits (developers.cloudflare.com/cache/how-to/purge-cache): URLs per request were 30 on
 * every plan for years and are now 100 (500 on Enterprise); 30 is accepted everywhere, so
 * files go in batches of 30. Purge requests are rate limited per account (5 a minute on Free),
 * so 429s are retried after Retry-After, within a bound.
 *
 * Also the verification half: a HEAD request reading `cf-cache-status` and `age`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ShipError } from '../errors.ts';

/** URLs per purge request that every plan accepts. */
export const PURGE_FILES_PER_REQUEST = 30;

export interface CloudflareOptions {
  /** https://api.cloudflare.com/client/v4 */
  readonly apiUrl: string;
  /** An API token with Zone > Cache Purge; never appears in errors. */
  readonly apiToken: string;
  readonly zoneId: string;
  readonly timeoutMs?: number;
  /** Extra attempts after a 429 or 5xx. */
  readonly retries?: number;
  /** Longest Retry-After we wait for; a longer one ends the retries. */
  readonly maxRetryDelayMs?: number;
}

export interface PurgeAnswer {
  /** Cloudflare's id for the purge request. */
  readonly id: string | null;
}

export class CloudflareClient {
  private readonly options: CloudflareOptions;

  constructor(options: CloudflareOptions) {
    this.options = options;
  }

  purgeEverything(): Promise<PurgeAnswer> {
    return this.purge({ purge_everything: true });
  }

  /** One request; callers batch with `purgeBatches`. */
  purgeFiles(files: readonly string[]): Promise<PurgeAnswer> {
    if (files.length === 0 || files.length > PURGE_FILES_PER_REQUEST) {
      throw new ShipError('SHIP_ERR_INTERNAL', `purgeFiles takes 1-${PURGE_FILES_PER_REQUEST} URLs per request, got ${files.length}.`);
    }
    return this.purge({ files });
  }

  private async purge(body: { purge_everything: true } | { files: readonly string[] }): Promise<PurgeAnswer> {
    const url = `${this.options.apiUrl.replace(/\/+$/, '')}/zones/${encodeURIComponent(this.options.zoneId)}/purge_cache`;
    const attempts = (this.options.retries ?? 3) + 1;
    const maxDelay = this.options.maxRetryDelayMs ?? 60_000;
    let problem = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${this.options.apiToken}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000),
        });
      } catch (error) {
        // No answer: the purge may or may not have happened; purging again is harmless.
        problem = `did not answer (${networkCause(error)})`;
        if (attempt < attempts) await sleep(backoffMs(attempt));
        continue;
      }
      const envelope = parseEnvelope(await response.text());
      if (response.ok && envelope.success) return { id: envelope.resultId };
      problem = `answered HTTP ${response.status}${envelope.errors.length > 0 ? `: ${envelope.errors.join('; ')}` : ''}`;
      if (response.status === 401 || response.status === 403) {
        throw new ShipError(
          'SHIP_ERR_PROVIDER_FAILED',
          `Cloudflare refused the purge (${problem}). Check CLOUDFLARE_API_TOKEN: it must be active and have the Zone > Cache Purge permission for zone ${this.options.zoneId}.`,
        );
      }
      if (response.status !== 429 && response.status < 500) {
        throw new ShipError(
          'SHIP_ERR_PROVIDER_FAILED',
          `Cloudflare rejected the purge (${problem}). Check CLOUDFLARE_ZONE_ID and the URLs (full https:// URLs of this zone's hostnames).`,
        );
      }
      const retryAfter = retryAfterMs(response.headers.get('retry-after')) ?? backoffMs(attempt);
      if (retryAfter > maxDelay) {
        problem += ` and asked to wait ${Math.ceil(retryAfter / 1000)} s`;
        break;
      }
      if (attempt < attempts) await sleep(retryAfter);
    }
    throw new ShipError(
      'SHIP_ERR_PROVIDER_FAILED',
      `Cloudflare ${problem} (tried ${attempts} times). Check Cloudflare's status and the account's purge rate limit, then run the purge again.`,
    );
  }
}

/** `items` in consecutive batches of at most `size`. */
export function inBatches<T>(items: readonly T[], size = PURGE_FILES_PER_REQUEST): T[][] {
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += size) batches.push(items.slice(i, i + size));
  return batches;
}

export interface CacheProbe {
  readonly url: string;
  /** HTTP status, or null when nothing answered. */
  readonly status: number | null;
  /** `HIT`, `MISS`, `EXPIRED`, `DYNAMIC`, `BYPASS`, …; null when the header is absent. */
  readonly cacheStatus: string | null;
  /** Seconds the edge has held this copy (`age`), when it says. */
  readonly ageSeconds: number | null;
  readonly error: string | null;
}

/** `HEAD url`, reading `cf-cache-status` and `age` (the runbook's `curl -I … | grep cf-cache-status`). */
export async function probeCacheStatus(url: string, timeoutMs = 10_000): Promise<CacheProbe> {
  try {
    const response = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' });
    const age = response.headers.get('age');
    return {
      url,
      status: response.status,
      cacheStatus: response.headers.get('cf-cache-status')?.toUpperCase() ?? null,
      ageSeconds: age === null || !/^\d+$/.test(age.trim()) ? null : Number(age),
      error: null,
    };
  } catch (error) {
    return { url, status: null, cacheStatus: null, ageSeconds: null, error: networkCause(error) };
  }
}

function parseEnvelope(text: string): { success: boolean; errors: string[]; resultId: string | null } {
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body !== 'object' || body === null) return { success: false, errors: [], resultId: null };
    const record: Record<string, unknown> = { ...body };
    const errors = Array.isArray(record.errors)
      ? record.errors.map((entry: unknown) => {
          if (typeof entry !== 'object' || entry === null) return String(entry);
          const e: Record<string, unknown> = { ...entry };
          return `${String(e.message ?? 'error')}${e.code === undefined ? '' : ` (code ${String(e.code)})`}`;
        })
      : [];
    const result = typeof record.result === 'object' && record.result !== null ? { ...record.result } : {};
    const id = 'id' in result && typeof result.id === 'string' ? result.id : null;
    return { success: record.success === true, errors, resultId: id };
  } catch {
    return { success: false, errors: [], resultId: null };
  }
}

function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function backoffMs(attempt: number): number {
  return Math.min(8_000, 500 * 2 ** (attempt - 1));
}

function networkCause(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'no answer within the timeout';
  if (error instanceof Error && error.cause instanceof Error) return error.cause.message;
  return error instanceof Error ? error.message : String(error);
}
