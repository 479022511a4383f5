/**
 * Configuration, compiled once from the environment (and an optional `.env`).
 *
 * Every variable is declared here with its default and an example of a good value, so a
 * bad value stops start-up with one line that names the variable, says what is wrong
 * with it and shows what would be right. Nothing else in Shipshape reads `process.env`.
 */
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ShipError } from '../errors.ts';
import { durationSchema } from './duration.ts';
import { isRecurrence } from '../time/recurrence.ts';
import { isTimeZone } from '../time/zoned-time.ts';

const port = z.coerce.number().int().min(0).max(65_535);
const positiveInt = z.coerce.number().int().positive();
const booleanFlag = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((value) => value === 'true' || value === '1' || value === 'yes');
const url = z.url();
const postgresUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://')
  .refine(
    (value) => URL.canParse(value),
    'is not a valid URL: check the host and the port, and percent-encode @ : / # in the user or password (%40 %3A %2F %23)',
  );
const recurrence = z.string().refine(isRecurrence, 'must be a schedule like "every day at 03:00" or "first sunday of every month at 02:00"');
const timeZone = z.string().refine(isTimeZone, 'must be an IANA time zone such as America/Los_Angeles or UTC');
const storageUrl = z.string().regex(/^(file:\/\/\/|s3:\/\/[^/]+)/, 'must be file:///absolute/path or s3://bucket/prefix');

interface VariableSpec {
  readonly schema: z.ZodType;
  readonly example: string;
}

// The two variables the commands that only read local files need (loadLocalConfig).
const stateDirVariable = { schema: z.string().min(1).default('./.shipshape'), example: '/var/lib/shipshape' } as const;
const logLevelVariable = { schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), example: 'info' } as const;

/**
 * Each variable: its schema and an example shown when the value is wrong. Declared on first use,
 * not at import: constructing a hundred schemas was a fifth of `shipshape runs`'s CPU.
 */
