/**
 * Google Play Developer API (androidpublisher v3) for staged rollouts, as documented:
 *
 * - Auth: a service account's key file (JSON with `client_email`, `private_key`, `token_uri`)
 *   signs an RS256 JWT (`iss` = client_email, `scope` = androidpublisher, `aud` = token_uri,
 *   one hour), exchanged at `token_uri` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
 *   for an OAuth access token, sent as `Authorization: Bearer`.
 * - Every change is an edit: `POST …/applications/{pkg}/edits` → `{id}`, then
 *   `PUT …/edits/{id}/tracks/production` with `{track, releases: [{versionCodes, status,
 *   userFraction}]}` (`status` inProgress with a fraction, halted, or completed without one),
 *   then `POST …/edits/{id}:commit`. Reading a track is `GET` in an edit, deleted afterwards.
 */
import { createSign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ShipError } from '../../errors.ts';
import { base64url, requestJson } from './http.ts';

const SCOPE = 'https://www.googleapis.com/auth/androidpublisher';
const STORE = 'Google Play Developer API';
export const PLAY_TRACK = 'production';

const serviceAccount = z.object({ client_email: z.string().min(3), private_key: z.string().includes('PRIVATE KEY'), token_uri: z.url() });
type ServiceAccount = z.output<typeof serviceAccount>;

export type PlayStatus = 'inProgress' | 'halted' | 'completed';

export interface PlayRelease {
  readonly versionCodes: string[];
  readonly status: string;
  readonly userFraction?: number | undefined;
  readonly name?: string | undefined;
}

const trackSchema = z.object({
  track: z.string(),
  releases: z
    .array(
      z.object({ versionCodes: z.array(z.coerce.string()).default([]), status: z.string(), userFraction: z.number().optional(), name: z.string().optional() }),
    )
    .default([]),
});

export interface GooglePlayOptions {
  readonly apiUrl: string;
  readonly packageName: string;
  readonly serviceAccountFile: string;
}

const advice = (status: number): string =>
  status === 401 || status === 403
    ? 'Check GOOGLE_PLAY_SERVICE_ACCOUNT_FILE: the service account must be invited in Play Console (Users and permissions) with release permissions for this app.'
    : status === 404
      ? 'Check GOOGLE_PLAY_PACKAGE_NAME, and that a build with this version code was uploaded (eas submit).'
      : 'Check Google Play’s status and the rollout in Play Console, then run the command again.';

export class GooglePlayClient {
  private token: { value: string; expiresAt: number } | undefined;
  private readonly options: GooglePlayOptions;

  constructor(options: GooglePlayOptions) {
    this.options = options;
  }

  /** Sets the production track's release with these version codes to `status` (and fraction while inProgress), in one committed edit. */
  async setRollout(versionCodes: readonly string[], status: PlayStatus, userFraction?: number): Promise<PlayRelease> {
    const editId = await this.insertEdit();
    const release: PlayRelease = { versionCodes: [...versionCodes], status, ...(status === 'completed' ? {} : { userFraction: userFraction ?? 0 }) };
    await this.call('PUT', `/edits/${encodeURIComponent(editId)}/tracks/${PLAY_TRACK}`, { track: PLAY_TRACK, releases: [release] });
    await this.call('POST', `/edits/${encodeURIComponent(editId)}:commit`);
    return release;
  }

  /** The production track's releases as Play has them now. */
  async readTrack(): Promise<PlayRelease[]> {
    const editId = await this.insertEdit();
    try {
      const parsed = trackSchema.safeParse(await this.call('GET', `/edits/${encodeURIComponent(editId)}/tracks/${PLAY_TRACK}`));
      if (!parsed.success)
        throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `${STORE} answered the track with an unexpected shape (${parsed.error.issues[0]?.message ?? '?'}).`);
      return parsed.data.releases;
    } finally {
      await this.call('DELETE', `/edits/${encodeURIComponent(editId)}`).catch(() => undefined);
    }
  }

  private async insertEdit(): Promise<string> {
    const edit = await this.call('POST', '/edits', {});
    const id = typeof edit === 'object' && edit !== null && 'id' in edit ? edit.id : undefined;
    if (typeof id !== 'string') throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `${STORE} answered edits.insert without an edit id.`);
    return id;
  }

  private async call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    const token = await this.accessToken();
    const url = `${this.options.apiUrl.replace(/\/$/, '')}/androidpublisher/v3/applications/${encodeURIComponent(this.options.packageName)}${path}`;
    return requestJson(STORE, { method, url, token, body }, advice);
  }

  private async accessToken(): Promise<string> {
    if (this.token !== undefined && this.token.expiresAt > Date.now() + 60_000) return this.token.value;
    const account = await readServiceAccount(this.options.serviceAccountFile);
    const now = Math.floor(Date.now() / 1000);
    const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
    const claims = base64url(JSON.stringify({ iss: account.client_email, scope: SCOPE, aud: account.token_uri, iat: now, exp: now + 3600 }));
    const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(account.private_key).toString('base64url');
    const answer = await requestJson(
      'Google OAuth',
      {
        method: 'POST',
        url: account.token_uri,
        form: { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: `${header}.${claims}.${signature}` },
      },
      () =>
        'Check GOOGLE_PLAY_SERVICE_ACCOUNT_FILE: the key may have been deleted or the service account disabled (Google Cloud console > IAM > Service accounts).',
    );
    const parsed = z.object({ access_token: z.string().min(1), expires_in: z.number().default(3600) }).safeParse(answer);
    if (!parsed.success) throw new ShipError('SHIP_ERR_PROVIDER_FAILED', 'Google OAuth answered without an access token.');
    this.token = { value: parsed.data.access_token, expiresAt: Date.now() + parsed.data.expires_in * 1000 };
    return this.token.value;
  }
}

export async function readServiceAccount(file: string): Promise<ServiceAccount> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ShipError(
      'SHIP_ERR_CONFIG',
      `GOOGLE_PLAY_SERVICE_ACCOUNT_FILE ${file} cannot be read (${error instanceof Error ? error.message : String(error)}). Download the service account's JSON key and point the variable at it.`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ShipError(
      'SHIP_ERR_CONFIG',
      `GOOGLE_PLAY_SERVICE_ACCOUNT_FILE ${file} is not JSON. It must be the service account key file Google Cloud downloads.`,
    );
  }
  const parsed = serviceAccount.safeParse(json);
  if (!parsed.success)
    throw new ShipError(
      'SHIP_ERR_CONFIG',
      `GOOGLE_PLAY_SERVICE_ACCOUNT_FILE ${file} lacks client_email, private_key or token_uri. It must be a service account JSON key.`,
    );
  return parsed.data;
}
