/**
 * Runbook: "Clear CDN Cache".
 *
 * When: asset updates, image changes. Low risk: a purge only makes the edge fetch from the
 * origin again.
 *
 *   1. Purge through Cloudflare's API: everything (`--all`) or the given URLs (`--files`), in
 *      batches of 30 URLs per request (the per-request limit every plan accepts).
 *   Verify: HEAD requests read `cf-cache-status` — the first after the purge must come from
 *   the origin (MISS/EXPIRED) or be a copy cached since the purge (HIT with a small `age`);
 *   the next should be a HIT again. `--all` is checked on CDN_BASE_URL when it is set.
 *
 * `--files` takes full URLs, or paths (`/logo.png`) resolved against CDN_BASE_URL.
 * Undo: nothing to put back (purged files come back from the origin on the next request).
 */
import { z } from 'zod';
import { CloudflareClient, inBatches, probeCacheStatus, PURGE_FILES_PER_REQUEST, type CacheProbe } from '../../adapters/cloudflare.ts';
import type { Config } from '../../config/index.ts';
import { describeError, ShipError } from '../../errors.ts';
import { defineProcedure, outputOf, stepFor, unverified } from '../engine/types.ts';

/** More than this in one run is a job for `--all` (or purge by prefix/tag in Cloudflare's dashboard). */
const MAX_FILES = 500;
/** URLs checked after the purge. */
const VERIFY_SAMPLE = 10;
/** How long the edge gets to show a fresh copy. */
const VERIFY_WAIT_MS = 10_000;
const FRESH = new Set(['MISS', 'EXPIRED', 'REVALIDATED', 'UPDATING']);
const UNCACHED = new Set(['DYNAMIC', 'BYPASS', 'NONE/UNKNOWN', 'NONE']);

const params = z
  .object({
    all: z.boolean().default(false),
    files: z
      .array(
        z
          .string()
          .refine((file) => file.startsWith('/') || isHttpUrl(file), 'must be full http(s) URLs or paths starting with / (resolved against CDN_BASE_URL)'),
      )
      .max(MAX_FILES, `at most ${MAX_FILES} URLs per run; purge everything with --all instead`)
      .default([]),
  })
  .superRefine((p, ctx) => {
    if (p.all && p.files.length > 0) ctx.addIssue({ code: 'custom', path: ['all'], message: 'give either --all or --files <url…>, not both' });
    if (!p.all && p.files.length === 0) ctx.addIssue({ code: 'custom', path: ['files'], message: 'name the URLs to purge (or --all to purge everything)' });
  });
type Params = z.output<typeof params>;

// The step whose output the freshness check read (listed in `steps` below with the others).
const step = stepFor<Params>();

const purge = step({
  id: 'purge',
  output: z.object({
    mode: z.string(),
    purgedAt: z.string(),
    files: z.number().optional(),
    requests: z.number().optional(),
    purgeIds: z.array(z.string()),
  }),
  title: 'Purge the Cloudflare cache',
  describe: ({ params: p, config }) => {
    const endpoint = `POST ${config.cdn.cloudflareApiUrl}/zones/${config.cdn.cloudflareZoneId ?? '<CLOUDFLARE_ZONE_ID>'}/purge_cache   (Authorization: Bearer <CLOUDFLARE_API_TOKEN>)`;
    if (p.all) return [`${endpoint} {"purge_everything":true}`];
    const files = safeResolve(p, config);
    return inBatches(files).map(
      (batch, i) => `${endpoint} {"files":[${batch.length} URL(s)]}   -- request ${i + 1}: ${batch.slice(0, 2).join(', ')}${batch.length > 2 ? ', …' : ''}`,
    );
  },
  async run(context) {
    const client = cloudflare(context.config);
    const purgedAt = new Date().toISOString();
    if (context.params.all) {
      const answer = await client.purgeEverything();
      context.note(`purged everything (Cloudflare purge ${answer.id ?? '?'})`);
      return { mode: 'all', purgedAt, purgeIds: answer.id === null ? [] : [answer.id] };
    }
    const files = resolveFiles(context.params, context.config);
    const batches = inBatches(files);
    const purgeIds: string[] = [];
    let done = 0;
    for (const [i, batch] of batches.entries()) {
      try {
        const answer = await client.purgeFiles(batch);
        if (answer.id !== null) purgeIds.push(answer.id);
        done += batch.length;
      } catch (error) {
        if (i === 0) throw error;
        // Purging again is harmless, so a rerun of the whole list is the way on.
        throw new ShipError(
          'SHIP_ERR_PROVIDER_FAILED',
          `${describeError(error)} ${done} of ${files.length} URLs (requests 1-${i}) were purged before this; run the same command again to purge the rest.`,
        );
      }
    }
    context.note(`purged ${files.length} URL(s) in ${batches.length} request(s)`);
    return { mode: 'files', purgedAt, files: files.length, requests: batches.length, purgeIds };
  },
  async undo(context) {
    context.note('nothing to put back: purged files are fetched from the origin again on the next request');
  },
});

