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
  SHIP_ERR_OVERLOADED: { httpStatus: 503, exitCode: ExitCode.failedRolledBack },
  SHIP_ERR_DATABASE_UNAVAILABLE: { httpStatus: 503, exitCode: ExitCode.prerequisite },
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
  SHIP_ERR_SELF_APPROVAL: { httpStatus: 409, exitCode: ExitCode.usage },
  SHIP_ERR_LOCKED: { httpStatus: 409, exitCode: ExitCode.prerequisite },
  SHIP_ERR_RUN_NOT_FOUND: { httpStatus: 404, exitCode: ExitCode.usage },
  SHIP_ERR_STEP_FAILED: { httpStatus: 500, exitCode: ExitCode.failedRolledBack },
  SHIP_ERR_ROLLBACK_FAILED: { httpStatus: 500, exitCode: ExitCode.needsHuman },
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

/** A short, single-line description of any thrown value, safe for logs. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