const declareVariables = () =>
  ({
    PORT: { schema: port.default(3000), example: '3000' },
    HOST: { schema: z.string().min(1).default('127.0.0.1'), example: '127.0.0.1' },
    DATABASE_URL: { schema: postgresUrl.optional(), example: 'postgres://app:secret@db.internal:5432/app' },
    DATABASE_POOL_MAX: { schema: positiveInt.max(1000).default(10), example: '10' },
    DATABASE_PREPARED_STATEMENTS: { schema: booleanFlag.default(true), example: 'false (behind PgBouncer in transaction mode before 1.21)' },
    DATABASE_STATEMENT_TIMEOUT_MS: { schema: positiveInt.default(30_000), example: '30000' },
    DATABASE_CONNECT_TIMEOUT_MS: { schema: positiveInt.default(5_000), example: '5000' },
    STATE_DIR: stateDirVariable,
    ADMIN_TOKEN: { schema: z.string().min(16, 'must be at least 16 characters').optional(), example: 'a long random string (openssl rand -hex 32)' },
    STARTUP_PROGRESS_INTERVAL_MS: { schema: positiveInt.min(10).max(60_000).default(2_000), example: '2000' },
    LOG_LEVEL: logLevelVariable,
    PUBLIC_URL: { schema: url.default('http://127.0.0.1:3000'), example: 'https://app.example.com' },
    APP_RESET_URL: {
      schema: url
        .refine((value) => !/^(javascript|data|vbscript|file|blob):/i.test(value), "must be the app's own scheme (tasks://…) or an https:// universal link")
        .optional(),
      example: 'tasks://reset-password',
    },
    API_URL: { schema: url.optional(), example: 'https://api.example.com' },
    SESSION_TTL_HOURS: { schema: positiveInt.default(24 * 30), example: '720' },
    PASSWORD_RESET_TTL_MINUTES: { schema: positiveInt.default(60), example: '60' },
    DELETION_GRACE_DAYS: { schema: z.coerce.number().int().min(0).max(365).default(30), example: '30' },
    TRUST_PROXY: { schema: booleanFlag.default(false), example: 'true' },
    OVERLOAD_EVENT_LOOP_DELAY_MS: { schema: z.coerce.number().int().min(0).max(60_000).default(1_000), example: '1000 (0 turns load shedding off)' },
    BACKUP_STORAGE_URL: { schema: storageUrl.optional(), example: 's3://my-backups/database' },
    LEGAL_STORAGE_URL: { schema: storageUrl.optional(), example: 's3://my-legal/gdpr-deletions' },
    BACKUP_COMPRESSION_LEVEL: { schema: z.coerce.number().int().min(0).max(9).default(1), example: '1' },
    BACKUP_RESTORE_JOBS: { schema: positiveInt.max(64).default(2), example: '2' },
    BACKUP_KEEP_DAILY: { schema: z.coerce.number().int().min(0).max(3660).default(7), example: '7' },
    BACKUP_KEEP_WEEKLY: { schema: z.coerce.number().int().min(0).max(520).default(4), example: '4' },
    BACKUP_KEEP_MONTHLY: { schema: z.coerce.number().int().min(0).max(1200).default(6), example: '6' },
    BACKUP_SCRATCH_DATABASE_URL: { schema: postgresUrl.optional(), example: 'postgres://ops:secret@db.internal:5432/postgres' },
    PG_BIN_DIR: { schema: z.string().min(1).optional(), example: '/usr/lib/postgresql/16/bin' },
    MIGRATE_BACKUP_MAX_AGE: { schema: durationSchema.refine((ms) => ms > 0, 'must be longer than 0s').default(3_600_000), example: '1h' },
    S3_ENDPOINT: { schema: url.optional(), example: 'http://127.0.0.1:9000' },
    S3_FORCE_PATH_STYLE: { schema: booleanFlag.default(false), example: 'true' },
    AWS_REGION: { schema: z.string().min(1).default('us-east-1'), example: 'eu-west-1' },
    REDIS_URL: {
      schema: z
        .string()
        .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
        .optional(),
      example: 'redis://127.0.0.1:6379',
    },
    TASK_LIST_CACHE_MAX_MB: { schema: positiveInt.max(65_536).default(128), example: '128' },
    REDIS_PREFIX: {
      schema: z
        .string()
        .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1-64 letters, digits or _.:-')
        .default('shipshape:'),
      example: 'shipshape:',
    },
    APP_STATE_POLL_MS: { schema: positiveInt.min(100).max(60_000).default(1_000), example: '1000' },
    EXPO_PUSH_URL: { schema: url.default('https://exp.host/--/api/v2/push/send'), example: 'https://exp.host/--/api/v2/push/send' },
    EXPO_ACCESS_TOKEN: { schema: z.string().min(1).optional(), example: 'the access token from expo.dev (Enhanced Security for Push Notifications)' },
    SMTP_URL: {
      schema: z
        .string()
        .regex(/^smtps?:\/\//, 'must start with smtp:// or smtps://')
        .optional(),
      example: 'smtp://user:pass@smtp.example.com:587',
    },
    MAIL_FROM: { schema: z.string().min(3).default('Shipshape <no-reply@localhost>'), example: 'Tasks <no-reply@example.com>' },
    SLACK_WEBHOOK_URL: { schema: url.optional(), example: 'https://hooks.slack.com/services/T000/B000/XXXX' },
    PAGERDUTY_ROUTING_KEY: { schema: z.string().min(1).optional(), example: 'a 32-character integration key' },
    PAGERDUTY_EVENTS_URL: { schema: url.default('https://events.pagerduty.com'), example: 'https://events.pagerduty.com' },
    ALERT_ROUTING_FILE: { schema: z.string().min(1).optional(), example: './alert-routing.json' },
    ALERT_EVALUATION_INTERVAL: {
      schema: durationSchema.refine((ms) => ms >= 1_000 && ms <= 3_600_000, 'must be between 1s and 1h').default(60_000),
      example: '1m',
    },
    METRICS_FLUSH_INTERVAL: {
      schema: durationSchema.refine((ms) => ms >= 1_000 && ms <= 60_000, 'must be between 1s and 60s').default(10_000),
      example: '10s',
    },
    STATUS_PAGE_WEBHOOK_URL: { schema: url.optional(), example: 'https://status.example.com/hooks/shipshape' },
    SENTRY_API_URL: { schema: url.default('https://sentry.io'), example: 'https://sentry.io' },
    SENTRY_ORG: {
      schema: z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,100}$/, 'must be the organization slug from sentry.io/organizations/<slug>/')
        .optional(),
      example: 'my-org',
    },
    SENTRY_TOKEN: { schema: z.string().min(1).optional(), example: 'an organization auth token with org:read' },
    CLOUDFLARE_API_URL: { schema: url.default('https://api.cloudflare.com/client/v4'), example: 'https://api.cloudflare.com/client/v4' },
    CLOUDFLARE_API_TOKEN: { schema: z.string().min(1).optional(), example: 'an API token with the Zone > Cache Purge permission' },
    CLOUDFLARE_ZONE_ID: {
      schema: z
        .string()
        .regex(/^[A-Za-z0-9]{1,64}$/, 'must be the zone id (32 hex characters) from the zone overview page')
        .optional(),
      example: '023e105f4ecef8ad9ca31a8372d0c353',
    },
    CDN_BASE_URL: { schema: url.optional(), example: 'https://cdn.example.com' },
    SHIPSHAPE_OPERATOR: { schema: z.string().min(1).optional(), example: 'alice' },
    SHIPSHAPE_APPROVAL_TTL_MINUTES: { schema: positiveInt.max(7 * 24 * 60).default(60), example: '60' },
    SHIPSHAPE_ALLOW_INLINE_APPROVAL: { schema: booleanFlag.default(false), example: 'false' },
    SCHEDULER_POLL_MS: { schema: positiveInt.min(200).max(60_000).default(1_000), example: '1000' },
    BACKUP_SCHEDULE: { schema: recurrence.default('every day at 03:00'), example: 'every day at 03:00' },
    BACKUP_SCHEDULE_TIME_ZONE: { schema: timeZone.default('UTC'), example: 'UTC' },
    MAINTENANCE_WINDOW: { schema: recurrence.default('first sunday of every month at 02:00'), example: 'first sunday of every month at 02:00' },
    MAINTENANCE_TIME_ZONE: { schema: timeZone.default('America/Los_Angeles'), example: 'America/Los_Angeles' },
    MAINTENANCE_DURATION: { schema: durationSchema.refine((ms) => ms >= 60_000, 'must be at least 1m').default(2 * 3_600_000), example: '2h' },
    MAINTENANCE_NOTICE: { schema: durationSchema.refine((ms) => ms >= 60_000, 'must be at least 1m').default(72 * 3_600_000), example: '72h' },
    MAINTENANCE_EMAIL_RATE: { schema: positiveInt.max(1_000).default(10), example: '10' },
    APP_LOG_DIR: { schema: z.string().min(1).optional(), example: '/var/log/app' },
    APP_LOG_RETENTION_DAYS: { schema: positiveInt.max(3_650).default(30), example: '30' },
    ADMIN_TOKEN_OVERLAP: { schema: durationSchema.refine((ms) => ms >= 60_000, 'must be at least 1m').default(24 * 3_600_000), example: '24h' },
    MAINTENANCE_ROTATE_DATABASE_PASSWORD: { schema: booleanFlag.default(false), example: 'true' },
    MAINTENANCE_DATABASE_URL_FILE: { schema: z.string().min(1).optional(), example: '/etc/shipshape/database-url' },
    SMOKE_TEST_EMAIL: { schema: z.email().default('smoke-test@shipshape.invalid'), example: 'smoke-test@example.com' },
    APP_REPO_DIR: { schema: z.string().min(1).optional(), example: '/srv/tasks-app (the mobile app repository, a git clone)' },
    APP_REPO_MAIN_BRANCH: {
      schema: z
        .string()
        .regex(/^[A-Za-z0-9._/-]{1,100}$/, 'must be a branch name')
        .default('main'),
      example: 'main',
    },
    APP_REPO_REMOTE: {
      schema: z
        .string()
        .regex(/^[A-Za-z0-9._-]{1,100}$/, 'must be a git remote name')
        .default('origin'),
      example: 'origin',
    },
    RELEASE_NOTES_DIR: { schema: z.string().min(1).default('release-notes'), example: 'release-notes (relative to APP_REPO_DIR; the notes are <version>.md)' },
    RELEASE_CI_CHECK_URL: { schema: url.optional(), example: 'https://ci.example.com/api/status/{sha}' },
    RELEASE_CI_CHECK_TOKEN: { schema: z.string().min(1).optional(), example: 'a CI API token (sent as Bearer)' },
    RELEASE_CI_CHECK_COMMAND: {
      schema: z.string().min(1).optional(),
      example: 'gh run list --commit {sha} --json conclusion -q ".[0].conclusion == \\"success\\""',
    },
    EAS_BIN: { schema: z.string().min(1).default('npx eas-cli'), example: 'npx eas-cli' },
    EAS_BUILD_POLL_INTERVAL: {
      schema: durationSchema.refine((ms) => ms >= 100 && ms <= 600_000, 'must be between 100ms and 10m').default(30_000),
      example: '30s',
    },
    EAS_BUILD_TIMEOUT: { schema: durationSchema.refine((ms) => ms >= 1_000, 'must be at least 1s').default(3 * 3_600_000), example: '3h' },
    GOOGLE_PLAY_PACKAGE_NAME: {
      schema: z
        .string()
        .regex(/^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$/, 'must be the application id, e.g. com.example.tasks')
        .optional(),
      example: 'com.example.tasks',
    },
    GOOGLE_PLAY_SERVICE_ACCOUNT_FILE: { schema: z.string().min(1).optional(), example: '/etc/shipshape/play-service-account.json' },
    GOOGLE_PLAY_API_URL: { schema: url.default('https://androidpublisher.googleapis.com'), example: 'https://androidpublisher.googleapis.com' },
    ASC_KEY_ID: {
      schema: z
        .string()
        .regex(/^[A-Z0-9]{6,20}$/, 'must be the key id shown in App Store Connect > Users and Access > Integrations')
        .optional(),
      example: '2X9R4HXF34',
    },
    ASC_ISSUER_ID: { schema: z.string().min(1).optional(), example: '57246542-96fe-1a63-e053-0824d011072a' },
    ASC_PRIVATE_KEY_FILE: { schema: z.string().min(1).optional(), example: '/etc/shipshape/AuthKey_2X9R4HXF34.p8' },
    ASC_APP_ID: {
      schema: z
        .string()
        .regex(/^[0-9]{1,20}$/, 'must be the numeric Apple ID of the app')
        .optional(),
      example: '1234567890',
    },
    ASC_API_URL: { schema: url.default('https://api.appstoreconnect.apple.com'), example: 'https://api.appstoreconnect.apple.com' },
    RELEASE_ROLLOUT_STEPS: {
      schema: z
        .string()
        .regex(/^\d+(\.\d+)?(,\d+(\.\d+)?)*$/, 'must be percentages separated by commas')
        .transform((text) => text.split(',').map(Number))
        .refine((steps) => steps.every((p, i) => p > 0 && p <= 100 && (i === 0 || p > (steps[i - 1] ?? 0))) && steps.at(-1) === 100, 'must rise and end at 100')
        .default([5, 10, 25, 50, 100]),
      example: '5,10,25,50,100',
    },
    RELEASE_STEP_INTERVAL: { schema: durationSchema.refine((ms) => ms >= 1_000, 'must be at least 1s').default(24 * 3_600_000), example: '24h' },
    RELEASE_GATE_RECHECK: { schema: durationSchema.refine((ms) => ms >= 1_000, 'must be at least 1s').default(3_600_000), example: '1h' },
    RELEASE_GATE_WINDOW: { schema: durationSchema.refine((ms) => ms >= 60_000, 'must be at least 1m').default(24 * 3_600_000), example: '24h' },
    RELEASE_GATE_MIN_SESSIONS: { schema: positiveInt.default(500), example: '500' },
    RELEASE_GATE_MIN_REQUESTS: { schema: positiveInt.default(1_000), example: '1000' },
    RELEASE_GATE_MAX_CRASH_FREE_DROP: { schema: z.coerce.number().min(0).max(1).default(0.005), example: '0.005 (half a percentage point)' },
    RELEASE_GATE_MAX_ERROR_RATE_RISE: { schema: z.coerce.number().min(0).max(1).default(0.005), example: '0.005' },
    SENTRY_RELEASE_NAME: {
      schema: z
        .string()
        .regex(/\{version\}/, 'must contain {version}')
        .default('{version}'),
      example: 'com.example.tasks@{version}',
    },
    UPDATES_STORAGE_URL: { schema: storageUrl.optional(), example: 's3://my-updates/ota' },
    UPDATES_ASSET_BASE_URL: { schema: url.optional(), example: 'https://cdn.example.com' },
    UPDATES_CODE_SIGNING_KEY_FILE: { schema: z.string().min(1).optional(), example: './keys/private-key.pem' },
    UPDATES_CODE_SIGNING_KEY_ID: {
      schema: z
        .string()
        .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits or ._- (the keyid in the app config, "main" by default)')
        .default('main'),
      example: 'main',
    },
    UPDATES_GATE_MIN_SAMPLE: { schema: positiveInt.max(10_000_000).default(500), example: '500' },
    UPDATES_SENTRY_RELEASE: {
      schema: z
        .string()
        .min(1)
        .max(200)
        .refine((text) => text.includes('{updateId}'), 'must contain {updateId}')
        .optional(),
      example: 'tasks@{runtimeVersion}+{updateId}',
    },
  }) as const;

