/**
 * A loopback App Store Connect API holding clients to the documented contract for phased
 * releases:
 *
 * - Every request needs `Authorization: Bearer <JWT>`: header `{alg: ES256, kid: <key id>,
 *   typ: JWT}`, payload `{iss: <issuer id>, aud: "appstoreconnect-v1", iat, exp}` with a
 *   lifetime of at most 20 minutes, signed (raw r||s) by the team key → else 401
 *   `{errors: [{status, code: NOT_AUTHORIZED, detail}]}`.
 * - `GET /v1/apps/{id}/appStoreVersions?filter[versionString]=&filter[platform]=IOS`.
 * - `GET /v1/appStoreVersions/{id}/appStoreVersionPhasedRelease` → `{data: … | null}`.
 * - `POST /v1/appStoreVersionPhasedReleases` with `data.type`, `attributes.phasedReleaseState`,
 *   `relationships.appStoreVersion.data {type: appStoreVersions, id}` → 201; a second one → 409.
 * - `PATCH /v1/appStoreVersionPhasedReleases/{id}` with `data {type, id, attributes}`; allowed
 *   moves ACTIVE ⇄ PAUSED, ACTIVE|PAUSED → COMPLETE; anything from COMPLETE → 409.
 */
import { generateKeyPairSync, randomUUID, verify, type KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import { closeServer, listenOnLoopback, readBody } from './loopback.ts';

export interface FakePhasedRelease {
  id: string;
  versionId: string;
  state: string;
  currentDayNumber: number | null;
}

export interface FakeAscRequest {
  method: string;
  path: string;
  search: string;
  authorization: string | undefined;
  body: unknown;
  status: number;
}

export interface FakeAppStoreConnect {
  readonly url: string;
  readonly appId: string;
  readonly keyId: string;
  readonly issuerId: string;
  /** The .p8 key (PKCS#8 PEM) for ASC_PRIVATE_KEY_FILE. */
  readonly privateKeyPem: string;
  readonly requests: FakeAscRequest[];
  /** Makes an App Store version exist (what a submission does); returns its id. */
  addVersion(versionString: string): string;
  phasedRelease(versionString: string): FakePhasedRelease | undefined;
  /** Apple's clock: sets the day number of an active phased release; after day 7 (100 %) Apple marks it COMPLETE. */
  setDay(versionString: string, day: number): void;
  failNext(match: RegExp, status: number): void;
  close(): Promise<void>;
}

const MOVES: Record<string, string[]> = {
  ACTIVE: ['PAUSED', 'COMPLETE', 'ACTIVE'],
  PAUSED: ['ACTIVE', 'COMPLETE', 'PAUSED'],
  INACTIVE: ['ACTIVE'],
  COMPLETE: [],
};

export async function startFakeAppStoreConnect(): Promise<FakeAppStoreConnect> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyId = '2X9R4HXF34';
  const issuerId = '57246542-96fe-1a63-e053-0824d011072a';
  const appId = '1234567890';
  const versions = new Map<string, string>();
  const phased = new Map<string, FakePhasedRelease>();
  const failures: Array<{ match: RegExp; status: number }> = [];
  const requests: FakeAscRequest[] = [];

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const text = await readBody(req);
      let body: unknown;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        body = text;
      }
      const reply = (status: number, answer: unknown) => {
        requests.push({ method: req.method ?? '', path: url.pathname, search: url.search, authorization: req.headers.authorization, body, status });
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      };
      const error = (status: number, code: string, detail: string) => reply(status, { errors: [{ status: String(status), code, title: code, detail }] });
      const failure = failures.findIndex((f) => f.match.test(`${req.method ?? ''} ${url.pathname}`));
      if (failure !== -1) {
        const [f] = failures.splice(failure, 1);
        return error(f!.status, 'UNEXPECTED_ERROR', 'An unexpected error occurred on the server side.');
      }
      // The eas-cli stand-in's side door: a submitted iOS build makes its App Store version exist.
      const submitted = /^\/test\/versions\/(\d+\.\d+\.\d+)$/.exec(url.pathname);
      if (req.method === 'POST' && submitted) {
        if (!versions.has(submitted[1]!)) versions.set(submitted[1]!, randomUUID());
        return reply(200, {});
      }
      const problem = checkJwt(req.headers.authorization, publicKey, keyId, issuerId);
      if (problem !== undefined) return error(401, 'NOT_AUTHORIZED', problem);

      const list = /^\/v1\/apps\/([^/]+)\/appStoreVersions$/.exec(url.pathname);
      if (req.method === 'GET' && list) {
        if (list[1] !== appId) return error(404, 'NOT_FOUND', `There is no resource of type 'apps' with id '${list[1] ?? ''}'`);
        if (url.searchParams.get('filter[platform]') !== 'IOS') return error(400, 'PARAMETER_ERROR.INVALID', 'filter[platform] must be IOS here');
        const wanted = url.searchParams.get('filter[versionString]');
        const data = [...versions]
          .filter(([v]) => wanted === null || v === wanted)
          .map(([versionString, id]) => ({ type: 'appStoreVersions', id, attributes: { versionString, platform: 'IOS' } }));
        return reply(200, { data, links: { self: url.toString() } });
      }
      const read = /^\/v1\/appStoreVersions\/([^/]+)\/appStoreVersionPhasedRelease$/.exec(url.pathname);
      if (req.method === 'GET' && read) {
        if (![...versions.values()].includes(read[1]!)) return error(404, 'NOT_FOUND', 'There is no such appStoreVersion');
        const found = [...phased.values()].find((p) => p.versionId === read[1]);
        return reply(200, { data: found === undefined ? null : resource(found) });
      }
      if (req.method === 'POST' && url.pathname === '/v1/appStoreVersionPhasedReleases') {
        const data = (
          body as
            | {
                data?: {
                  type?: string;
                  attributes?: { phasedReleaseState?: string };
                  relationships?: { appStoreVersion?: { data?: { type?: string; id?: string } } };
                };
              }
            | undefined
        )?.data;
        if (data?.type !== 'appStoreVersionPhasedReleases') return error(409, 'ENTITY_ERROR.INCORRECT_TYPE', 'data.type must be appStoreVersionPhasedReleases');
        const rel = data.relationships?.appStoreVersion?.data;
        if (rel?.type !== 'appStoreVersions' || rel.id === undefined || ![...versions.values()].includes(rel.id))
          return error(409, 'ENTITY_ERROR.RELATIONSHIP.INVALID', 'appStoreVersion relationship is required and must exist');
        if ([...phased.values()].some((p) => p.versionId === rel.id)) return error(409, 'ENTITY_ERROR', 'A phased release already exists for this version');
        const state = data.attributes?.phasedReleaseState ?? 'INACTIVE';
        if (!['INACTIVE', 'ACTIVE'].includes(state))
          return error(409, 'ENTITY_ERROR.ATTRIBUTE.INVALID', 'phasedReleaseState must be INACTIVE or ACTIVE on create');
        const created: FakePhasedRelease = { id: randomUUID(), versionId: rel.id, state, currentDayNumber: state === 'ACTIVE' ? 1 : null };
        phased.set(created.id, created);
        return reply(201, { data: resource(created) });
      }
      const patch = /^\/v1\/appStoreVersionPhasedReleases\/([^/]+)$/.exec(url.pathname);
      if (req.method === 'PATCH' && patch) {
        const found = phased.get(patch[1]!);
        if (found === undefined) return error(404, 'NOT_FOUND', 'There is no such appStoreVersionPhasedRelease');
        const data = (body as { data?: { type?: string; id?: string; attributes?: { phasedReleaseState?: string } } } | undefined)?.data;
        if (data?.type !== 'appStoreVersionPhasedReleases' || data.id !== found.id)
          return error(409, 'ENTITY_ERROR.INCORRECT_ID', 'data.type and data.id must name this phased release');
        const next = data.attributes?.phasedReleaseState ?? '';
        if (!(MOVES[found.state] ?? []).includes(next))
          return error(409, 'ENTITY_ERROR.ATTRIBUTE.INVALID', `phasedReleaseState cannot go from ${found.state} to ${next}`);
        found.state = next;
        if (next === 'COMPLETE') found.currentDayNumber = 7;
        return reply(200, { data: resource(found) });
      }
      return error(404, 'NOT_FOUND', 'The path provided does not match a defined resource type.');
    })();
  });
  const url = await listenOnLoopback(server);
  const byVersion = (versionString: string) => [...phased.values()].find((p) => p.versionId === versions.get(versionString));
  return {
    url,
    appId,
    keyId,
    issuerId,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    requests,
    addVersion(versionString) {
      const id = versions.get(versionString) ?? randomUUID();
      versions.set(versionString, id);
      return id;
    },
    phasedRelease: byVersion,
    setDay(versionString, day) {
      const found = byVersion(versionString);
      if (!found) return;
      found.currentDayNumber = Math.min(day, 7);
      if (day >= 7 && found.state === 'ACTIVE') found.state = 'COMPLETE';
    },
    failNext: (match, status) => void failures.push({ match, status }),
    close: () => closeServer(server),
  };
}

