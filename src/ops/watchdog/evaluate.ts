/**
 * One evaluation of the watchdog: read every condition, and for each one whose state changed
 * raise or resolve its alert through the escalation matrix (Slack, email, PagerDuty with the
 * condition's dedup key), once.
 *
 *   resolved/absent ──breached──▶ firing: trigger (page) — sent by the evaluation that moved it
 *   firing ──breached──▶ firing: nothing (the summary is refreshed)
 *   firing ──clear──▶ resolved: resolve with the same dedup key, and "Resolved: …" in Slack
 *   unknown: nothing changes
 *
 * An announcement a target refused is sent again by the next evaluation until every target
 * accepts it (PagerDuty de-duplicates by key; Slack may show it twice, which beats never).
 * Only one instance evaluates per interval (alert-state.ts claims it).
 */
import type { Alert, Alerter } from '../../adapters/alerts/index.ts';
import type { Config } from '../../config/index.ts';
import type { Database } from '../../db/index.ts';
import { describeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import {
  claimEvaluation,
  finishEvaluation,
  listAlertStates,
  openAlert,
  recordDelivery,
  resolveAlert,
  touchAlert,
  type AlertState,
  type AlertStatus,
} from './alert-state.ts';
import { conditionDefinitions, readConditions, type Reading, type WatchedCondition } from './conditions.ts';

export interface WatchdogDeps {
  readonly config: Config;
  readonly database: Database;
  /** Reports per target, so a refused announcement is sent again. */
  readonly alerts: Alerter;
  readonly logger: Logger;
  /** Names this instance in `watchdog_evaluations.evaluated_by` and in alert details. */
  readonly evaluator: string;
}

export interface EvaluationOutcome {
  /** False when another instance holds this interval's evaluation. */
  readonly evaluated: boolean;
  readonly readings: readonly Reading[];
  /** Conditions whose alert this evaluation raised, resolved or sent again. */
  readonly announced: ReadonlyArray<{ readonly condition: WatchedCondition; readonly status: AlertStatus }>;
}

/** The PagerDuty dedup key of a condition's alert: the trigger and its resolve share it. */
export function dedupKeyFor(condition: WatchedCondition): string {
  return `shipshape-watchdog-${condition}`;
}

/** Evaluates if this interval is still unclaimed. Throws only when the database cannot be reached at all. */
export async function evaluateWatchdog(deps: WatchdogDeps): Promise<EvaluationOutcome> {
  const { database, config } = deps;
  if (!(await claimEvaluation(database.pool, deps.evaluator, config.alerts.evaluationIntervalMs))) return { evaluated: false, readings: [], announced: [] };
  const readings = await readConditions(config, database);
  const states = new Map((await listAlertStates(database.pool)).map((state) => [state.condition, state]));
  const announced: Array<{ condition: WatchedCondition; status: AlertStatus }> = [];
  for (const reading of readings) {
    try {
      const status = await apply(deps, reading, states.get(reading.condition));
      if (status !== undefined) announced.push({ condition: reading.condition, status });
    } catch (error) {
      deps.logger.warn(
        { condition: reading.condition, err: describeError(error) },
        `watchdog: ${reading.condition} could not be updated; the next evaluation tries again`,
      );
    }
  }
  for (const reading of readings.filter((r) => r.state === 'unknown'))
    deps.logger.warn({ condition: reading.condition }, `watchdog: ${reading.condition} ${reading.summary}`);
  await finishEvaluation(database.pool);
  return { evaluated: true, readings, announced };
}

/** Moves one condition's alert on; returns what was announced, if anything. */
async function apply(deps: WatchdogDeps, reading: Reading, state: AlertState | undefined): Promise<AlertStatus | undefined> {
  const { pool } = deps.database;
  if (reading.state === 'breached') {
    if (state === undefined || state.status === 'resolved') {
      const opened = await openAlert(pool, reading.condition, dedupKeyFor(reading.condition), reading.summary);
      if (opened === undefined) return undefined;
      await announce(deps, reading, 'firing', opened.dedupKey);
      return 'firing';
    }
    await touchAlert(pool, reading.condition, reading.summary);
    if (state.delivered) return undefined;
    await announce(deps, reading, 'firing', state.dedupKey);
    return 'firing';
  }
  if (reading.state === 'clear' && state !== undefined) {
    if (state.status === 'firing') {
      const resolved = await resolveAlert(pool, reading.condition, reading.summary);
      if (resolved === undefined) return undefined;
      await announce(deps, reading, 'resolved', resolved.dedupKey);
      return 'resolved';
    }
    if (state.delivered) return undefined;
    await announce(deps, reading, 'resolved', state.dedupKey);
    return 'resolved';
  }
  return undefined;
}

async function announce(deps: WatchdogDeps, reading: Reading, status: AlertStatus, dedupKey: string): Promise<void> {
  const definition = conditionDefinitions[reading.condition];
  const firing = status === 'firing';
  const alert: Alert = {
    issueType: definition.issueType,
    // The resolve keeps the trigger's severity so it reaches the same channels.
    severity: definition.severity,
    event: firing ? 'watchdog.triggered' : 'watchdog.resolved',
    title: firing ? definition.label : `Resolved: ${definition.label}`,
    text: firing ? `${reading.summary}.\n${definition.remedy}` : `Now: ${reading.summary}.`,
    ...(definition.channelHints === undefined ? {} : { channelHints: [...definition.channelHints] }),
    page: firing ? 'trigger' : 'resolve',
    dedupKey,
    details: { condition: reading.condition, evaluatedBy: deps.evaluator },
  };
  const failed = (await deps.alerts.send(alert)).filter((delivery) => !delivery.ok);
  const error = failed.length === 0 ? null : failed.map((delivery) => `${delivery.target}: ${delivery.error ?? 'failed'}`).join('; ');
  await recordDelivery(deps.database.pool, reading.condition, status, error);
  deps.logger[firing ? 'warn' : 'info']({ condition: reading.condition, dedupKey, delivered: error === null }, `watchdog: ${alert.title} — ${reading.summary}`);
}
