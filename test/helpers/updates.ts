/**
 * For the update tests: a small `npx expo export` output built on the fly, a code-signing key
 * and certificate made the way `npx expo-updates codesigning:generate` makes them (an RSA key
 * and a self-signed X.509 certificate), and a protocol-level Expo Updates client.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, verify, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface FakeExport {
  readonly dir: string;
  /** Relative path → bytes, every file the export holds. */
  readonly files: ReadonlyMap<string, Buffer>;
  cleanup(): Promise<void>;
}

const md5 = (content: Buffer) => createHash('md5').update(content).digest('hex');

/** An export for ios and android: one bundle each (distinct per `label`), a PNG and a font shared by both. */
export async function makeExport(label: string, options: { expoConfig?: Record<string, unknown> } = {}): Promise<FakeExport> {
  const dir = await mkdtemp(path.join(tmpdir(), 'shipshape-export-'));
  const files = new Map<string, Buffer>();
  const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), randomBytes(64)]);
  const font = Buffer.concat([Buffer.from('00010000', 'hex'), randomBytes(48)]);
  const assets = [
    { path: `assets/${md5(png)}`, ext: 'png', content: png },
    { path: `assets/${md5(font)}`, ext: 'ttf', content: font },
  ];
  const fileMetadata: Record<string, { bundle: string; assets: Array<{ path: string; ext: string }> }> = {};
  for (const platform of ['ios', 'android']) {
    const bundle = Buffer.from(`// ${label} ${platform}\n__d(function(){console.log(${JSON.stringify(label)})});\n`);
    const bundlePath = `_expo/static/js/${platform}/index-${md5(bundle)}.hbc`;
    files.set(bundlePath, bundle);
    fileMetadata[platform] = { bundle: bundlePath, assets: assets.map(({ path: p, ext }) => ({ path: p, ext })) };
  }
  for (const asset of assets) files.set(asset.path, asset.content);
  files.set('metadata.json', Buffer.from(JSON.stringify({ version: 0, bundler: 'metro', fileMetadata })));
  if (options.expoConfig) files.set('expoConfig.json', Buffer.from(JSON.stringify(options.expoConfig)));
  for (const [relative, content] of files) {
    await mkdir(path.dirname(path.join(dir, relative)), { recursive: true });
    await writeFile(path.join(dir, relative), content);
  }
  return { dir, files, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface SigningFiles {
  readonly keyFile: string;
  readonly certificatePem: string;
  cleanup(): Promise<void>;
}

/** An RSA private key and the self-signed certificate an app would embed (certs/certificate.pem). */
export async function makeSigningFiles(): Promise<SigningFiles> {
  const dir = await mkdtemp(path.join(tmpdir(), 'shipshape-codesigning-'));
  const keyFile = path.join(dir, 'private-key.pem');
  const certFile = path.join(dir, 'certificate.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '3650',
      '-subj',
      '/CN=Shipshape test',
      '-addext',
      'keyUsage=critical,digitalSignature',
      '-addext',
      'extendedKeyUsage=codeSigning',
    ],
    { stdio: 'ignore' },
  );
  const { readFile } = await import('node:fs/promises');
  return { keyFile, certificatePem: await readFile(certFile, 'utf8'), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface ProtocolPart {
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface ManifestResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly parts: ProtocolPart[];
  /** The error envelope, for 4xx. */
  readonly error?: { code: string; message: string };
}

export interface ClientHeaders {
  readonly platform?: string;
  readonly runtimeVersion?: string;
  readonly channel?: string;
  readonly clientId?: string;
  readonly currentUpdateId?: string;
  readonly protocolVersion?: string;
  readonly extra?: Record<string, string>;
}

/** What expo-updates sends: `GET <updates.url>` with the protocol's headers. */
export async function fetchManifest(baseUrl: string, headers: ClientHeaders): Promise<ManifestResponse> {
  const sent: Record<string, string> = {
    accept: 'multipart/mixed,application/expo+json,application/json',
    'expo-expect-signature': 'sig, keyid="main", alg="rsa-v1_5-sha256"',
  };
  if (headers.protocolVersion !== '') sent['expo-protocol-version'] = headers.protocolVersion ?? '1';
  if (headers.platform !== undefined) sent['expo-platform'] = headers.platform;
  if (headers.runtimeVersion !== undefined) sent['expo-runtime-version'] = headers.runtimeVersion;
  if (headers.channel !== undefined) sent['expo-channel-name'] = headers.channel;
  if (headers.clientId !== undefined) sent['eas-client-id'] = headers.clientId;
  if (headers.currentUpdateId !== undefined) sent['expo-current-update-id'] = headers.currentUpdateId;
  const response = await fetch(`${baseUrl}/updates/manifest`, { headers: { ...sent, ...headers.extra } });
  const text = await response.text();
  const contentType = response.headers.get('content-type') ?? '';
  if (response.status >= 400)
    return { status: response.status, headers: response.headers, parts: [], error: (JSON.parse(text) as { error: { code: string; message: string } }).error };
  return { status: response.status, headers: response.headers, parts: contentType.startsWith('multipart/mixed') ? parseMultipart(text, contentType) : [] };
}

/** RFC 2046 multipart: parts between `--boundary` lines, each headers, a blank line, the body. */
export function parseMultipart(text: string, contentType: string): ProtocolPart[] {
  const boundary = /boundary=("?)([^";]+)\1/.exec(contentType)?.[2];
  if (!boundary) throw new Error(`no boundary in ${contentType}`);
  const sections = text.split(`--${boundary}`);
  const closing = sections.pop();
  if (!closing?.startsWith('--')) throw new Error('the multipart body has no closing boundary');
  return sections.slice(1).map((section) => {
    const trimmed = section.replace(/^\r\n/, '').replace(/\r\n$/, '');
    const split = trimmed.indexOf('\r\n\r\n');
    const headers: Record<string, string> = {};
    for (const line of trimmed.slice(0, split).split('\r\n')) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { headers, body: trimmed.slice(split + 4) };
  });
}

export function partNamed(response: ManifestResponse, name: string): ProtocolPart | undefined {
  return response.parts.find((part) => part.headers['content-disposition']?.includes(`name="${name}"`));
}

/** Parses an expo-signature structured dictionary (`sig="…", keyid="…", alg="…"`). */
export function parseSignature(header: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const match of header.matchAll(/([a-z]+)="((?:[^"\\]|\\.)*)"/g)) fields[match[1]!] = match[2]!;
  return fields;
}

/** Verifies a part's expo-signature with the app's certificate, as expo-updates does. */
export function signatureValid(part: ProtocolPart, certificatePem: string): boolean {
  const header = part.headers['expo-signature'];
  if (!header) return false;
  const { sig, alg } = parseSignature(header);
  if (!sig || (alg !== undefined && alg !== 'rsa-v1_5-sha256')) return false;
  return verify('sha256', Buffer.from(part.body, 'utf8'), new X509Certificate(certificatePem).publicKey, Buffer.from(sig, 'base64'));
}

export function base64UrlSha256(content: Buffer): string {
  return createHash('sha256').update(content).digest('base64url');
}