type Variables = ReturnType<typeof declareVariables>;
let declared: Variables | undefined;
const variables = (): Variables => (declared ??= declareVariables());
type RawConfig = { [K in keyof Variables]: z.output<Variables[K]['schema']> };

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Unset → the embedded PGlite database under `stateDir/db`. */
  readonly databaseUrl: string | undefined;
  readonly database: {
    readonly poolMax: number;
    /** Named statements for the hot queries (PostgreSQL only; see src/db/pool.ts). */
    readonly preparedStatements: boolean;
    readonly statementTimeoutMs: number;
    readonly connectTimeoutMs: number;
  };
  /** Absolute path of the state directory. */
  readonly stateDir: string;
  readonly adminToken: string | undefined;
  readonly logLevel: RawConfig['LOG_LEVEL'];
  /** While `serve` prepares (first start: the embedded cluster, migrations), one progress line this often. */
  readonly startupProgressIntervalMs: number;
  readonly publicUrl: string;
  /** The app's reset screen as a deep link; the reset email offers it besides the web page (unset → the web page only). */
  readonly appResetUrl: string | undefined;
  /** Where the CLI finds the running API. */
  readonly apiUrl: string;
  readonly sessionTtlHours: number;
  readonly passwordResetTtlMinutes: number;
  /** Days between a deletion request and the earliest erasure (GDPR grace period). */
  readonly deletionGraceDays: number;
  readonly trustProxy: boolean;
  /** Above this event-loop delay the API sheds load with 503 SHIP_ERR_OVERLOADED; 0 never sheds. */
  readonly overloadEventLoopDelayMs: number;
  readonly backupStorageUrl: string;
  readonly legalStorageUrl: string;
  /** Backup and restore (src/ops/backups). */
  readonly backups: {
    /** pg_dump's compression level for custom-format dumps (0-9; 1 is fast, see docs/backups.md). */
    readonly compressionLevel: number;
    /** pg_restore --jobs for restores. */
    readonly restoreJobs: number;
    /** Grandfather-father-son retention: how many daily, weekly and monthly backups `db prune` keeps. */
    readonly keep: { readonly daily: number; readonly weekly: number; readonly monthly: number };
    /** A server where `--verify-restore` may create scratch databases; default the DATABASE_URL server. */
    readonly scratchDatabaseUrl: string | undefined;
    /** Folder holding pg_dump and pg_restore; unset → found on PATH. */
    readonly pgBinDir: string | undefined;
  };
  /** `db migrate up` needs a verified backup at most this old (ms), or `--backup` to take one. */
  readonly migrateBackupMaxAgeMs: number;
  readonly s3: {
    readonly endpoint: string | undefined;
    readonly forcePathStyle: boolean;
    readonly region: string;
  };
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key and pub/sub channel, so deployments can share one Redis. */
  readonly redisPrefix: string;
  /** Bound on the in-process task-list cache (without Redis), in MB of JSON held. */
  readonly taskListCacheMaxMb: number;
  /** How often each instance re-reads shared state, the safety net under LISTEN/NOTIFY and pub/sub. */
  readonly appStatePollMs: number;
  readonly push: {
    /** Expo's send endpoint; receipts are read from `getReceipts` beside it. */
    readonly expoPushUrl: string;
    readonly expoAccessToken: string | undefined;
  };
  readonly smtpUrl: string | undefined;
  readonly mailFrom: string;
  readonly alerts: {
    readonly slackWebhookUrl: string | undefined;
    readonly pagerDutyRoutingKey: string | undefined;
    readonly pagerDutyEventsUrl: string;
    readonly routingFile: string | undefined;
    /** How often the watchdog (one worker at a time) evaluates the runbook's numbers. */
    readonly evaluationIntervalMs: number;
  };
  /** How often each API instance writes its request counts to the shared table. */
  readonly metricsFlushIntervalMs: number;
  /** Live operations (issue 5): status page, error tracking and CDN. */
  readonly statusPageWebhookUrl: string | undefined;
  readonly sentry: {
    readonly apiUrl: string;
    /** Stats are read only when both the organization and a token are set. */
    readonly org: string | undefined;
    readonly token: string | undefined;
  };
  readonly cdn: {
    readonly cloudflareApiUrl: string;
    readonly cloudflareApiToken: string | undefined;
    readonly cloudflareZoneId: string | undefined;
    /** Where the CDN serves files; `cdn purge --files /path` is resolved against it, `--all` is verified on it. */
    readonly baseUrl: string | undefined;
  };
  /** The scheduler (src/scheduler) and its built-in schedules: the daily backup starts on, the maintenance window paused. */
  readonly scheduler: {
    /** How often each worker looks for due schedules and scheduled notifications. */
    readonly pollMs: number;
    /** The daily backup (then retention prune): a recurrence phrase and its time zone. */
    readonly backup: { readonly recurrence: string; readonly timeZone: string };
  };
  /** The monthly maintenance window (runbook: Monthly Maintenance Checklist). */
  readonly maintenance: {
    readonly window: string;
    readonly timeZone: string;
    readonly durationMs: number;
    /** How long before the window users are told (banner, push, email): the runbook's T-72 hours. */
    readonly noticeMs: number;
    /** Notice emails per second, sent in batches from the job queue. */
    readonly emailRatePerSecond: number;
    /** The application's log folder; `*.log` files older than `appLogRetentionDays` are cleared. Unset → nothing is cleared. */
    readonly appLogDir: string | undefined;
    readonly appLogRetentionDays: number;
    /** After a credential rotation, how long the old admin tokens keep working. */
    readonly adminTokenOverlapMs: number;
    /** Also rotate the application's database role password (DATABASE_URL's user). */
    readonly rotateDatabasePassword: boolean;
    /** Where the rotated connection string is written (the deployment reads DATABASE_URL from there). */
    readonly databaseUrlFile: string | undefined;
    /** The dedicated account the smoke tests sign in as. */
    readonly smokeTestEmail: string;
  };
  /** Deploy New Version / Rollback Deployment (src/ops/release, issue 14). */
  readonly release: {
    /** The mobile app's repository (a git clone whose remote is the source of truth). */
    readonly appRepoDir: string | undefined;
    readonly mainBranch: string;
    readonly remote: string;
    /** Folder of `<version>.md` release notes, relative to the app repository. */
    readonly notesDir: string;
    readonly ciCheckUrl: string | undefined;
    readonly ciCheckToken: string | undefined;
    readonly ciCheckCommand: string | undefined;
    /** How eas-cli is started: words split on spaces (`npx eas-cli`, `/usr/local/bin/eas`). */
    readonly easBin: string;
    readonly easPollMs: number;
    readonly easTimeoutMs: number;
    readonly play: { readonly packageName: string | undefined; readonly serviceAccountFile: string | undefined; readonly apiUrl: string };
    readonly appStore: {
      readonly keyId: string | undefined;
      readonly issuerId: string | undefined;
      readonly privateKeyFile: string | undefined;
      readonly appId: string | undefined;
      readonly apiUrl: string;
    };
    /** Play's staged rollout, percent per step; Apple follows its own 7-day curve. */
    readonly rolloutSteps: readonly number[];
    readonly stepIntervalMs: number;
    /** How soon the gates are read again when the sample was too small to judge. */
    readonly gateRecheckMs: number;
    readonly gates: {
      readonly windowMs: number;
      readonly minSessions: number;
      readonly minRequests: number;
      readonly maxCrashFreeDrop: number;
      readonly maxErrorRateRise: number;
      /** How the app names its releases in Sentry, `{version}` replaced. */
      readonly sentryReleaseName: string;
    };
  };
  readonly operator: string;
  /** Over-the-air updates (Expo Updates protocol v1). */
  readonly updates: {
    /** Where update bundles and assets are stored (content-addressed under `assets/`). */
    readonly storageUrl: string;
    /** The base of asset URLs in manifests: the CDN in front of Shipshape, or PUBLIC_URL. */
    readonly assetBaseUrl: string;
    /** PEM RSA private key that signs manifests and directives; unset → unsigned. */
    readonly codeSigningKeyFile: string | undefined;
    readonly codeSigningKeyId: string;
    /** Sessions (and API requests) an update needs before its rollout gates judge it. */
    readonly gateMinSample: number;
    /** The Sentry release name of an update ({updateId}, {runtimeVersion}, {channel}); unset → crash figures only from `ota_update_health`. */
    readonly sentryRelease: string | undefined;
  };
  /** The operations engine's approval policy (see docs/engine.md). */
  readonly approvals: {
    readonly ttlMinutes: number;
    /** Whether `--approved-by NAME` may stand in for `shipshape approve`. */
    readonly allowInline: boolean;
  };
}

