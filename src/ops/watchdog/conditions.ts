/**
 * What the watchdog watches: the runbook's numbers (src/ops/diagnostics/thresholds.ts), each
 * read the way `shipshape health` reads it, and the row of the escalation matrix that owns it.
 *
 * A reading is `breached`, `clear`, or `unknown` when it could not be made (the database or
 * backup storage did not answer a query): an unknown reading changes nothing, since a check
 * that was not made can neither raise nor resolve an alert.
 */
import type { AlertSeverity, IssueType } from '../../adapters/alerts/index.ts';
import { formatDurationMs } from '../../config/duration.ts';
import type { Config } from '../../config/index.ts';
import type { Database } from '../../db/index.ts';
import { readDeploymentMetrics, type DeploymentMetrics } from '../../domain/request-metrics.ts';
import { describeError } from '../../errors.ts';
import { backupFreshness } from '../diagnostics/backup-freshness.ts';
import { describeFailedNotifications, describeFailedScheduledJobs, readFailedNotifications, readFailedScheduledJobs } from '../diagnostics/failures.ts';
import { connectionUsage } from '../diagnostics/sessions.ts';
import { connectionsBreach, inHours, metricsWindowText, percent, thresholds } from '../diagnostics/thresholds.ts';

export const watchedConditions = ['error-rate', 'latency-p95', 'connections', 'backup-age', 'failed-jobs', 'failed-notifications'] as const;
export type WatchedCondition = (typeof watchedConditions)[number];

export interface ConditionDefinition {
  /** What the alert is about, for its title: "Error rate at or above 0.1 %". */
  readonly label: string;
  readonly issueType: IssueType;
  readonly severity: AlertSeverity;
  /** Channels besides the issue type's own (the runbook's #ops-backups for backups). */
  readonly channelHints?: readonly string[];
  /** What the on-call does first. */
  readonly remedy: string;
}

const window = metricsWindowText();
const lookback = inHours(thresholds.failureLookbackMs);

export const conditionDefinitions: Readonly<Record<WatchedCondition, ConditionDefinition>> = {
  'error-rate': {
    label: `Error rate at or above ${percent(thresholds.errorRate)} (last ${window}, every instance)`,
    issueType: 'application',
    severity: 'error',
    remedy: 'Look at the API logs and Sentry for the failing requests; `shipshape health` shows the figures.',
  },
  'latency-p95': {
    label: `p95 response time at or above ${thresholds.p95Ms} ms (last ${window}, every instance)`,
    issueType: 'application',
    severity: 'warning',
    remedy: 'Find the slow statements: `shipshape db slow-queries`, `shipshape db diagnose`.',
  },
  connections: {
    label: `Database connections at or above ${percent(thresholds.connectionsRatio)} of the limit`,
    issueType: 'database',
    severity: 'warning',
    remedy: 'See who holds them: `shipshape db diagnose`; pool connections (PgBouncer or the provider pooler) or lower DATABASE_POOL_MAX.',
  },
  'backup-age': {
    label: `No verified backup in the last ${inHours(thresholds.backupMaxAgeMs)}`,
    issueType: 'database',
    severity: 'error',
    channelHints: ['#ops-backups'],
    remedy: 'Take one: `shipshape db backup`; check the daily schedule: `shipshape schedule list`.',
  },
  'failed-jobs': {
    label: `Scheduled jobs failed (last ${lookback})`,
    issueType: 'infrastructure',
    severity: 'error',
    remedy: '`shipshape schedule list` shows each schedule’s last outcome; `shipshape runs` the journaled runs.',
  },
  'failed-notifications': {
    label: `Push notifications failed (last ${lookback})`,
    issueType: 'application',
    severity: 'warning',
    remedy: '`shipshape notify list --status failed`; `shipshape notify resume <job-id> --retry-failed` re-sends chunks that certainly failed.',
  },
};

