/**
 * Object keys: the one shape every backend accepts.
 *
 * A key is `/`-separated segments, e.g. `backups/2025-01-31T02-00-00Z/dump.sql`. The rules are the
 * intersection of what S3 and a POSIX folder accept, so a key that works on one backend works on
 * the other and moving BACKUP_STORAGE_URL from `file://` to `s3://` never strands an object.
 */
import { ShipError } from '../../errors.ts';

/** S3 limits a full key (store prefix included) to 1024 bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024;
/** NAME_MAX on common filesystems; a longer segment cannot be a file or folder name. */
const MAX_SEGMENT_BYTES = 255;
/** The file backend's in-progress files start with this; no key may, or list() would hide it. */
export const TEMP_NAME_PREFIX = '.shipshape-tmp-';

// NUL cannot appear in a file name; other control characters are legal but make
// keys unprintable in logs and listings, and S3 advises against them.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** Why `segment` is not a valid key segment, or undefined if it is. */
function segmentProblem(segment: string): string | undefined {
  if (segment === '') return 'has an empty segment (leading, trailing or doubled `/`)';
  if (segment === '.' || segment === '..') return `has a \`${segment}\` segment`;
  if (CONTROL_CHARACTERS.test(segment)) return 'contains a control character';
  if (segment.includes('\\')) return 'contains a backslash';
  if (segment.startsWith(TEMP_NAME_PREFIX)) return `has a segment starting with \`${TEMP_NAME_PREFIX}\`, which is reserved`;
  if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) return `has a segment longer than ${MAX_SEGMENT_BYTES} bytes`;
  return undefined;
}

function invalid(what: string, value: string, problem: string): ShipError {
  return new ShipError(
    'SHIP_ERR_VALIDATION',
    `Object ${what} ${JSON.stringify(value)} ${problem}. Use relative, \`/\`-separated names such as "backups/b-20250131/dump.sql".`,
    { details: { [what]: value } },
  );
}

/** Throws SHIP_ERR_VALIDATION unless `key` names an object; returns its segments. */
export function validateKey(key: string): string[] {
  if (key === '') throw invalid('key', key, 'is empty');
  if (key.startsWith('/')) throw invalid('key', key, 'is absolute');
  const segments = key.split('/');
  for (const segment of segments) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) throw invalid('key', key, problem);
  }
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) throw invalid('key', key, `is longer than ${MAX_KEY_BYTES} bytes`);
  return segments;
}

/** Whether `key` would pass validateKey. */
export function isValidKey(key: string): boolean {
  try {
    validateKey(key);
    return true;
  } catch {
    return false;
  }
}

/**
 * Throws SHIP_ERR_VALIDATION unless `prefix` can start keys. Like S3, a prefix is matched as a
 * string, so "backups/b-2025" matches "backups/b-20250131/dump.sql"; "" matches everything.
 */
export function validatePrefix(prefix: string): void {
  if (prefix === '') return;
  if (prefix.startsWith('/')) throw invalid('prefix', prefix, 'is absolute');
  const segments = prefix.split('/');
  // A trailing `/` ("backups/") leaves one empty last segment, which is allowed.
  if (segments.at(-1) === '') segments.pop();
  for (const segment of segments) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) throw invalid('prefix', prefix, problem);
  }
}

/** Orders keys the way S3 lists them: by their UTF-8 bytes. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