export const cdnPurge = defineProcedure({
  id: 'cdn.purge',
  command: 'cdn purge',
  title: 'Purge the CDN cache (Cloudflare) and check the edge serves fresh copies',
  runbookSection: 'Clear CDN Cache',
  whenToUse: 'Asset updates, image changes that users do not see yet.',
  risk: 'low',
  expectedDuration: '5-10 minutes',
  issueType: 'infrastructure',
  params,
  locks: (_p, config) => [`cdn:${config.cdn.cloudflareZoneId ?? 'unconfigured'}`],
  prerequisites: [
    {
      name: 'Cloudflare is configured',
      run: async ({ config }) => {
        const missing = [
          config.cdn.cloudflareApiToken === undefined ? 'CLOUDFLARE_API_TOKEN' : '',
          config.cdn.cloudflareZoneId === undefined ? 'CLOUDFLARE_ZONE_ID' : '',
        ].filter(Boolean);
        return missing.length === 0
          ? { ok: true, detail: `zone ${config.cdn.cloudflareZoneId ?? ''} at ${config.cdn.cloudflareApiUrl}` }
          : {
              ok: false,
              detail: `${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} not set`,
              remedy: 'set CLOUDFLARE_API_TOKEN (an API token with Zone > Cache Purge) and CLOUDFLARE_ZONE_ID (the zone overview page shows it)',
            };
      },
    },
    {
      name: 'the URLs are complete',
      run: async ({ params: p, config }) => {
        if (p.all)
          return {
            ok: true,
            detail: config.cdn.baseUrl
              ? `everything; checked afterwards on ${config.cdn.baseUrl}`
              : 'everything (set CDN_BASE_URL to have a URL checked afterwards)',
          };
        const relative = p.files.filter((file) => file.startsWith('/'));
        if (relative.length > 0 && config.cdn.baseUrl === undefined) {
          return {
            ok: false,
            detail: `${relative.join(', ')} ${relative.length === 1 ? 'is a path' : 'are paths'}, and CDN_BASE_URL is not set to resolve them`,
            remedy: 'pass full URLs (https://cdn.example.com/logo.png) or set CDN_BASE_URL',
          };
        }
        const files = resolveFiles(p, config);
        return {
          ok: true,
          detail: `${files.length} URL(s) in ${Math.ceil(files.length / PURGE_FILES_PER_REQUEST)} request(s): ${files.slice(0, 3).join(', ')}${files.length > 3 ? ', …' : ''}`,
        };
      },
    },
  ],
  steps: [purge],
  verification: [
    {
      name: 'the edge serves fresh copies (cf-cache-status)',
      run: async (context) => {
        const sample = context.params.all
          ? context.config.cdn.baseUrl === undefined
            ? []
            : [context.config.cdn.baseUrl]
          : resolveFiles(context.params, context.config).slice(0, VERIFY_SAMPLE);
        if (sample.length === 0) {
          return unverified(
            'CDN_BASE_URL is not set, so no URL could be checked after purging everything',
            'set CDN_BASE_URL (e.g. https://cdn.example.com/) to have `--all` checked, or `curl -sI <a CDN URL>` and look for cf-cache-status: MISS or EXPIRED',
          );
        }
        const purgedAt = Date.parse(outputOf(context, purge)?.purgedAt ?? new Date().toISOString());
        const results = await Promise.all(sample.map((url) => checkFresh(url, purgedAt)));
        const bad = results.filter((r) => !r.ok);
        const lines = results.map((r) => `${r.url}: ${r.detail}`).join('; ');
        return bad.length === 0
          ? { ok: true, detail: lines }
          : {
              ok: false,
              detail: lines,
              remedy: bad.some((r) => r.notCloudflare)
                ? 'a URL without cf-cache-status is not served through Cloudflare: check its hostname is proxied (orange cloud) in this zone'
                : 'the edge still serves copies older than the purge: check CLOUDFLARE_ZONE_ID is the zone of these hostnames, and any custom cache key (purge with the headers it uses)',
            };
      },
    },
  ],
});