export interface Reading {
  readonly condition: WatchedCondition;
  readonly state: 'breached' | 'clear' | 'unknown';
  /** What was found, in one line (for the alert text and the state table). */
  readonly summary: string;
}

type Finding = { readonly state: 'breached' | 'clear'; readonly summary: string };

/** Reads every condition; never throws. */
export async function readConditions(config: Config, database: Database, now: Date = new Date()): Promise<Reading[]> {
  const metrics = await attempt(() => readDeploymentMetrics(database.pool, thresholds.metricsWindowMs));
  return [
    metrics.ok ? errorRateReading(metrics.value) : unknown('error-rate', metrics.error),
    metrics.ok ? latencyReading(metrics.value) : unknown('latency-p95', metrics.error),
    await read('connections', () => connectionsReading(database)),
    await read('backup-age', () => backupReading(config, now)),
    await read('failed-jobs', async () => {
      const problem = describeFailedScheduledJobs(await readFailedScheduledJobs(database.pool, thresholds.failureLookbackMs));
      return problem === null ? { state: 'clear', summary: `no scheduled job failed in the last ${lookback}` } : { state: 'breached', summary: problem };
    }),
    await read('failed-notifications', async () => {
      const problem = describeFailedNotifications(await readFailedNotifications(database.pool, thresholds.failureLookbackMs));
      return problem === null ? { state: 'clear', summary: `no notification failed in the last ${lookback}` } : { state: 'breached', summary: problem };
    }),
  ];
}

function errorRateReading(metrics: DeploymentMetrics): Reading {
  const summary = `${percent(metrics.errorRate)} of ${metrics.requests} request(s) answered 5xx in the last ${window} across ${metrics.instances} instance(s)`;
  return { condition: 'error-rate', state: metrics.requests > 0 && metrics.errorRate >= thresholds.errorRate ? 'breached' : 'clear', summary };
}

function latencyReading(metrics: DeploymentMetrics): Reading {
  const summary = `p95 ${metrics.p95Ms} ms (mean ${metrics.avgMs} ms) over ${metrics.requests} request(s) in the last ${window} across ${metrics.instances} instance(s)`;
  return { condition: 'latency-p95', state: metrics.requests > 0 && metrics.p95Ms >= thresholds.p95Ms ? 'breached' : 'clear', summary };
}

async function connectionsReading(database: Database): Promise<Finding> {
  if (database.kind !== 'postgres') return { state: 'clear', summary: 'does not apply: the embedded database is one backend shared by every client' };
  const usage = await connectionUsage(database.pool);
  const summary = `${usage.total} of ${usage.usable} usable connections (${Math.round(usage.usedRatio * 100)} %; max_connections ${usage.maxConnections}, ${usage.reserved} reserved)`;
  return { state: connectionsBreach(usage.usedRatio) ? 'breached' : 'clear', summary };
}

async function backupReading(config: Config, now: Date): Promise<Finding> {
  const freshness = await backupFreshness(config, now);
  switch (freshness.state) {
    case 'fresh':
      return { state: 'clear', summary: `newest verified backup ${freshness.id} taken ${freshness.createdAt}` };
    case 'stale':
      return {
        state: 'breached',
        summary: `newest verified backup ${freshness.id} was taken ${freshness.createdAt}, ${formatDurationMs(Math.round(freshness.ageMs / 60_000) * 60_000)} ago`,
      };
    case 'none':
      return { state: 'breached', summary: freshness.detail };
    case 'unreadable':
      // Nobody can restore from storage that cannot be read either.
      return { state: 'breached', summary: freshness.detail };
  }
}

async function read(condition: WatchedCondition, fn: () => Promise<Finding>): Promise<Reading> {
  const result = await attempt(fn);
  return result.ok ? { condition, ...result.value } : unknown(condition, result.error);
}

function unknown(condition: WatchedCondition, error: string): Reading {
  return { condition, state: 'unknown', summary: `could not be read: ${error}` };
}

async function attempt<T>(fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    return { ok: false, error: describeError(error) };
  }
}
