/**
 * App Store Connect API for phased releases, as documented:
 *
 * - Auth: an ES256 JWT signed with the team's API key (.p8, PKCS#8), header `{alg: ES256,
 *   kid: <key id>, typ: JWT}`, payload `{iss: <issuer id>, iat, exp (≤ 20 minutes), aud:
 *   "appstoreconnect-v1"}`, sent as `Authorization: Bearer`.
 * - The version: `GET /v1/apps/{id}/appStoreVersions?filter[versionString]=…&filter[platform]=IOS`.
 * - Its phased release: `GET /v1/appStoreVersions/{id}/appStoreVersionPhasedRelease`; created
 *   with `POST /v1/appStoreVersionPhasedReleases` (relationship `appStoreVersion`), moved with
 *   `PATCH /v1/appStoreVersionPhasedReleases/{id}` `phasedReleaseState` ACTIVE | PAUSED | COMPLETE.
 *
 * Apple releases to 1, 2, 5, 10, 20, 50, 100 % of automatic-update users on days 1-7; a pause
 * stops the clock (up to 30 days).
 */
import { createPrivateKey, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ShipError } from '../../errors.ts';
import { base64url, requestJson } from './http.ts';

const STORE = 'App Store Connect API';
export type PhasedReleaseState = 'INACTIVE' | 'ACTIVE' | 'PAUSED' | 'COMPLETE';

/** Apple's documented share of users per day of a phased release. */
export const APPLE_PHASED_CURVE = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1] as const;

export function appleFraction(state: string, dayNumber: number | null): number {
  if (state === 'COMPLETE') return 1;
  if (dayNumber === null || dayNumber < 1) return 0;
  return APPLE_PHASED_CURVE[Math.min(dayNumber, APPLE_PHASED_CURVE.length) - 1] ?? 1;
}

export interface PhasedRelease {
  readonly id: string;
  readonly state: string;
  readonly currentDayNumber: number | null;
}

const phasedData = z.object({
  id: z.string(),
  attributes: z.object({ phasedReleaseState: z.string(), currentDayNumber: z.number().nullable().optional() }),
});

export interface AppStoreConnectOptions {
  readonly apiUrl: string;
  readonly keyId: string;
  readonly issuerId: string;
  readonly privateKeyFile: string;
  readonly appId: string;
}

const advice = (status: number): string =>
  status === 401
    ? 'Check ASC_KEY_ID, ASC_ISSUER_ID and ASC_PRIVATE_KEY_FILE: the key may have been revoked (App Store Connect > Users and Access > Integrations).'
    : status === 403
      ? 'The API key needs the App Manager role.'
      : status === 404
        ? 'Check ASC_APP_ID, and that the version was submitted (eas submit).'
        : status === 409
          ? 'App Store Connect refused the change in the version’s current state: look at the version in App Store Connect.'
          : 'Check Apple’s system status, then run the command again.';

export class AppStoreConnectClient {
  private readonly options: AppStoreConnectOptions;

  constructor(options: AppStoreConnectOptions) {
    this.options = options;
  }

  /** The App Store version's id for a version string. */
  async versionId(versionString: string): Promise<string> {
    const url = new URL(`/v1/apps/${encodeURIComponent(this.options.appId)}/appStoreVersions`, this.options.apiUrl);
    url.searchParams.set('filter[versionString]', versionString);
    url.searchParams.set('filter[platform]', 'IOS');
    const answer = z.object({ data: z.array(z.object({ id: z.string() })) }).safeParse(await this.call('GET', url.toString()));
    const id = answer.success ? answer.data.data[0]?.id : undefined;
    if (id === undefined)
      throw new ShipError(
        'SHIP_ERR_PROVIDER_FAILED',
        `App Store Connect has no iOS version ${versionString} for app ${this.options.appId}. Check the submission reached App Store Connect (eas submit) and ASC_APP_ID.`,
      );
    return id;
  }

  async phasedRelease(versionId: string): Promise<PhasedRelease | null> {
    const answer = z
      .object({ data: phasedData.nullable() })
      .safeParse(await this.call('GET', this.url(`/v1/appStoreVersions/${encodeURIComponent(versionId)}/appStoreVersionPhasedRelease`)));
    if (!answer.success) throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `${STORE} answered the phased release with an unexpected shape.`);
    return answer.data.data === null ? null : toPhased(answer.data.data);
  }

  async createPhasedRelease(versionId: string, state: PhasedReleaseState = 'ACTIVE'): Promise<PhasedRelease> {
    const body = {
      data: {
        type: 'appStoreVersionPhasedReleases',
        attributes: { phasedReleaseState: state },
        relationships: { appStoreVersion: { data: { type: 'appStoreVersions', id: versionId } } },
      },
    };
    return this.phasedAnswer(await this.call('POST', this.url('/v1/appStoreVersionPhasedReleases'), body));
  }

  async setPhasedReleaseState(phasedReleaseId: string, state: Exclude<PhasedReleaseState, 'INACTIVE'>): Promise<PhasedRelease> {
    const body = { data: { type: 'appStoreVersionPhasedReleases', id: phasedReleaseId, attributes: { phasedReleaseState: state } } };
    return this.phasedAnswer(await this.call('PATCH', this.url(`/v1/appStoreVersionPhasedReleases/${encodeURIComponent(phasedReleaseId)}`), body));
  }

  private phasedAnswer(answer: unknown): PhasedRelease {
    const parsed = z.object({ data: phasedData }).safeParse(answer);
    if (!parsed.success) throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `${STORE} answered without the phased release.`);
    return toPhased(parsed.data.data);
  }

  private url(path: string): string {
    return new URL(path, this.options.apiUrl).toString();
  }

  private async call(method: 'GET' | 'POST' | 'PATCH', url: string, body?: unknown): Promise<unknown> {
    return requestJson(STORE, { method, url, token: await this.jwt(), body }, advice);
  }

  private async jwt(): Promise<string> {
    let pem: string;
    try {
      pem = await readFile(this.options.privateKeyFile, 'utf8');
    } catch (error) {
      throw new ShipError(
        'SHIP_ERR_CONFIG',
        `ASC_PRIVATE_KEY_FILE ${this.options.privateKeyFile} cannot be read (${error instanceof Error ? error.message : String(error)}). Point it at the AuthKey_<id>.p8 App Store Connect let you download.`,
      );
    }
    const now = Math.floor(Date.now() / 1000);
    const header = base64url(JSON.stringify({ alg: 'ES256', kid: this.options.keyId, typ: 'JWT' }));
    const payload = base64url(JSON.stringify({ iss: this.options.issuerId, iat: now, exp: now + 15 * 60, aud: 'appstoreconnect-v1' }));
    // JWS wants the raw r||s signature, not DER.
    const signature = sign('sha256', Buffer.from(`${header}.${payload}`), { key: createPrivateKey(pem), dsaEncoding: 'ieee-p1363' });
    return `${header}.${payload}.${signature.toString('base64url')}`;
  }
}

function toPhased(data: z.output<typeof phasedData>): PhasedRelease {
  return { id: data.id, state: data.attributes.phasedReleaseState, currentDayNumber: data.attributes.currentDayNumber ?? null };
}
