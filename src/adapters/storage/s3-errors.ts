/**
 * Turns what the AWS SDK throws into ShipErrors an operator can act on.
 *
 * SDK messages are not passed through for authentication failures (S3 echoes the string it
 * signed, which names the access key) and every other message is scrubbed of the configured
 * secrets before it is used.
 */
import { describeError, ShipError } from '../../errors.ts';
import { redactSecrets } from '../../redact.ts';

export type S3Action = 'write' | 'read' | 'list' | 'delete';

export interface S3ErrorContext {
  readonly location: string;
  readonly bucket: string;
  /** The endpoint for display, already redacted, e.g. "http://127.0.0.1:9000" or "AWS S3". */
  readonly endpoint: string;
  readonly region: string | undefined;
  /** The setting operators edit to fix the URL, e.g. "BACKUP_STORAGE_URL". */
  readonly settingName: string;
  /** Values that must never appear in a message. */
  readonly secrets: readonly string[];
}

/** Errors meaning the request never reached S3: nothing can have been written. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
/** Errors meaning the connection failed part-way: a write may or may not have landed. */
const BROKEN_CONNECTION_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED']);
const ACCESS_DENIED_NAMES = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
]);
const WRONG_REGION_NAMES = new Set(['PermanentRedirect', 'AuthorizationHeaderMalformed', 'IllegalLocationConstraintException']);

export function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('$metadata' in error)) return undefined;
  const metadata = error.$metadata;
  if (typeof metadata !== 'object' || metadata === null || !('httpStatusCode' in metadata)) return undefined;
  return typeof metadata.httpStatusCode === 'number' ? metadata.httpStatusCode : undefined;
}

function attemptsOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('$metadata' in error)) return undefined;
  const metadata = error.$metadata;
  if (typeof metadata !== 'object' || metadata === null || !('attempts' in metadata)) return undefined;
  return typeof metadata.attempts === 'number' ? metadata.attempts : undefined;
}

export function errorNameOf(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

function errnoOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

/** True when S3 answered that the object (or the multipart upload) does not exist. */
export function isNotFound(error: unknown): boolean {
  const name = errorNameOf(error);
  return name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchUpload' || httpStatusOf(error) === 404;
}

/** True when the failed request cannot have written anything: it never reached the bucket. */
export function neverReachedBucket(error: unknown): boolean {
  const name = errorNameOf(error) ?? '';
  const errno = errnoOf(error) ?? '';
  return (
    CONNECTION_CODES.has(errno) ||
    name === 'CredentialsProviderError' ||
    name === 'NoSuchBucket' ||
    ACCESS_DENIED_NAMES.has(name) ||
    WRONG_REGION_NAMES.has(name)
  );
}

/** Maps any error from an S3 call to a ShipError. */
export function s3ErrorToShipError(
  error: unknown,
  action: S3Action,
  key: string | undefined,
  context: S3ErrorContext,
  extraDetails: Record<string, unknown> = {},
): ShipError {
  if (error instanceof ShipError) return error;
  const name = errorNameOf(error) ?? 'Error';
  const errno = errnoOf(error);
  const status = httpStatusOf(error);
  const attempts = attemptsOf(error);
  const what = key === undefined ? context.location : `\`${key}\` in ${context.location}`;
  const verb = action;
  const details = {
    key,
    location: context.location,
    endpoint: context.endpoint,
    s3Error: name,
    httpStatus: status,
    errno,
    attempts,
    ...extraDetails,
  };
  const options = { cause: error, details };
  const tried = attempts !== undefined && attempts > 1 ? ` after ${attempts} attempts` : '';

  if ((errno !== undefined && (CONNECTION_CODES.has(errno) || BROKEN_CONNECTION_CODES.has(errno))) || name === 'TimeoutError') {
    return new ShipError(
      'SHIP_ERR_STORAGE_UNAVAILABLE',
      `Cannot reach the S3 endpoint ${context.endpoint} to ${verb} ${what} (${errno ?? name}${tried}). ` +
        'Check that the store is running and reachable, and the endpoint setting (S3_ENDPOINT).',
      options,
    );
  }
  if (name === 'NoSuchBucket') {
    return new ShipError(
      'SHIP_ERR_STORAGE_UNAVAILABLE',
      `Bucket \`${context.bucket}\` does not exist at ${context.endpoint}. Create it, or fix ${context.settingName}.`,
      options,
    );
  }
  if (name === 'CredentialsProviderError') {
    return new ShipError(
      'SHIP_ERR_STORAGE_UNAVAILABLE',
      `No S3 credentials were found to ${verb} ${what}. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ` +
        '(or AWS_PROFILE, or give the machine an IAM role).',
      options,
    );
  }
  if (ACCESS_DENIED_NAMES.has(name) || status === 403) {
    return new ShipError(
      'SHIP_ERR_STORAGE_UNAVAILABLE',
      `Access denied to ${verb} ${what} (${name}). Check the S3 credentials (AWS_ACCESS_KEY_ID and ` +
        `AWS_SECRET_ACCESS_KEY, or the ones in ${context.settingName}) and that they allow s3:PutObject, ` +
        `s3:GetObject, s3:DeleteObject and s3:ListBucket on ${context.location}.`,
      options,
    );
  }
  if (WRONG_REGION_NAMES.has(name) || status === 301) {
    return new ShipError(
      'SHIP_ERR_STORAGE_UNAVAILABLE',
      `Bucket \`${context.bucket}\` is not in region ${context.region ?? '(default)'} (${name}). Set AWS_REGION to the bucket's region.`,
      options,
    );
  }
  if (/region is missing/i.test(describeError(error))) {
    return new ShipError(
      'SHIP_ERR_CONFIG',
      `No AWS region is configured for ${context.location}. Set AWS_REGION (any value, e.g. us-east-1, for most S3-compatible stores).`,
      options,
    );
  }
  if (status !== undefined && status >= 500) {
    return new ShipError(
      'SHIP_ERR_STORAGE_UNAVAILABLE',
      `The S3 endpoint ${context.endpoint} failed to ${verb} ${what} (${name}, HTTP ${status}${tried}). Try again later.`,
      options,
    );
  }
  return new ShipError(
    action === 'write' ? 'SHIP_ERR_STORAGE_WRITE_FAILED' : 'SHIP_ERR_STORAGE_UNAVAILABLE',
    `Could not ${verb} ${what}: ${name}: ${redactSecrets(describeError(error), context.secrets)}.`,
    options,
  );
}
