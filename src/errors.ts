/**
 * The one catalogue of Shipshape's errors.
 *
 * Every error an operator or API client can meet has a stable code, the HTTP status
 * it maps to, the CLI exit code it maps to, and a message that gives the cause and
 * then what to do. Code throws `ShipError(code, message)`; the HTTP layer and the CLI
 * each map it to their own world in exactly one place.
 */

/** CLI exit codes, as PRODUCT.md defines them. */
export const ExitCode = {
  /** Done and verified. */
  ok: 0,
  /** Failed, and everything done so far was rolled back cleanly. */
  failedRolledBack: 1,
  /** Usage error or bad input; nothing was attempted. */
  usage: 2,
  /** A prerequisite was not met; nothing changed. */
  prerequisite: 3,
  /** Failed and rollback failed or is impossible: a human must act. */
  needsHuman: 4,
  /**
   * Done, but a check could not be made (what it looks at did not answer), so the result is
   * not known to be right: the report says "unverified" and why, and how to check by hand.
   */
  unverified: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

interface ErrorSpec {
  /** HTTP status when the error reaches an API client. */
  readonly httpStatus: number;
  /** Exit code when the error ends a CLI command. */
  readonly exitCode: ExitCode;
}

export const errorCatalogue = {
  // Input and usage
  SHIP_ERR_VALIDATION: { httpStatus: 400, exitCode: ExitCode.usage },
  SHIP_ERR_BAD_JSON: { httpStatus: 400, exitCode: ExitCode.usage },
  SHIP_ERR_BODY_TOO_LARGE: { httpStatus: 413, exitCode: ExitCode.usage },
  SHIP_ERR_UNSUPPORTED_MEDIA_TYPE: { httpStatus: 415, exitCode: ExitCode.usage },
  SHIP_ERR_URI_TOO_LONG: { httpStatus: 414, exitCode: ExitCode.usage },
  SHIP_ERR_HEADERS_TOO_LARGE: { httpStatus: 431, exitCode: ExitCode.usage },
  SHIP_ERR_REQUEST_TIMEOUT: { httpStatus: 408, exitCode: ExitCode.usage },
  SHIP_ERR_NOT_FOUND: { httpStatus: 404, exitCode: ExitCode.usage },
  SHIP_ERR_METHOD_NOT_ALLOWED: { httpStatus: 405, exitCode: ExitCode.usage },
  SHIP_ERR_CONFIG: { httpStatus: 500, exitCode: ExitCode.usage },
  SHIP_ERR_NOT_SUPPORTED_EMBEDDED: { httpStatus: 400, exitCode: ExitCode.usage },

  // Authentication and authorisation
  SHIP_ERR_UNAUTHENTICATED: { httpStatus: 401, exitCode: ExitCode.usage },
  SHIP_ERR_INVALID_CREDENTIALS: { httpStatus: 401, exitCode: ExitCode.usage },
  SHIP_ERR_FORBIDDEN: { httpStatus: 403, exitCode: ExitCode.usage },
  SHIP_ERR_ADMIN_DISABLED: { httpStatus: 503, exitCode: ExitCode.prerequisite },
  SHIP_ERR_RATE_LIMITED: { httpStatus: 429, exitCode: ExitCode.usage },
  SHIP_ERR_EMAIL_TAKEN: { httpStatus: 409, exitCode: ExitCode.usage },
  SHIP_ERR_RESET_TOKEN_INVALID: { httpStatus: 400, exitCode: ExitCode.usage },
  SHIP_ERR_ACCOUNT_PENDING_DELETION: { httpStatus: 403, exitCode: ExitCode.prerequisite },

  // Service state
  SHIP_ERR_MAINTENANCE: { httpStatus: 503, exitCode: ExitCode.prerequisite },
  SHIP_ERR_READ_ONLY: { httpStatus: 503, exitCode: ExitCode.prerequisite },
  SHIP_ERR_OVERLOADED: { httpStatus: 503, exitCode: ExitCode.failedRolledBack },
  SHIP_ERR_DATABASE_UNAVAILABLE: { httpStatus: 503, exitCode: ExitCode.prerequisite },
  SHIP_ERR_DATABASE_UNREACHABLE: { httpStatus: 503, exitCode: ExitCode.prerequisite },
  SHIP_ERR_DATABASE_MISSING: { httpStatus: 503, exitCode: ExitCode.prerequisite },
  SHIP_ERR_DATABASE_AUTH: { httpStatus: 503, exitCode: ExitCode.prerequisite },
  SHIP_ERR_PORT_IN_USE: { httpStatus: 500, exitCode: ExitCode.prerequisite },
  SHIP_ERR_CANNOT_LISTEN: { httpStatus: 500, exitCode: ExitCode.prerequisite },
  SHIP_ERR_FILE_ACCESS: { httpStatus: 500, exitCode: ExitCode.prerequisite },
  SHIP_ERR_EMBEDDED_DB_LOCKED: { httpStatus: 503, exitCode: ExitCode.prerequisite },

  // Migrations
  SHIP_ERR_MIGRATION_DRIFT: { httpStatus: 500, exitCode: ExitCode.prerequisite },
  SHIP_ERR_MIGRATIONS_PENDING: { httpStatus: 503, exitCode: ExitCode.prerequisite },
  SHIP_ERR_MIGRATION_LOCKED: { httpStatus: 503, exitCode: ExitCode.prerequisite },
  SHIP_ERR_MIGRATION_FAILED: { httpStatus: 500, exitCode: ExitCode.failedRolledBack },
  SHIP_ERR_MIGRATION_NO_DOWN: { httpStatus: 500, exitCode: ExitCode.prerequisite },
  SHIP_ERR_DATABASE_NEWER: { httpStatus: 500, exitCode: ExitCode.prerequisite },

  // External systems
  SHIP_ERR_STORAGE_URL_INVALID: { httpStatus: 500, exitCode: ExitCode.usage },
  SHIP_ERR_STORAGE_NOT_FOUND: { httpStatus: 404, exitCode: ExitCode.prerequisite },
  SHIP_ERR_STORAGE_UNAVAILABLE: { httpStatus: 503, exitCode: ExitCode.prerequisite },
  SHIP_ERR_STORAGE_WRITE_FAILED: { httpStatus: 500, exitCode: ExitCode.failedRolledBack },
  SHIP_ERR_ALERT_ROUTING_INVALID: { httpStatus: 500, exitCode: ExitCode.usage },
  SHIP_ERR_PROVIDER_FAILED: { httpStatus: 502, exitCode: ExitCode.failedRolledBack },

  // Operations engine
  SHIP_ERR_PREREQUISITE_FAILED: { httpStatus: 409, exitCode: ExitCode.prerequisite },
  SHIP_ERR_CONFIRMATION_REQUIRED: { httpStatus: 409, exitCode: ExitCode.usage },
  SHIP_ERR_APPROVAL_REQUIRED: { httpStatus: 409, exitCode: ExitCode.prerequisite },
  SHIP_ERR_APPROVAL_REFUSED: { httpStatus: 409, exitCode: ExitCode.prerequisite },
  SHIP_ERR_SELF_APPROVAL: { httpStatus: 409, exitCode: ExitCode.usage },
  SHIP_ERR_LOCKED: { httpStatus: 409, exitCode: ExitCode.prerequisite },
  SHIP_ERR_RUN_CHANGED: { httpStatus: 409, exitCode: ExitCode.prerequisite },
  SHIP_ERR_RUN_NOT_FOUND: { httpStatus: 404, exitCode: ExitCode.usage },
  SHIP_ERR_STEP_FAILED: { httpStatus: 500, exitCode: ExitCode.failedRolledBack },
  SHIP_ERR_ROLLBACK_FAILED: { httpStatus: 500, exitCode: ExitCode.needsHuman },
  SHIP_ERR_UNVERIFIED: { httpStatus: 500, exitCode: ExitCode.unverified },
  SHIP_ERR_BACKUP_NOT_VERIFIED: { httpStatus: 409, exitCode: ExitCode.prerequisite },
  SHIP_ERR_TOOL_MISSING: { httpStatus: 500, exitCode: ExitCode.prerequisite },
  SHIP_ERR_TOO_LATE: { httpStatus: 409, exitCode: ExitCode.prerequisite },

  // Anything we did not foresee
  SHIP_ERR_INTERNAL: { httpStatus: 500, exitCode: ExitCode.needsHuman },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

export interface ShipErrorOptions {
  cause?: unknown;
  /** Structured, non-secret facts for logs and `--json` output. */
  details?: Record<string, unknown>;
}

/**
 * An error an operator or client is meant to read. `message` states the cause and
 * then what to do about it, e.g. "Backup b-123 is not in storage. Run `shipshape db backups`
 * to list the backups that exist."
 */
export class ShipError extends Error {
  override readonly name = 'ShipError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: ShipErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }

  get httpStatus(): number {
    return errorCatalogue[this.code].httpStatus;
  }

  get exitCode(): ExitCode {
    return errorCatalogue[this.code].exitCode;
  }
}

export function isShipError(error: unknown): error is ShipError {
  return error instanceof ShipError;
}

/** The `code` of a Node.js system error (`ENOENT`, `EEXIST`, …), if the thrown value has one. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
}

/** A short, single-line description of any thrown value, safe for logs. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * How a database failed, when `error` says the database could not be used at all rather than
 * that a statement was wrong: it does not exist (`missing`), refused our credentials (`auth`),
 * could not be reached or is not accepting connections (`unreachable`), or dropped a session
 * in use (`lost`: terminated by an operator, a restore's swap, a server restart). Read from the
 * SQLSTATE, the socket's errno and pg's own connection messages, down the `cause` chain.
 */
export type DatabaseFailure = 'missing' | 'auth' | 'unreachable' | 'lost';

const failureBySqlState: Readonly<Record<string, DatabaseFailure>> = {
  '3D000': 'missing', // invalid_catalog_name: no such database (or one renamed aside by a restore)
  '28000': 'auth', // invalid_authorization_specification: no such role, or pg_hba.conf refused it
  '28P01': 'auth', // invalid_password
  '57P01': 'lost', // admin_shutdown: pg_terminate_backend, or a fast shutdown
  '57P02': 'lost', // crash_shutdown
  '57P03': 'unreachable', // cannot_connect_now: starting up or shutting down
  '53300': 'unreachable', // too_many_connections
};
const failureByErrno: Readonly<Record<string, DatabaseFailure>> = {
  ECONNREFUSED: 'unreachable',
  ENOTFOUND: 'unreachable',
  EAI_AGAIN: 'unreachable',
  ETIMEDOUT: 'unreachable',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  ECONNRESET: 'lost',
  EPIPE: 'lost',
};
/** pg and pg-pool raise these without a code. */
const failureByMessage: ReadonlyArray<readonly [RegExp, DatabaseFailure]> = [
  [/^Connection terminated due to connection timeout/, 'unreachable'],
  [/^timeout exceeded when trying to connect/, 'unreachable'],
  [/^Connection terminated/, 'lost'],
  [/^Client has encountered a connection error and is not queryable/, 'lost'],
];

export function databaseFailureOf(error: unknown): DatabaseFailure | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    const code = 'code' in current && typeof current.code === 'string' ? current.code : undefined;
    if (code !== undefined) {
      const known = failureBySqlState[code] ?? failureByErrno[code];
      if (known) return known;
      if (/^08[0-9A-Z]{3}$/.test(code)) return 'unreachable'; // class 08: connection exception
    }
    for (const [pattern, failure] of failureByMessage) if (pattern.test(current.message)) return failure;
    // Node's connect to a name with several addresses fails with one error per address.
    if (current instanceof AggregateError) {
      for (const inner of current.errors) {
        const failure = databaseFailureOf(inner);
        if (failure) return failure;
      }
    }
  }
  return undefined;
}

