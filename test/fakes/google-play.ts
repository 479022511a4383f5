/**
 * A loopback Google OAuth token endpoint and Google Play Developer API (androidpublisher v3)
 * holding clients to the documented contract for staged rollouts:
 *
 * - `POST /token` (the service account's `token_uri`): form `grant_type=urn:ietf:params:oauth:
 *   grant-type:jwt-bearer`, `assertion` an RS256 JWT signed by the service account's key with
 *   `iss` = client_email, `scope` containing androidpublisher, `aud` = token_uri, `exp - iat` ≤
 *   3600 → `{access_token, expires_in, token_type}`; anything else → 400 `{error: invalid_grant}`.
 * - `/androidpublisher/v3/applications/{pkg}/…` needs `Authorization: Bearer <that token>`
 *   (401 otherwise) and the configured package (404 otherwise):
 *   `POST edits` → `{id, expiryTimeSeconds}`; `GET|PUT edits/{id}/tracks/{track}`;
 *   `POST edits/{id}:commit`; `DELETE edits/{id}`. An unknown edit → 404.
 * - A track update must name the track, give `versionCodes` of uploaded builds, `status` one of
 *   draft|inProgress|halted|completed, a `userFraction` in (0, 1) exactly when inProgress or
 *   halted, and never lower an in-progress fraction → else 400. Only a commit makes it live.
 */
import { type createPublicKey, createVerify, generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { closeServer, listenOnLoopback, readBody } from './loopback.ts';

export interface PlayTrackRelease {
  versionCodes: string[];
  status: string;
  userFraction?: number;
}

export interface FakePlayRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
  status: number;
}

export interface FakeGooglePlay {
  readonly url: string;
  readonly packageName: string;
  /** The service account key file's JSON (write it to a file for GOOGLE_PLAY_SERVICE_ACCOUNT_FILE). */
  readonly serviceAccountJson: string;
  readonly requests: FakePlayRequest[];
  /** The live production track. */
  track(): PlayTrackRelease[];
  /** Version codes Play knows (what `eas submit` uploaded); unknown codes are refused. */
  upload(versionCode: string): void;
  /** The next request whose `METHOD path` matches fails with this status. */
  failNext(match: RegExp, status: number): void;
  close(): Promise<void>;
}

const SCOPE = 'https://www.googleapis.com/auth/androidpublisher';
const STATUSES = ['draft', 'inProgress', 'halted', 'completed'];

