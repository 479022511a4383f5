/**
 * Runbook: "Check System Health" as one report: the API's /health, database connections by
 * state against max_connections, error rate and p95 latency from /metrics (the whole
 * deployment over the last 5 minutes), Sentry's error counts (when configured), the age of the
 * newest verified backup, and scheduled jobs and notifications that failed.
 *
 * Each check is ok, warn, fail, unverified or skip; the system is healthy when nothing fails. A
 * check fails exactly where the watchdog alerts (the numbers are in thresholds.ts). Gathering
 * never throws: a part that cannot be read is itself a check result. A check that could not be
 * made (no ADMIN_TOKEN for /metrics, Sentry not answering, the failures table unreadable) is
 * `unverified`, never ok: `verified` is false and the CLI exits 5 when nothing failed.
 * `skip` is for what is not configured at all and optional (Sentry without SENTRY_ORG/TOKEN).
 */
import { fetchSentryErrorStats, type SentryErrorStats } from '../../adapters/sentry.ts';
import { formatDurationMs } from '../../config/duration.ts';
import type { Config } from '../../config/index.ts';
import { openDatabase, type Database } from '../../db/index.ts';
import { describeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { probeHealth, probeMetrics, type HealthAnswer, type MetricsAnswer } from './api-probe.ts';
import { backupFreshness, type BackupFreshness } from './backup-freshness.ts';
import {
  describeFailedNotifications,
  describeFailedScheduledJobs,
  readFailedNotifications,
  readFailedScheduledJobs,
  type FailedNotifications,
  type FailedScheduledJobs,
} from './failures.ts';
import { connectionUsage, type ConnectionUsage } from './sessions.ts';
import { connectionsBreach, inHours, metricsWindowText, percent, requestBreaches, thresholds } from './thresholds.ts';

export const checkStatuses = ['ok', 'warn', 'fail', 'unverified', 'skip'] as const;
export type CheckStatus = (typeof checkStatuses)[number];

/** Sentry: the newest hour is a spike when it has at least this many errors and 3× the hourly mean before it. */
export const SENTRY_SPIKE_MIN = 10;

export interface HealthCheck {
  readonly name: 'api' | 'database' | 'metrics' | 'sentry' | 'backup' | 'jobs';
  readonly status: CheckStatus;
  /** One line for the table: what was found. */
  readonly summary: string;
  /** When not ok: what to do. */
  readonly remedy?: string;
}

export interface HealthReport {
  readonly at: string;
  readonly healthy: boolean;
  /** Every check could be made (none is `unverified`). */
  readonly verified: boolean;
  readonly checks: readonly HealthCheck[];
  readonly api: HealthAnswer;
  readonly database: {
    readonly kind: Database['kind'] | null;
    readonly reachable: boolean;
    readonly connections: ConnectionUsage | null;
    readonly failures: { readonly scheduledJobs: FailedScheduledJobs; readonly notifications: FailedNotifications } | null;
    readonly error: string | null;
  };
  readonly metrics: MetricsAnswer | null;
  readonly sentry: SentryErrorStats | { readonly error: string } | null;
  readonly backup: BackupFreshness;
}

export async function gatherHealth(config: Config, logger: Logger, now: () => Date = () => new Date()): Promise<HealthReport> {
  const [api, database, metrics, sentry, backup] = await Promise.all([
    probeHealth(config.apiUrl),
    readDatabase(config, logger),
    config.adminToken === undefined ? Promise.resolve(null) : probeMetrics(config.apiUrl, config.adminToken),
    readSentry(config),
    backupFreshness(config, now()),
  ]);
  const checks = [apiCheck(api), databaseCheck(database), metricsCheck(metrics), sentryCheck(config, sentry), backupCheck(backup), jobsCheck(database)];
  return {
    at: now().toISOString(),
    healthy: checks.every((check) => check.status !== 'fail'),
    verified: checks.every((check) => check.status !== 'unverified'),
    checks,
    api,
    database,
    metrics,
    sentry,
    backup,
  };
}

async function readDatabase(config: Config, logger: Logger): Promise<HealthReport['database']> {
  let database: Database | undefined;
  try {
    database = await openDatabase(config, logger, 'shipshape-health');
    await database.pool.query('SELECT 1');
    const connections = database.kind === 'postgres' ? await connectionUsage(database.pool) : null;
    const failures = {
      scheduledJobs: await readFailedScheduledJobs(database.pool, thresholds.failureLookbackMs),
      notifications: await readFailedNotifications(database.pool, thresholds.failureLookbackMs),
    };
    return { kind: database.kind, reachable: true, connections, failures, error: null };
  } catch (error) {
    return { kind: database?.kind ?? null, reachable: false, connections: null, failures: null, error: describeError(error) };
  } finally {
    await database?.close().catch(() => undefined);
  }
}

async function readSentry(config: Config): Promise<HealthReport['sentry']> {
  const { org, token, apiUrl } = config.sentry;
  if (org === undefined || token === undefined) return null;
  try {
    return await fetchSentryErrorStats({ apiUrl, org, token });
  } catch (error) {
    return { error: describeError(error) };
  }
}

function apiCheck(api: HealthAnswer): HealthCheck {
  if (api.status === null) {
    return {
      name: 'api',
      status: 'fail',
      summary: `${api.url} did not answer (${api.error ?? '?'})`,
      remedy: 'start the API (`shipshape serve`) or fix API_URL',
    };
  }
  if (api.state === 'maintenance') {
    return { name: 'api', status: 'fail', summary: `in maintenance: "${api.message ?? ''}"`, remedy: 'when the work is done: `shipshape emergency enable`' };
  }
  if (api.status === 200 && api.state === 'ok') return { name: 'api', status: 'ok', summary: `ok (version ${api.version ?? '?'})` };
  return {
    name: 'api',
    status: 'fail',
    summary: `HTTP ${api.status}${api.state ? ` "${api.state}"` : ''}${api.db ? `, database ${api.db}` : ''}`,
    remedy: api.db === 'unreachable' ? 'the API cannot reach the database: check the server and DATABASE_URL' : 'check the API logs',
  };
}

function databaseCheck(database: HealthReport['database']): HealthCheck {
  if (!database.reachable) {
    return {
      name: 'database',
      status: 'fail',
      summary: `unreachable: ${database.error ?? '?'}`,
      remedy: 'check that PostgreSQL is running and DATABASE_URL is right',
    };
  }
  const usage = database.connections;
  if (usage === null) return { name: 'database', status: 'ok', summary: 'embedded (PGlite): one backend shared by every client' };
  const states = usage.byState.map((entry) => `${entry.count} ${entry.state}`).join(', ');
  const summary = `${usage.total}/${usage.usable} connections (${Math.round(usage.usedRatio * 100)} %): ${states || 'none'}`;
  const remedy = 'see who holds them: `shipshape db diagnose`; then pool connections (PgBouncer or the provider pooler) or lower DATABASE_POOL_MAX';
  if (connectionsBreach(usage.usedRatio))
    return { name: 'database', status: 'fail', summary: `${summary} — ${percent(thresholds.connectionsRatio)} or more`, remedy };
  return { name: 'database', status: 'ok', summary };
}

function metricsCheck(metrics: MetricsAnswer | null): HealthCheck {
  if (metrics === null) {
    return {
      name: 'metrics',
      status: 'unverified',
      summary: 'ADMIN_TOKEN is not set, so error rate and p95 could not be read from /metrics',
      remedy: 'set ADMIN_TOKEN to the API’s admin token',
    };
  }
  if (metrics.metrics === null) {
    const unauthorised = metrics.status === 401 || metrics.status === 403;
    return {
      name: 'metrics',
      status: 'fail',
      summary: `${metrics.url}: ${metrics.status === null ? 'no answer' : `HTTP ${metrics.status}`} (${metrics.error ?? '?'})`,
      remedy: unauthorised ? 'ADMIN_TOKEN differs from the API’s' : 'check the API',
    };
  }
  const m = metrics.metrics;
  const instances = m.instances === null ? '' : ` across ${m.instances} instance(s)`;
  const summary = `last ${metricsWindowText()}${instances}: ${m.requestsPerMinute ?? 0} req/min, errors ${percent(m.errorRate ?? 0)}, p95 ${m.p95ResponseTime ?? 0} ms (mean ${m.avgResponseTime ?? 0} ms), ${m.activeUsers ?? 0} active users`;
  if (m.errorRate === null || m.p95ResponseTime === null)
    return {
      name: 'metrics',
      status: 'fail',
      summary: `${summary}: /metrics did not report errorRate and p95ResponseTime`,
      remedy: 'check that API_URL points at a Shipshape API of this version',
    };
  const breaches = requestBreaches({ errorRate: m.errorRate, p95Ms: m.p95ResponseTime });
  if (breaches.length > 0)
    return {
      name: 'metrics',
      status: 'fail',
      summary: `${summary} — ${breaches.join(', ')}`,
      remedy: 'look at the API logs and Sentry; slow responses: `shipshape db slow-queries`',
    };
  return { name: 'metrics', status: 'ok', summary };
}

function sentryCheck(config: Config, sentry: HealthReport['sentry']): HealthCheck {
  if (sentry === null) return { name: 'sentry', status: 'skip', summary: 'SENTRY_ORG and SENTRY_TOKEN are not both set' };
  if ('error' in sentry)
    return {
      name: 'sentry',
      status: 'unverified',
      summary: `could not read error stats: ${sentry.error}`,
      remedy: 'check SENTRY_TOKEN, SENTRY_ORG and SENTRY_API_URL',
    };
  const before = sentry.acceptedPerHour.slice(0, -1);
  const mean = before.length === 0 ? 0 : before.reduce((a, b) => a + b, 0) / before.length;
  const summary = `${sentry.accepted} errors in ${sentry.periodHours} h, ${sentry.lastHour} this hour${sentry.dropped > 0 ? `, ${sentry.dropped} dropped by Sentry` : ''}`;
  if (sentry.lastHour >= SENTRY_SPIKE_MIN && sentry.lastHour >= 3 * mean) {
    return {
      name: 'sentry',
      status: 'warn',
      summary: `${summary} (about ${mean.toFixed(1)}/h before): a spike`,
      remedy: `${new URL(config.sentry.apiUrl).origin}/organizations/${config.sentry.org ?? ''}/issues/`,
    };
  }
  return { name: 'sentry', status: 'ok', summary };
}

function backupCheck(backup: BackupFreshness): HealthCheck {
  switch (backup.state) {
    case 'fresh':
      return { name: 'backup', status: 'ok', summary: `newest verified backup ${backup.id} is ${age(backup.ageMs)} old` };
    case 'stale':
      return {
        name: 'backup',
        status: 'fail',
        summary: `newest verified backup ${backup.id} is ${age(backup.ageMs)} old (more than ${inHours(thresholds.backupMaxAgeMs)})`,
        remedy: '`shipshape db backup`',
      };
    case 'none':
      return { name: 'backup', status: 'fail', summary: backup.detail, remedy: '`shipshape db backup`' };
    case 'unreadable':
      return { name: 'backup', status: 'fail', summary: backup.detail, remedy: 'check BACKUP_STORAGE_URL and its credentials' };
  }
}

function jobsCheck(database: HealthReport['database']): HealthCheck {
  if (database.failures === null)
    return { name: 'jobs', status: 'unverified', summary: 'the database could not be read, so failed jobs and notifications could not be checked' };
  const { scheduledJobs, notifications } = database.failures;
  const problems = [describeFailedScheduledJobs(scheduledJobs), describeFailedNotifications(notifications)].filter((problem) => problem !== null);
  if (problems.length === 0)
    return { name: 'jobs', status: 'ok', summary: `no scheduled job or notification failed in the last ${inHours(thresholds.failureLookbackMs)}` };
  return {
    name: 'jobs',
    status: 'fail',
    summary: problems.join('; '),
    remedy: '`shipshape schedule list` (last outcomes), `shipshape notify list --status failed`, `shipshape runs`',
  };
}

function age(ms: number): string {
  return formatDurationMs(Math.round(ms / 60_000) * 60_000 || Math.round(ms / 1_000) * 1_000);
}