export type Environment = Record<string, string | undefined>;

/**
 * Reads `.env` from the working directory (if present) into `process.env` without
 * overriding variables that are already set, as every dotenv loader does.
 */
export function loadDotEnv(file = '.env'): void {
  if (existsSync(file)) process.loadEnvFile(file);
}

/** Validates the environment and compiles it into a `Config`, or throws `SHIP_ERR_CONFIG`. */
export function loadConfig(env: Environment = process.env, cwd = process.cwd()): Config {
  const raw = {} as Record<string, unknown>;
  for (const [name, spec] of Object.entries(variables())) raw[name] = parseVariable(name, spec, env);
  const c = raw as RawConfig;
  const stateDir = path.resolve(cwd, c.STATE_DIR);
  return {
    port: c.PORT,
    host: c.HOST,
    databaseUrl: c.DATABASE_URL,
    database: {
      poolMax: c.DATABASE_POOL_MAX,
      preparedStatements: c.DATABASE_PREPARED_STATEMENTS,
      statementTimeoutMs: c.DATABASE_STATEMENT_TIMEOUT_MS,
      connectTimeoutMs: c.DATABASE_CONNECT_TIMEOUT_MS,
    },
    stateDir,
    adminToken: c.ADMIN_TOKEN,
    logLevel: c.LOG_LEVEL,
    startupProgressIntervalMs: c.STARTUP_PROGRESS_INTERVAL_MS,
    publicUrl: c.PUBLIC_URL,
    appResetUrl: c.APP_RESET_URL,
    apiUrl: c.API_URL ?? `http://${c.HOST === '0.0.0.0' ? '127.0.0.1' : c.HOST}:${c.PORT}`,
    sessionTtlHours: c.SESSION_TTL_HOURS,
    passwordResetTtlMinutes: c.PASSWORD_RESET_TTL_MINUTES,
    deletionGraceDays: c.DELETION_GRACE_DAYS,
    trustProxy: c.TRUST_PROXY,
    overloadEventLoopDelayMs: c.OVERLOAD_EVENT_LOOP_DELAY_MS,
    backupStorageUrl: c.BACKUP_STORAGE_URL ?? `file://${path.join(stateDir, 'backups')}`,
    legalStorageUrl: c.LEGAL_STORAGE_URL ?? `file://${path.join(stateDir, 'legal')}`,
    backups: {
      compressionLevel: c.BACKUP_COMPRESSION_LEVEL,
      restoreJobs: c.BACKUP_RESTORE_JOBS,
      keep: { daily: c.BACKUP_KEEP_DAILY, weekly: c.BACKUP_KEEP_WEEKLY, monthly: c.BACKUP_KEEP_MONTHLY },
      scratchDatabaseUrl: c.BACKUP_SCRATCH_DATABASE_URL,
      pgBinDir: c.PG_BIN_DIR === undefined ? undefined : path.resolve(cwd, c.PG_BIN_DIR),
    },
    migrateBackupMaxAgeMs: c.MIGRATE_BACKUP_MAX_AGE,
    s3: { endpoint: c.S3_ENDPOINT, forcePathStyle: c.S3_FORCE_PATH_STYLE, region: c.AWS_REGION },
    redisUrl: c.REDIS_URL,
    redisPrefix: c.REDIS_PREFIX,
    taskListCacheMaxMb: c.TASK_LIST_CACHE_MAX_MB,
    appStatePollMs: c.APP_STATE_POLL_MS,
    push: { expoPushUrl: c.EXPO_PUSH_URL, expoAccessToken: c.EXPO_ACCESS_TOKEN },
    smtpUrl: c.SMTP_URL,
    mailFrom: c.MAIL_FROM,
    alerts: {
      slackWebhookUrl: c.SLACK_WEBHOOK_URL,
      pagerDutyRoutingKey: c.PAGERDUTY_ROUTING_KEY,
      pagerDutyEventsUrl: c.PAGERDUTY_EVENTS_URL,
      routingFile: c.ALERT_ROUTING_FILE,
      evaluationIntervalMs: c.ALERT_EVALUATION_INTERVAL,
    },
    metricsFlushIntervalMs: c.METRICS_FLUSH_INTERVAL,
    statusPageWebhookUrl: c.STATUS_PAGE_WEBHOOK_URL,
    sentry: { apiUrl: c.SENTRY_API_URL, org: c.SENTRY_ORG, token: c.SENTRY_TOKEN },
    cdn: {
      cloudflareApiUrl: c.CLOUDFLARE_API_URL,
      cloudflareApiToken: c.CLOUDFLARE_API_TOKEN,
      cloudflareZoneId: c.CLOUDFLARE_ZONE_ID,
      baseUrl: c.CDN_BASE_URL,
    },
    scheduler: { pollMs: c.SCHEDULER_POLL_MS, backup: { recurrence: c.BACKUP_SCHEDULE, timeZone: c.BACKUP_SCHEDULE_TIME_ZONE } },
    maintenance: {
      window: c.MAINTENANCE_WINDOW,
      timeZone: c.MAINTENANCE_TIME_ZONE,
      durationMs: c.MAINTENANCE_DURATION,
      noticeMs: c.MAINTENANCE_NOTICE,
      emailRatePerSecond: c.MAINTENANCE_EMAIL_RATE,
      appLogDir: c.APP_LOG_DIR === undefined ? undefined : path.resolve(cwd, c.APP_LOG_DIR),
      appLogRetentionDays: c.APP_LOG_RETENTION_DAYS,
      adminTokenOverlapMs: c.ADMIN_TOKEN_OVERLAP,
      rotateDatabasePassword: c.MAINTENANCE_ROTATE_DATABASE_PASSWORD,
      databaseUrlFile: c.MAINTENANCE_DATABASE_URL_FILE === undefined ? undefined : path.resolve(cwd, c.MAINTENANCE_DATABASE_URL_FILE),
      smokeTestEmail: c.SMOKE_TEST_EMAIL,
    },
    release: {
      appRepoDir: c.APP_REPO_DIR === undefined ? undefined : path.resolve(cwd, c.APP_REPO_DIR),
      mainBranch: c.APP_REPO_MAIN_BRANCH,
      remote: c.APP_REPO_REMOTE,
      notesDir: c.RELEASE_NOTES_DIR,
      ciCheckUrl: c.RELEASE_CI_CHECK_URL,
      ciCheckToken: c.RELEASE_CI_CHECK_TOKEN,
      ciCheckCommand: c.RELEASE_CI_CHECK_COMMAND,
      easBin: c.EAS_BIN,
      easPollMs: c.EAS_BUILD_POLL_INTERVAL,
      easTimeoutMs: c.EAS_BUILD_TIMEOUT,
      play: {
        packageName: c.GOOGLE_PLAY_PACKAGE_NAME,
        serviceAccountFile: c.GOOGLE_PLAY_SERVICE_ACCOUNT_FILE === undefined ? undefined : path.resolve(cwd, c.GOOGLE_PLAY_SERVICE_ACCOUNT_FILE),
        apiUrl: c.GOOGLE_PLAY_API_URL,
      },
      appStore: {
        keyId: c.ASC_KEY_ID,
        issuerId: c.ASC_ISSUER_ID,
        privateKeyFile: c.ASC_PRIVATE_KEY_FILE === undefined ? undefined : path.resolve(cwd, c.ASC_PRIVATE_KEY_FILE),
        appId: c.ASC_APP_ID,
        apiUrl: c.ASC_API_URL,
      },
      rolloutSteps: c.RELEASE_ROLLOUT_STEPS,
      stepIntervalMs: c.RELEASE_STEP_INTERVAL,
      gateRecheckMs: c.RELEASE_GATE_RECHECK,
      gates: {
        windowMs: c.RELEASE_GATE_WINDOW,
        minSessions: c.RELEASE_GATE_MIN_SESSIONS,
        minRequests: c.RELEASE_GATE_MIN_REQUESTS,
        maxCrashFreeDrop: c.RELEASE_GATE_MAX_CRASH_FREE_DROP,
        maxErrorRateRise: c.RELEASE_GATE_MAX_ERROR_RATE_RISE,
        sentryReleaseName: c.SENTRY_RELEASE_NAME,
      },
    },
    operator: c.SHIPSHAPE_OPERATOR ?? safeOsUser(),
    updates: {
      storageUrl: c.UPDATES_STORAGE_URL ?? `file://${path.join(stateDir, 'updates')}`,
      assetBaseUrl: c.UPDATES_ASSET_BASE_URL ?? c.PUBLIC_URL,
      codeSigningKeyFile: c.UPDATES_CODE_SIGNING_KEY_FILE === undefined ? undefined : path.resolve(cwd, c.UPDATES_CODE_SIGNING_KEY_FILE),
      codeSigningKeyId: c.UPDATES_CODE_SIGNING_KEY_ID,
      gateMinSample: c.UPDATES_GATE_MIN_SAMPLE,
      sentryRelease: c.UPDATES_SENTRY_RELEASE,
    },
    approvals: { ttlMinutes: c.SHIPSHAPE_APPROVAL_TTL_MINUTES, allowInline: c.SHIPSHAPE_ALLOW_INLINE_APPROVAL },
  };
}