export async function startFakeGooglePlay(options: { packageName?: string } = {}): Promise<FakeGooglePlay> {
  const packageName = options.packageName ?? 'com.example.tasks';
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientEmail = 'shipshape-release@example-project.iam.gserviceaccount.com';
  const tokens = new Set<string>();
  const edits = new Map<string, PlayTrackRelease[]>();
  const uploaded = new Set<string>();
  let live: PlayTrackRelease[] = [];
  const failures: Array<{ match: RegExp; status: number }> = [];
  const requests: FakePlayRequest[] = [];
  let url = '';

  const server = createServer((req, res) => {
    void (async () => {
      const path = new URL(req.url ?? '/', 'http://fake').pathname;
      const text = await readBody(req);
      let body: unknown = text;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        // a form or not JSON
      }
      const reply = (status: number, answer: unknown) => {
        requests.push({ method: req.method ?? '', path, authorization: req.headers.authorization, body, status });
        res.writeHead(status, { 'content-type': 'application/json' }).end(answer === undefined ? '' : JSON.stringify(answer));
      };
      const error = (status: number, message: string) => reply(status, { error: { code: status, message, status: 'INVALID_ARGUMENT' } });
      const failure = failures.findIndex((f) => f.match.test(`${req.method ?? ''} ${path}`));
      if (failure !== -1) {
        const [f] = failures.splice(failure, 1);
        return error(f!.status, 'Internal error encountered.');
      }

      // The eas-cli stand-in's side door: what `eas submit` uploads becomes a known version code.
      const upload = /^\/test\/upload\/(\d+)$/.exec(path);
      if (req.method === 'POST' && upload) {
        uploaded.add(upload[1]!);
        return reply(204, undefined);
      }

      if (path === '/token') {
        const form = new URLSearchParams(text);
        if (req.method !== 'POST' || form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer')
          return reply(400, { error: 'unsupported_grant_type' });
        const problem = checkJwt(form.get('assertion') ?? '', publicKey, clientEmail, `${url}/token`);
        if (problem !== undefined) return reply(400, { error: 'invalid_grant', error_description: problem });
        const token = `ya29.fake-${randomUUID()}`;
        tokens.add(token);
        return reply(200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
      }

      const prefix = `/androidpublisher/v3/applications/`;
      if (!path.startsWith(prefix)) return error(404, 'Not found');
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (bearer === undefined || !tokens.has(bearer)) return error(401, 'Request had invalid authentication credentials.');
      const rest = path.slice(prefix.length);
      const [pkg, ...parts] = rest.split('/');
      if (decodeURIComponent(pkg ?? '') !== packageName) return error(404, `Package not found: ${pkg ?? ''}.`);
      const tail = parts.join('/');

      if (req.method === 'POST' && tail === 'edits') {
        const id = randomUUID().replaceAll('-', '').slice(0, 20);
        edits.set(id, structuredClone(live));
        return reply(200, { id, expiryTimeSeconds: String(Math.floor(Date.now() / 1000) + 3600) });
      }
      const commit = /^edits\/([^/:]+):commit$/.exec(tail);
      if (req.method === 'POST' && commit) {
        const edit = edits.get(commit[1]!);
        if (edit === undefined) return error(404, 'This Edit has been deleted.');
        live = edit;
        edits.delete(commit[1]!);
        return reply(200, { id: commit[1] });
      }
      const editOnly = /^edits\/([^/]+)$/.exec(tail);
      if (req.method === 'DELETE' && editOnly) {
        edits.delete(editOnly[1]!);
        return reply(204, undefined);
      }
      const track = /^edits\/([^/]+)\/tracks\/([^/]+)$/.exec(tail);
      if (track) {
        const edit = edits.get(track[1]!);
        if (edit === undefined) return error(404, 'This Edit has been deleted.');
        if (track[2] !== 'production') return error(400, 'Only the production track is used here.');
        if (req.method === 'GET') return reply(200, { track: 'production', releases: edit });
        if (req.method !== 'PUT') return error(405, 'Method not allowed');
        const problem = checkTrack(body, edit, uploaded);
        if (problem !== undefined) return error(400, problem);
        const releases = (body as { releases: PlayTrackRelease[] }).releases;
        edits.set(
          track[1]!,
          releases.map((r) => ({
            versionCodes: r.versionCodes.map(String),
            status: r.status,
            ...(r.userFraction === undefined ? {} : { userFraction: r.userFraction }),
          })),
        );
        return reply(200, { track: 'production', releases });
      }
      return error(404, 'Not found');
    })();
  });
  url = await listenOnLoopback(server);
  const serviceAccountJson = JSON.stringify({
    type: 'service_account',
    project_id: 'example-project',
    private_key_id: 'fake-key',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: clientEmail,
    token_uri: `${url}/token`,
  });
  return {
    url,
    packageName,
    serviceAccountJson,
    requests,
    track: () => structuredClone(live),
    upload: (code) => void uploaded.add(code),
    failNext: (match, status) => void failures.push({ match, status }),
    close: () => closeServer(server),
  };
}

function checkJwt(jwt: string, publicKey: ReturnType<typeof createPublicKey>, iss: string, aud: string): string | undefined {
  const [header, payload, signature] = jwt.split('.');
  if (header === undefined || payload === undefined || signature === undefined) return 'not a JWT';
  const head = JSON.parse(Buffer.from(header, 'base64url').toString()) as { alg?: string };
  if (head.alg !== 'RS256') return 'alg must be RS256';
  if (!createVerify('RSA-SHA256').update(`${header}.${payload}`).verify(publicKey, Buffer.from(signature, 'base64url'))) return 'Invalid JWT Signature.';
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { iss?: string; scope?: string; aud?: string; iat?: number; exp?: number };
  if (claims.iss !== iss) return 'iss is not the service account';
  if (!claims.scope?.split(' ').includes(SCOPE)) return 'scope lacks androidpublisher';
  if (claims.aud !== aud) return 'aud must be the token_uri';
  if (typeof claims.iat !== 'number' || typeof claims.exp !== 'number' || claims.exp - claims.iat > 3600 || claims.exp < Date.now() / 1000)
    return 'Invalid JWT: Token must be a short-lived token (60 minutes)';
  return undefined;
}

function checkTrack(body: unknown, before: PlayTrackRelease[], uploaded: Set<string>): string | undefined {
  if (typeof body !== 'object' || body === null) return 'A track is required.';
  const track = body as { track?: unknown; releases?: unknown };
  if (track.track !== 'production') return 'Track name does not match.';
  if (!Array.isArray(track.releases) || track.releases.length === 0) return 'releases is required.';
  for (const release of track.releases as Array<Record<string, unknown>>) {
    const codes = Array.isArray(release.versionCodes) ? release.versionCodes.map(String) : [];
    if (codes.length === 0) return 'versionCodes is required.';
    const unknown = codes.find((code) => !uploaded.has(code));
    if (unknown !== undefined) return `Version code ${unknown} has not been uploaded.`;
    if (typeof release.status !== 'string' || !STATUSES.includes(release.status)) return `Invalid status: ${String(release.status)}.`;
    const staged = release.status === 'inProgress' || release.status === 'halted';
    if (staged && (typeof release.userFraction !== 'number' || release.userFraction <= 0 || release.userFraction >= 1))
      return 'userFraction must be in (0, 1) for a staged rollout.';
    if (!staged && release.userFraction !== undefined) return 'userFraction may only be set for inProgress or halted releases.';
    const previous = before.find((r) => r.versionCodes.some((c) => codes.includes(c)));
    if (previous?.status === 'completed' && release.status !== 'completed') return 'A completed release cannot be changed.';
    if (release.status === 'inProgress' && previous?.userFraction !== undefined && (release.userFraction as number) < previous.userFraction)
      return 'The rollout fraction cannot be decreased.';
  }
  return undefined;
}