function cloudflare(config: Config): CloudflareClient {
  const { cloudflareApiToken: apiToken, cloudflareZoneId: zoneId, cloudflareApiUrl: apiUrl } = config.cdn;
  if (apiToken === undefined || zoneId === undefined)
    throw new ShipError('SHIP_ERR_CONFIG', 'CLOUDFLARE_API_TOKEN and CLOUDFLARE_ZONE_ID must both be set to purge the CDN.');
  return new CloudflareClient({ apiUrl, apiToken, zoneId });
}

/** Full URLs, duplicates removed, in the order given. */
function resolveFiles(p: Params, config: Config): string[] {
  const resolved = p.files.map((file) => {
    if (!file.startsWith('/')) return new URL(file).toString();
    if (config.cdn.baseUrl === undefined)
      throw new ShipError('SHIP_ERR_CONFIG', `"${file}" is a path and CDN_BASE_URL is not set to resolve it. Pass a full URL or set CDN_BASE_URL.`);
    return new URL(file, config.cdn.baseUrl).toString();
  });
  return [...new Set(resolved)];
}

function safeResolve(p: Params, config: Config): string[] {
  try {
    return resolveFiles(p, config);
  } catch {
    return p.files;
  }
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

/** Polls one URL until the edge shows a copy fetched since the purge, then looks once more for the HIT. */
async function checkFresh(url: string, purgedAt: number): Promise<{ url: string; ok: boolean; detail: string; notCloudflare?: boolean }> {
  const deadline = Date.now() + VERIFY_WAIT_MS;
  let probe: CacheProbe;
  for (;;) {
    probe = await probeCacheStatus(url);
    const verdict = judge(probe, purgedAt);
    if (verdict !== 'stale' || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const verdict = judge(probe, purgedAt);
  if (probe.status === null) return { url, ok: false, detail: `no answer (${probe.error ?? '?'})` };
  if (verdict === 'not-cloudflare') return { url, ok: false, detail: `HTTP ${probe.status} without cf-cache-status`, notCloudflare: true };
  if (verdict === 'uncached') return { url, ok: true, detail: `${probe.cacheStatus ?? '?'}: Cloudflare does not cache it, so there was nothing to purge` };
  if (verdict === 'stale') return { url, ok: false, detail: `still HIT with age ${probe.ageSeconds ?? '?'} s, older than the purge` };
  const again = await probeCacheStatus(url);
  return {
    url,
    ok: true,
    detail: `${probe.cacheStatus ?? '?'}${probe.cacheStatus === 'HIT' ? ` (cached ${probe.ageSeconds ?? 0} s ago, since the purge)` : ''}, then ${again.cacheStatus ?? 'no cf-cache-status'}`,
  };
}

function judge(probe: CacheProbe, purgedAt: number): 'fresh' | 'stale' | 'uncached' | 'not-cloudflare' | 'unreachable' {
  if (probe.status === null) return 'unreachable';
  const status = probe.cacheStatus;
  if (status === null) return 'not-cloudflare';
  if (FRESH.has(status)) return 'fresh';
  if (UNCACHED.has(status)) return 'uncached';
  if (status === 'HIT' || status === 'STALE') {
    const sincePurge = (Date.now() - purgedAt) / 1_000;
    return probe.ageSeconds !== null && probe.ageSeconds <= Math.ceil(sincePurge) + 1 && status === 'HIT' ? 'fresh' : 'stale';
  }
  return 'fresh';
}