/**
 * STATE_DIR and LOG_LEVEL alone, validated as `loadConfig` validates them, for the commands that
 * only read local files (`shipshape runs`, `runs show`): they start without building the rest.
 */
export function loadLocalConfig(env: Environment = process.env, cwd = process.cwd()): Pick<Config, 'stateDir' | 'logLevel'> {
  const stateDir = parseVariable('STATE_DIR', stateDirVariable, env) as RawConfig['STATE_DIR'];
  return { stateDir: path.resolve(cwd, stateDir), logLevel: parseVariable('LOG_LEVEL', logLevelVariable, env) as RawConfig['LOG_LEVEL'] };
}

function parseVariable(name: string, { schema, example }: VariableSpec, env: Environment): unknown {
  const value = env[name] === '' ? undefined : env[name];
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const problem = parsed.error.issues[0]?.message ?? 'is invalid';
    const shown = isSecret(name) ? '(hidden)' : JSON.stringify(value);
    throw new ShipError('SHIP_ERR_CONFIG', `${name}=${shown} is invalid: ${problem}. Example of a good value: ${name}=${example}`, {
      details: { variable: name },
    });
  }
  return parsed.data;
}

function isSecret(name: string): boolean {
  return /TOKEN|KEY|SECRET|PASSWORD|URL$/.test(name) && name !== 'PUBLIC_URL' && name !== 'API_URL';
}

function safeOsUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** Names of every variable Shipshape reads; the README's configuration table lists them all. */
export const configVariableNames = (): ReadonlyArray<keyof Variables> => Object.keys(variables()) as Array<keyof Variables>;
