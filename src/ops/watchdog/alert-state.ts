/**
 * The watchdog's memory, in the database (migration 0006) so that every instance shares it:
 * which instance evaluates this interval (`watchdog_evaluations`), and each condition's alert
 * (`watchdog_alerts`). Moving an alert between resolved and firing is one conditional
 * statement, and only the caller whose statement moved it sends the trigger or the resolve:
 * however many evaluations overlap, each change is announced once.
 */
import type { Queryable } from '../../db/pool.ts';

export type AlertStatus = 'firing' | 'resolved';

export interface AlertState {
  readonly condition: string;
  readonly status: AlertStatus;
  readonly dedupKey: string;
  readonly summary: string;
  readonly openedAt: Date;
  readonly lastSeenAt: Date;
  readonly resolvedAt: Date | null;
  /** Every target accepted the last trigger (firing) or resolve (resolved). */
  readonly delivered: boolean;
  readonly deliveryError: string | null;
}

interface Row {
  condition: string;
  status: AlertStatus;
  dedup_key: string;
  summary: string;
  opened_at: Date;
  last_seen_at: Date;
  resolved_at: Date | null;
  delivered: boolean;
  delivery_error: string | null;
}

const COLUMNS = 'condition, status, dedup_key, summary, opened_at, last_seen_at, resolved_at, delivered, delivery_error';

/**
 * Claims the evaluation of this interval: true for exactly one caller per interval, whoever
 * asks first once `intervalMs` has passed since the last evaluation started.
 */
export async function claimEvaluation(db: Queryable, evaluator: string, intervalMs: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE watchdog_evaluations SET last_started_at = now(), evaluated_by = $1::text, evaluations = evaluations + 1
      WHERE id AND (last_started_at IS NULL OR last_started_at <= now() - $2::bigint * interval '1 millisecond')`,
    [evaluator, intervalMs],
  );
  return rowCount === 1;
}

export async function finishEvaluation(db: Queryable): Promise<void> {
  await db.query('UPDATE watchdog_evaluations SET last_finished_at = now() WHERE id');
}

/** How many evaluations have started (any instance), and the last one's times. */
export async function evaluationStatus(
  db: Queryable,
): Promise<{ evaluations: number; lastStartedAt: Date | null; lastFinishedAt: Date | null; evaluatedBy: string | null }> {
  const { rows } = await db.query<{ evaluations: string; last_started_at: Date | null; last_finished_at: Date | null; evaluated_by: string | null }>(
    'SELECT evaluations, last_started_at, last_finished_at, evaluated_by FROM watchdog_evaluations WHERE id',
  );
  const row = rows[0];
  return {
    evaluations: Number(row?.evaluations ?? 0),
    lastStartedAt: row?.last_started_at ?? null,
    lastFinishedAt: row?.last_finished_at ?? null,
    evaluatedBy: row?.evaluated_by ?? null,
  };
}

export async function listAlertStates(db: Queryable): Promise<AlertState[]> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM watchdog_alerts ORDER BY condition`);
  return rows.map(toState);
}

/** Moves a condition to firing; the new state when this call did it, undefined when it was firing already. */
export async function openAlert(db: Queryable, condition: string, dedupKey: string, summary: string): Promise<AlertState | undefined> {
  const { rows } = await db.query<Row>(
    `INSERT INTO watchdog_alerts (condition, status, dedup_key, summary, opened_at, last_seen_at)
     VALUES ($1::text, 'firing', $2::text, $3::text, now(), now())
     ON CONFLICT (condition) DO UPDATE
        SET status = 'firing', dedup_key = EXCLUDED.dedup_key, summary = EXCLUDED.summary, opened_at = now(), last_seen_at = now(),
            resolved_at = NULL, delivered = false, delivery_error = NULL
      WHERE watchdog_alerts.status = 'resolved'
     RETURNING ${COLUMNS}`,
    [condition, dedupKey, summary],
  );
  return rows[0] === undefined ? undefined : toState(rows[0]);
}

/** Moves a condition back to resolved; the new state when this call did it. */
export async function resolveAlert(db: Queryable, condition: string, summary: string): Promise<AlertState | undefined> {
  const { rows } = await db.query<Row>(
    `UPDATE watchdog_alerts SET status = 'resolved', summary = $2::text, resolved_at = now(), delivered = false, delivery_error = NULL
      WHERE condition = $1::text AND status = 'firing'
      RETURNING ${COLUMNS}`,
    [condition, summary],
  );
  return rows[0] === undefined ? undefined : toState(rows[0]);
}

/** A firing condition seen again: what it looks like now. */
export async function touchAlert(db: Queryable, condition: string, summary: string): Promise<void> {
  await db.query(`UPDATE watchdog_alerts SET summary = $2::text, last_seen_at = now() WHERE condition = $1::text AND status = 'firing'`, [condition, summary]);
}

/** Records whether the announcement of the current status reached every target. */
export async function recordDelivery(db: Queryable, condition: string, status: AlertStatus, error: string | null): Promise<void> {
  await db.query(`UPDATE watchdog_alerts SET delivered = $3::boolean, delivery_error = $4::text WHERE condition = $1::text AND status = $2::text`, [
    condition,
    status,
    error === null,
    error,
  ]);
}

function toState(row: Row): AlertState {
  return {
    condition: row.condition,
    status: row.status,
    dedupKey: row.dedup_key,
    summary: row.summary,
    openedAt: row.opened_at,
    lastSeenAt: row.last_seen_at,
    resolvedAt: row.resolved_at,
    delivered: row.delivered,
    deliveryError: row.delivery_error,
  };
}
