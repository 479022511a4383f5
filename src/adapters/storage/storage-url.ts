/**
 * Storage URLs: `file:///abs/path` for a local folder, `s3://bucket/prefix` for S3.
 *
 * Everything that echoes a URL back to an operator goes through `redactUrl`, because people do
 * paste `s3://KEY:SECRET@bucket` into settings.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';

import { ShipError } from '../../errors.ts';
import { validatePrefix } from './object-key.ts';
import { redactUrl } from '../../redact.ts';

export interface FileTarget {
  readonly kind: 'file';
  /** Absolute folder path, without a trailing separator. */
  readonly root: string;
  readonly location: string;
}

export interface S3Target {
  readonly kind: 's3';
  readonly bucket: string;
  /** Key prefix inside the bucket without leading or trailing `/`; "" for the bucket root. */
  readonly prefix: string;
  readonly location: string;
  /** Credentials written into the URL as `s3://ACCESS_KEY_ID:SECRET@bucket/prefix`, if any. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

export type StorageTarget = FileTarget | S3Target;

const EXAMPLES = 'file:///var/lib/shipshape/backups or s3://my-bucket/shipshape/backups';

function invalidUrl(raw: string, settingName: string, problem: string): ShipError {
  return new ShipError('SHIP_ERR_STORAGE_URL_INVALID', `${settingName} "${redactUrl(raw)}" ${problem}. Use a URL such as ${EXAMPLES}.`, {
    details: { url: redactUrl(raw) },
  });
}

/**
 * Parses a storage URL. Throws SHIP_ERR_STORAGE_URL_INVALID, with a valid example, for an unknown
 * scheme, a relative file path or a missing bucket.
 */
export function parseStorageUrl(rawUrl: string, settingName = 'Storage URL'): StorageTarget {
  const raw = rawUrl.trim();
  if (raw === '') throw invalidUrl(raw, settingName, 'is empty');
  if (raw.startsWith('/')) {
    throw invalidUrl(raw, settingName, `is a path, not a URL (did you mean ${pathToFileURL(raw).href}?)`);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(raw)?.[1]?.toLowerCase();
  if (scheme === 'file') return parseFileUrl(raw, settingName);
  if (scheme === 's3') return parseS3Url(raw, settingName);
  const what = scheme === undefined ? 'has no scheme' : `has the unsupported scheme \`${scheme}:\``;
  throw invalidUrl(raw, settingName, `${what}; only file:// and s3:// are supported`);
}

function parseFileUrl(raw: string, settingName: string): FileTarget {
  // WHATWG parsing turns `file:backups` and `file://backups` into absolute paths or hosts, which
  // would silently store somewhere unexpected, so the three-slash form is required up front.
  if (!/^file:\/\/(localhost)?\//i.test(raw)) {
    throw invalidUrl(raw, settingName, 'does not name an absolute folder (file URLs need three slashes: file:///abs/path)');
  }
  const url = new URL(raw);
  if (url.search !== '' || url.hash !== '') throw invalidUrl(raw, settingName, 'has a query or fragment');
  let root: string;
  try {
    root = fileURLToPath(url);
  } catch {
    throw invalidUrl(raw, settingName, 'does not name a folder on this machine');
  }
  if (root.length > 1) root = root.replace(/\/+$/, '');
  return { kind: 'file', root, location: pathToFileURL(root).href };
}

function parseS3Url(raw: string, settingName: string): S3Target {
  // URL parsing would silently resolve `a/../b` to `b`; a prefix should mean what it says.
  if (/\/\.{1,2}(?=\/|$|[?#])/.test(raw.slice('s3://'.length))) {
    throw invalidUrl(raw, settingName, 'has an invalid prefix (no empty, `.` or `..` segments)');
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidUrl(raw, settingName, 'is not a valid URL');
  }
  const bucket = url.hostname;
  if (bucket === '') throw invalidUrl(raw, settingName, 'has no bucket (s3://BUCKET/prefix)');
  if (url.port !== '') {
    throw invalidUrl(raw, settingName, 'has a port; the host part is the bucket name, and an S3-compatible endpoint goes in S3_ENDPOINT');
  }
  // Bucket names: 3–63 lowercase letters, digits, dots and hyphens. Underscores and capitals are
  // tolerated because some S3-compatible stores and legacy us-east-1 buckets still have them.
  if (!/^[a-z0-9][a-z0-9._-]{1,253}[a-z0-9]$/i.test(bucket)) {
    throw invalidUrl(raw, settingName, `has an invalid bucket name \`${bucket}\``);
  }
  if (url.search !== '' || url.hash !== '') {
    throw invalidUrl(raw, settingName, 'has a query or fragment; endpoint, region and path style are separate settings');
  }
  let prefix: string;
  try {
    prefix = decodeURIComponent(url.pathname).replace(/^\/+/, '').replace(/\/+$/, '');
  } catch {
    throw invalidUrl(raw, settingName, 'has a malformed percent-encoded prefix');
  }
  try {
    validatePrefix(prefix);
  } catch {
    throw invalidUrl(raw, settingName, 'has an invalid prefix (no empty, `.` or `..` segments)');
  }
  const location = `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
  if (url.username === '' && url.password === '') return { kind: 's3', bucket, prefix, location };
  if (url.username === '' || url.password === '') {
    throw invalidUrl(raw, settingName, 'has incomplete credentials (s3://ACCESS_KEY_ID:SECRET_ACCESS_KEY@bucket/prefix)');
  }
  let credentials: S3Target['credentials'];
  try {
    credentials = { accessKeyId: decodeURIComponent(url.username), secretAccessKey: decodeURIComponent(url.password) };
  } catch {
    throw invalidUrl(raw, settingName, 'has malformed percent-encoded credentials');
  }
  return { kind: 's3', bucket, prefix, location, credentials };
}
