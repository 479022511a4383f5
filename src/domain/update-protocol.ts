/**
 * Expo Updates protocol v1 (docs.expo.dev/technical-specs/expo-updates-1): the manifest and
 * directive bodies, the multipart/mixed response that carries them, and code signing.
 *
 * - A manifest is `{id, createdAt, runtimeVersion, launchAsset, assets, metadata, extra}`; each
 *   asset carries `hash` (base64url SHA-256 of its bytes, which the client checks after the
 *   download), `key`, `contentType`, `fileExtension` and `url`.
 * - A directive is `{type: "noUpdateAvailable"}` or `{type: "rollBackToEmbedded", parameters:
 *   {commitTime}}`; both need protocol version 1.
 * - The response is `multipart/mixed`: each part is named by `content-disposition: form-data;
 *   name="manifest" | "directive" | "extensions"`.
 * - With a code-signing key, the manifest or directive part carries `expo-signature`, a
 *   structured-field dictionary `sig="<base64 RSA-SHA256 of the part's body>", keyid="<id>",
 *   alg="rsa-v1_5-sha256"`; the app verifies it with the certificate built into it.
 *
 * A manifest depends only on the update, the platform and where assets are served, and updates
 * never change once published, so bodies and their signatures are built once per process
 * (`ManifestCache`): the request path does not sign.
 */
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ShipError } from '../errors.ts';
import type { UpdateAsset } from './update-export.ts';
import type { Update, UpdatePlatform } from './updates.ts';

export const PROTOCOL_VERSIONS = [0, 1] as const;
export const SIGNATURE_ALGORITHM = 'rsa-v1_5-sha256';

export interface ManifestAsset {
  readonly hash: string;
  readonly key: string;
  readonly contentType: string;
  readonly fileExtension: string;
  readonly url: string;
}

export interface Manifest {
  readonly id: string;
  readonly createdAt: string;
  readonly runtimeVersion: string;
  readonly launchAsset: ManifestAsset;
  readonly assets: readonly ManifestAsset[];
  readonly metadata: Record<string, string>;
  readonly extra: Record<string, unknown>;
}

export type Directive = { readonly type: 'noUpdateAvailable' } | { readonly type: 'rollBackToEmbedded'; readonly parameters: { readonly commitTime: string } };

export interface CodeSigningKey {
  readonly keyId: string;
  readonly privateKey: KeyObject;
}

/** Loads the PEM private key (PKCS#1 or PKCS#8 RSA) named by UPDATES_CODE_SIGNING_KEY_FILE. */
export function loadCodeSigningKey(file: string | undefined, keyId: string): CodeSigningKey | undefined {
  if (file === undefined) return undefined;
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(file));
  } catch (error) {
    const reason = error instanceof Error && 'code' in error ? String(error.code) : 'not a PEM private key';
    throw new ShipError(
      'SHIP_ERR_CONFIG',
      `UPDATES_CODE_SIGNING_KEY_FILE=${file} could not be read as a private key (${reason}). Point it at the private-key.pem that \`npx expo-updates codesigning:generate\` wrote.`,
    );
  }
  if (privateKey.asymmetricKeyType !== 'rsa') {
    throw new ShipError(
      'SHIP_ERR_CONFIG',
      `UPDATES_CODE_SIGNING_KEY_FILE=${file} holds a ${privateKey.asymmetricKeyType ?? 'non-RSA'} key; Expo code signing (${SIGNATURE_ALGORITHM}) needs an RSA key.`,
    );
  }
  return { keyId, privateKey };
}

/** The `expo-signature` value for `body`. */
export function signatureHeader(body: string, key: CodeSigningKey): string {
  const sig = sign('sha256', Buffer.from(body, 'utf8'), key.privateKey).toString('base64');
  return `sig="${sig}", keyid="${sfString(key.keyId)}", alg="${SIGNATURE_ALGORITHM}"`;
}

/** A structured-field string (RFC 8941): printable ASCII, with `"` and `\` escaped. */
function sfString(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, (character) => `\\${character}`);
}

/** base64url (no padding) of a hex digest, the protocol's `hash` form. */
export function base64UrlOfHex(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64url');
}

export function assetUrl(baseUrl: string, sha256: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/updates/assets/${sha256}`;
}

export function manifestFor(update: Update, platform: UpdatePlatform, assetBaseUrl: string): Manifest | undefined {
  const files = update.platforms[platform];
  if (!files) return undefined;
  const describe = (asset: UpdateAsset): ManifestAsset => ({
    hash: base64UrlOfHex(asset.sha256),
    key: asset.key,
    contentType: asset.contentType,
    fileExtension: asset.fileExtension,
    url: assetUrl(assetBaseUrl, asset.sha256),
  });
  return {
    id: update.id,
    createdAt: update.createdAt.toISOString(),
    runtimeVersion: update.runtimeVersion,
    launchAsset: describe(files.launchAsset),
    assets: files.assets.map(describe),
    metadata: update.metadata,
    extra: update.extra,
  };
}

/** A part of the multipart/mixed response: its name, JSON body, and signature when signed. */
export interface Part {
  readonly name: 'manifest' | 'directive' | 'extensions';
  readonly body: string;
  readonly signature?: string | undefined;
}

export function multipart(parts: readonly Part[]): { contentType: string; body: string } {
  const boundary = `shipshape-${randomBytes(12).toString('hex')}`;
  const chunks: string[] = [];
  for (const part of parts) {
    chunks.push(`--${boundary}\r\n`);
    chunks.push(`content-type: application/json; charset=utf-8\r\n`);
    chunks.push(`content-disposition: form-data; name="${part.name}"\r\n`);
    if (part.signature) chunks.push(`expo-signature: ${part.signature}\r\n`);
    chunks.push(`\r\n${part.body}\r\n`);
  }
  chunks.push(`--${boundary}--\r\n`);
  return { contentType: `multipart/mixed; boundary=${boundary}`, body: chunks.join('') };
}

/** Bodies and signatures built once per update and platform (updates are immutable). */
export class ManifestCache {
  private readonly bodies = new Map<string, Part>();
  private readonly key: CodeSigningKey | undefined;
  private readonly assetBaseUrl: string;
  private readonly maxEntries: number;

  constructor(options: { key: CodeSigningKey | undefined; assetBaseUrl: string; maxEntries?: number }) {
    this.key = options.key;
    this.assetBaseUrl = options.assetBaseUrl;
    this.maxEntries = options.maxEntries ?? 500;
  }

  manifestPart(update: Update, platform: UpdatePlatform): Part | undefined {
    const cacheKey = `m:${update.id}:${platform}`;
    const cached = this.bodies.get(cacheKey);
    if (cached) return cached;
    const manifest = manifestFor(update, platform, this.assetBaseUrl);
    if (!manifest) return undefined;
    return this.remember(cacheKey, 'manifest', JSON.stringify(manifest));
  }

  directivePart(directive: Directive): Part {
    const body = JSON.stringify(directive);
    return this.bodies.get(`d:${body}`) ?? this.remember(`d:${body}`, 'directive', body);
  }

  private remember(cacheKey: string, name: Part['name'], body: string): Part {
    const part: Part = { name, body, signature: this.key ? signatureHeader(body, this.key) : undefined };
    // Bounded: old entries go first (Map keeps insertion order); a dropped one is rebuilt on demand.
    if (this.bodies.size >= this.maxEntries) this.bodies.delete(this.bodies.keys().next().value!);
    this.bodies.set(cacheKey, part);
    return part;
  }
}
