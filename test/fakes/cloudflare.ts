/**
 * A loopback Cloudflare: the v4 purge API and an edge that serves files with
 * `cf-cache-status`, so a purge and its verification can be tested end to end.
 *
 * API, to the documented contract (developers.cloudflare.com/api/resources/cache/methods/purge):
 * - only `POST /client/v4/zones/{zone_id}/purge_cache`, `Content-Type: application/json`;
 * - `Authorization: Bearer <token>` must be the configured token → else 403 with
 *   `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}`;
 * - another zone id → 400 code 7003 "Could not route to …";
 * - body: exactly `{"purge_everything": true}`, or `{"files": [...]}` with 1 to
 *   `maxFilesPerRequest` (30) entries, each an absolute http(s) URL or `{url, headers}`;
 *   anything else → 400 with an error;
 * - success → 200 `{"success":true,"errors":[],"messages":[],"result":{"id":"…"}}`.
 *
 * Edge: any other GET/HEAD is a file. The first request for a path after a purge (or ever)
 * is `cf-cache-status: MISS` and caches it; later ones are `HIT` with `age` in seconds.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { closeServer, listenOnLoopback, readBody } from './loopback.ts';

export interface FakeCloudflareOptions {
  readonly token: string;
  readonly zoneId: string;
  readonly maxFilesPerRequest?: number;
}

export interface PurgeRequest {
  readonly authorization: string | undefined;
  readonly contentType: string | undefined;
  readonly body: unknown;
  readonly status: number;
}

export interface FakeCloudflare {
  /** Use as CLOUDFLARE_API_URL: `http://127.0.0.1:<port>/client/v4`. */
  readonly apiUrl: string;
  /** Use as CDN_BASE_URL: files are served from here. */
  readonly cdnUrl: string;
  /** Every purge API request, accepted or not. */
  readonly purges: PurgeRequest[];
  /** Accepted purges: `'everything'` or the URLs of one request. */
  readonly accepted: Array<'everything' | string[]>;
  /** Marks a path as cached `ageSeconds` ago (a copy from before any purge in the test). */
  cache(path: string, ageSeconds: number): void;
  /** Purges are acknowledged but the edge keeps its copies (a misrouted zone, a custom cache key). */
  ignorePurges(ignore: boolean): void;
  /** Paths Cloudflare does not cache (`DYNAMIC`). */
  dynamic(path: string): void;
  /** Paths served without cf-cache-status (not proxied through Cloudflare). */
  notProxied(path: string): void;
  /** The next `times` purge requests answer with this status (429 with Retry-After: 0, or a 5xx). */
  failNext(status: number, times?: number): void;
  close(): Promise<void>;
}

export async function startFakeCloudflare(options: FakeCloudflareOptions): Promise<FakeCloudflare> {
  const maxFiles = options.maxFilesPerRequest ?? 30;
  const purges: PurgeRequest[] = [];
  const accepted: Array<'everything' | string[]> = [];
  const cachedAt = new Map<string, number>();
  const dynamicPaths = new Set<string>();
  const unproxied = new Set<string>();
  let ignore = false;
  let failure: { status: number; times: number } | undefined;

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      if (url.pathname.startsWith('/client/v4/')) {
        const raw = await readBody(req);
        let body: unknown;
        try {
          body = JSON.parse(raw);
        } catch {
          body = undefined;
        }
        const answer = purgeAnswer(req, url.pathname, body);
        purges.push({ authorization: req.headers.authorization, contentType: req.headers['content-type'], body, status: answer.status });
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (answer.status === 429) headers['retry-after'] = '0';
        res.writeHead(answer.status, headers).end(JSON.stringify(answer.body));
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405).end();
        return;
      }
      const path = url.pathname;
      const headers: Record<string, string> = { 'content-type': 'image/png', 'cache-control': 'public, max-age=86400' };
      if (!unproxied.has(path)) {
        if (dynamicPaths.has(path)) headers['cf-cache-status'] = 'DYNAMIC';
        else {
          const at = cachedAt.get(path);
          if (at === undefined) {
            headers['cf-cache-status'] = 'MISS';
            cachedAt.set(path, Date.now());
          } else {
            headers['cf-cache-status'] = 'HIT';
            headers.age = String(Math.floor((Date.now() - at) / 1_000));
          }
        }
      }
      res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : 'PNG');
    })();
  });

  function purgeAnswer(req: IncomingMessage, pathname: string, body: unknown): { status: number; body: unknown } {
    const fail = (status: number, code: number, message: string) => ({
      status,
      body: { success: false, errors: [{ code, message }], messages: [], result: null },
    });
    const match = /^\/client\/v4\/zones\/([^/]+)\/purge_cache$/.exec(pathname);
    if (req.method !== 'POST' || !match) return fail(404, 7000, 'No route for that URI');
    if (req.headers.authorization !== `Bearer ${options.token}`) return fail(403, 10000, 'Authentication error');
    if (match[1] !== options.zoneId)
      return fail(400, 7003, `Could not route to /zones/${match[1] ?? ''}/purge_cache, perhaps your object identifier is invalid?`);
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return fail(400, 6003, 'Invalid request headers');
    if (failure !== undefined && failure.times > 0) {
      failure.times--;
      return fail(failure.status, failure.status === 429 ? 10429 : 10500, failure.status === 429 ? 'Rate limited' : 'Internal error');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      return fail(400, 1012, 'Request must contain one of "purge_everything", "files", "tags", "hosts" or "prefixes"');
    const keys = Object.keys(body);
    const record: Record<string, unknown> = { ...body };
    const ok = () => ({ status: 200, body: { success: true, errors: [], messages: [], result: { id: randomBytes(16).toString('hex') } } });
    if (keys.length === 1 && keys[0] === 'purge_everything') {
      if (record.purge_everything !== true) return fail(400, 1012, 'purge_everything must be true');
      accepted.push('everything');
      if (!ignore) cachedAt.clear();
      return ok();
    }
    if (keys.length === 1 && keys[0] === 'files') {
      const files = record.files;
      if (!Array.isArray(files) || files.length === 0) return fail(400, 1012, 'files must be a non-empty array');
      if (files.length > maxFiles) return fail(400, 1015, `You can only purge up to ${maxFiles} files per request`);
      const urls: string[] = [];
      for (const entry of files) {
        const text =
          typeof entry === 'string'
            ? entry
            : typeof entry === 'object' && entry !== null && 'url' in entry && typeof entry.url === 'string'
              ? entry.url
              : undefined;
        if (text === undefined || !/^https?:\/\/[^/]+/.test(text)) return fail(400, 1016, `Invalid url: ${String(text)}`);
        urls.push(text);
      }
      accepted.push(urls);
      if (!ignore) for (const text of urls) cachedAt.delete(new URL(text).pathname);
      return ok();
    }
    return fail(400, 1012, 'Request must contain exactly one of "purge_everything" or "files"');
  }

  const origin = await listenOnLoopback(server);
  return {
    apiUrl: `${origin}/client/v4`,
    cdnUrl: origin,
    purges,
    accepted,
    cache: (path, ageSeconds) => cachedAt.set(path, Date.now() - ageSeconds * 1_000),
    ignorePurges: (value) => {
      ignore = value;
    },
    dynamic: (path) => dynamicPaths.add(path),
    notProxied: (path) => unproxied.add(path),
    failNext: (status, times = 1) => {
      failure = { status, times };
    },
    close: () => closeServer(server),
  };
}