function resource(p: FakePhasedRelease): unknown {
  return {
    type: 'appStoreVersionPhasedReleases',
    id: p.id,
    attributes: { phasedReleaseState: p.state, currentDayNumber: p.currentDayNumber, startDate: null, totalPauseDuration: 0 },
  };
}

function checkJwt(authorization: string | undefined, publicKey: KeyObject, keyId: string, issuerId: string): string | undefined {
  const jwt = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
  if (jwt === undefined) return 'Missing Authorization: Bearer <JWT>';
  const [header, payload, signature] = jwt.split('.');
  if (header === undefined || payload === undefined || signature === undefined) return 'The JWT is malformed';
  const head = JSON.parse(Buffer.from(header, 'base64url').toString()) as { alg?: string; kid?: string; typ?: string };
  if (head.alg !== 'ES256' || head.kid !== keyId || head.typ !== 'JWT') return 'JWT header must be {alg: ES256, kid: <key id>, typ: JWT}';
  const ok = verify('sha256', Buffer.from(`${header}.${payload}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
  if (!ok) return 'The JWT signature is invalid';
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { iss?: string; aud?: string; iat?: number; exp?: number };
  if (claims.iss !== issuerId || claims.aud !== 'appstoreconnect-v1') return 'iss must be the issuer id and aud appstoreconnect-v1';
  if (typeof claims.exp !== 'number' || claims.exp < Date.now() / 1000 || (typeof claims.iat === 'number' && claims.exp - claims.iat > 20 * 60))
    return 'The JWT has expired or lives longer than 20 minutes';
  return undefined;
}