const fileProblems: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a file is in the way where a folder should be',
  EISDIR: 'it is a folder, not a file',
  ENOENT: 'no such file or folder',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EEXIST: 'something is already there',
};

const fileActions: Readonly<Record<string, string>> = {
  mkdir: 'create the folder',
  scandir: 'read the folder',
  open: 'open',
  rename: 'rename',
  unlink: 'remove',
  rmdir: 'remove the folder',
  stat: 'look at',
  lstat: 'look at',
  access: 'use',
  copyfile: 'copy',
  chmod: 'change the permissions of',
};

/**
 * The sentence for a failure that comes from the machine or its setup rather than from a bug,
 * when it reached the CLI without a ShipError of its own: the database failing mid-command, a
 * schema that was never migrated, a folder that cannot be written (STATE_DIR, a file:// storage
 * URL). Undefined for anything else, which stays an internal error.
 */
export function explainSetupFailure(error: unknown): ShipError | undefined {
  const failure = databaseFailureOf(error);
  if (failure !== undefined) {
    const code = failure === 'missing' ? 'SHIP_ERR_DATABASE_MISSING' : failure === 'auth' ? 'SHIP_ERR_DATABASE_AUTH' : 'SHIP_ERR_DATABASE_UNREACHABLE';
    return new ShipError(
      code,
      `The database could not be used (${describeError(error) || failure}). Check that PostgreSQL is running and that DATABASE_URL names an existing database and role, then run the command again.`,
      { cause: error },
    );
  }
  const sqlState = error instanceof Error && 'code' in error ? error.code : undefined;
  if (sqlState === '42P01' || sqlState === '3F000') {
    return new ShipError(
      'SHIP_ERR_MIGRATIONS_PENDING',
      `The database lacks part of Shipshape's schema (${describeError(error)}): its migrations have not all been applied, or DATABASE_URL names another database. Run \`shipshape db migrate status\`, then \`shipshape db migrate up\`.`,
      { cause: error },
    );
  }
  if (error instanceof Error && 'code' in error && 'path' in error && typeof error.code === 'string' && typeof error.path === 'string') {
    const problem = fileProblems[error.code];
    if (problem === undefined) return undefined;
    const syscall = 'syscall' in error && typeof error.syscall === 'string' ? error.syscall : '';
    return new ShipError(
      'SHIP_ERR_FILE_ACCESS',
      `Cannot ${fileActions[syscall] ?? 'use'} ${error.path}: ${problem} (${error.code}). Check STATE_DIR and any file path or file:// URL in the configuration: each must name a place this user can write.`,
      { cause: error },
    );
  }
  return undefined;
}
