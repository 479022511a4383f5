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

const port = z.coerce.number().int().min(0).max(65_535);
const positiveInt = z.coerce.number().int().positive();
const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');
const url = z.url();
const postgresUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://');
const storageUrl = z
  .string()
  .regex(/^(file:\/\/\/|s3:\/\/[^/]+)/, 'must be file:///absolute/path or s3://bucket/prefix');

/** Each variable: its schema and an example shown when the value is wrong. */
const variables = {
  PORT: { schema: port.default(3000), example: '3000' },
  HOST: { schema: z.string().min(1).default('127.0.0.1'), example: '127.0.0.1' },
  DATABASE_URL: { schema: postgresUrl.optional(), example: 'postgres://app:secret@db.internal:5432/app' },
  DATABASE_POOL_MAX: { schema: positiveInt.max(1000).default(10), example: '10' },
  DATABASE_STATEMENT_TIMEOUT_MS: { schema: positiveInt.default(30_000), example: '30000' },
  DATABASE_CONNECT_TIMEOUT_MS: { schema: positiveInt.default(5_000), example: '5000' },
  STATE_DIR: { schema: z.string().min(1).default('./.shipshape'), example: '/var/lib/shipshape' },
  ADMIN_TOKEN: { schema: z.string().min(16, 'must be at least 16 characters').optional(), example: 'a long random string (openssl rand -hex 32)' },
  LOG_LEVEL: { schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), example: 'info' },
  PUBLIC_URL: { schema: url.default('http://127.0.0.1:3000'), example: 'https://app.example.com' },
  API_URL: { schema: url.optional(), example: 'https://api.example.com' },
  SESSION_TTL_HOURS: { schema: positiveInt.default(24 * 30), example: '720' },
  PASSWORD_RESET_TTL_MINUTES: { schema: positiveInt.default(60), example: '60' },
  TRUST_PROXY: { schema: booleanFlag.default(false), example: 'true' },
  BACKUP_STORAGE_URL: { schema: storageUrl.optional(), example: 's3://my-backups/database' },
  LEGAL_STORAGE_URL: { schema: storageUrl.optional(), example: 's3://my-legal/gdpr-deletions' },
  S3_ENDPOINT: { schema: url.optional(), example: 'http://127.0.0.1:9000' },
  S3_FORCE_PATH_STYLE: { schema: booleanFlag.default(false), example: 'true' },
  AWS_REGION: { schema: z.string().min(1).default('us-east-1'), example: 'eu-west-1' },
  REDIS_URL: { schema: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').optional(), example: 'redis://127.0.0.1:6379' },
  SMTP_URL: { schema: z.string().regex(/^smtps?:\/\//, 'must start with smtp:// or smtps://').optional(), example: 'smtp://user:pass@smtp.example.com:587' },
  MAIL_FROM: { schema: z.string().min(3).default('Shipshape <no-reply@localhost>'), example: 'Tasks <no-reply@example.com>' },
  SLACK_WEBHOOK_URL: { schema: url.optional(), example: 'https://hooks.slack.com/services/T000/B000/XXXX' },
  PAGERDUTY_ROUTING_KEY: { schema: z.string().min(1).optional(), example: 'a 32-character integration key' },
  PAGERDUTY_EVENTS_URL: { schema: url.default('https://events.pagerduty.com'), example: 'https://events.pagerduty.com' },
  ALERT_ROUTING_FILE: { schema: z.string().min(1).optional(), example: './alert-routing.json' },
  SHIPSHAPE_OPERATOR: { schema: z.string().min(1).optional(), example: 'alice' },
} as const;

type Variables = typeof variables;
type RawConfig = { [K in keyof Variables]: z.output<Variables[K]['schema']> };

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Unset → the embedded PGlite database under `stateDir/db`. */
  readonly databaseUrl: string | undefined;
  readonly database: {
    readonly poolMax: number;
    readonly statementTimeoutMs: number;
    readonly connectTimeoutMs: number;
  };
  /** Absolute path of the state directory. */
  readonly stateDir: string;
  readonly adminToken: string | undefined;
  readonly logLevel: RawConfig['LOG_LEVEL'];
  readonly publicUrl: string;
  /** Where the CLI finds the running API. */
  readonly apiUrl: string;
  readonly sessionTtlHours: number;
  readonly passwordResetTtlMinutes: number;
  readonly trustProxy: boolean;
  readonly backupStorageUrl: string;
  readonly legalStorageUrl: string;
  readonly s3: {
    readonly endpoint: string | undefined;
    readonly forcePathStyle: boolean;
    readonly region: string;
  };
  readonly redisUrl: string | undefined;
  readonly smtpUrl: string | undefined;
  readonly mailFrom: string;
  readonly alerts: {
    readonly slackWebhookUrl: string | undefined;
    readonly pagerDutyRoutingKey: string | undefined;
    readonly pagerDutyEventsUrl: string;
    readonly routingFile: string | undefined;
  };
  readonly operator: string;
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
  for (const [name, { schema, example }] of Object.entries(variables)) {
    const value = env[name] === '' ? undefined : env[name];
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const problem = parsed.error.issues[0]?.message ?? 'is invalid';
      const shown = isSecret(name) ? '(hidden)' : JSON.stringify(value);
      throw new ShipError(
        'SHIP_ERR_CONFIG',
        `${name}=${shown} is invalid: ${problem}. Example of a good value: ${name}=${example}`,
        { details: { variable: name } },
      );
    }
    raw[name] = parsed.data;
  }
  const c = raw as RawConfig;
  const stateDir = path.resolve(cwd, c.STATE_DIR);
  return {
    port: c.PORT,
    host: c.HOST,
    databaseUrl: c.DATABASE_URL,
    database: {
      poolMax: c.DATABASE_POOL_MAX,
      statementTimeoutMs: c.DATABASE_STATEMENT_TIMEOUT_MS,
      connectTimeoutMs: c.DATABASE_CONNECT_TIMEOUT_MS,
    },
    stateDir,
    adminToken: c.ADMIN_TOKEN,
    logLevel: c.LOG_LEVEL,
    publicUrl: c.PUBLIC_URL,
    apiUrl: c.API_URL ?? `http://${c.HOST === '0.0.0.0' ? '127.0.0.1' : c.HOST}:${c.PORT}`,
    sessionTtlHours: c.SESSION_TTL_HOURS,
    passwordResetTtlMinutes: c.PASSWORD_RESET_TTL_MINUTES,
    trustProxy: c.TRUST_PROXY,
    backupStorageUrl: c.BACKUP_STORAGE_URL ?? `file://${path.join(stateDir, 'backups')}`,
    legalStorageUrl: c.LEGAL_STORAGE_URL ?? `file://${path.join(stateDir, 'legal')}`,
    s3: { endpoint: c.S3_ENDPOINT, forcePathStyle: c.S3_FORCE_PATH_STYLE, region: c.AWS_REGION },
    redisUrl: c.REDIS_URL,
    smtpUrl: c.SMTP_URL,
    mailFrom: c.MAIL_FROM,
    alerts: {
      slackWebhookUrl: c.SLACK_WEBHOOK_URL,
      pagerDutyRoutingKey: c.PAGERDUTY_ROUTING_KEY,
      pagerDutyEventsUrl: c.PAGERDUTY_EVENTS_URL,
      routingFile: c.ALERT_ROUTING_FILE,
    },
    operator: c.SHIPSHAPE_OPERATOR ?? safeOsUser(),
  };
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
export const configVariableNames = Object.keys(variables) as ReadonlyArray<keyof Variables>;
