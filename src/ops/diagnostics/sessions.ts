/**
 * Who is connected and what they are doing (runbook: "Investigate High Memory Usage",
 * "Troubleshooting Guide": connection count, long-running queries, connection leaks).
 *
 * Query texts are shown with their literals masked (`'…'`) and cut short: they can hold the
 * very emails, tokens and passwords a report must not repeat.
 */
import { BACKEND_COLUMNS, backendOf, type Backend, type BackendRow } from '../../db/backends.ts';
import type { Queryable } from '../../db/pool.ts';
import { maskLiterals, oneLine } from './sql-text.ts';

/** A transaction open longer than this is "long" (it holds back VACUUM and may hold locks). */
export const LONG_TRANSACTION_SECONDS = 5 * 60;
/** A statement running longer than this is "long-running". */
export const LONG_QUERY_SECONDS = 60;
const QUERY_TEXT_MAX = 160;

export interface ConnectionUsage {
  readonly maxConnections: number;
  /** Slots kept for superusers (and, on 16+, for roles with pg_use_reserved_connections). */
  readonly reserved: number;
  /** What ordinary clients can use: max_connections minus the reserved slots. */
  readonly usable: number;
  /** Client backends on the whole server (max_connections is server-wide). */
  readonly total: number;
  /** Client backends of the application database. */
  readonly thisDatabase: number;
  /** By `state`; `hidden` is another role's session we may not see into. */
  readonly byState: ReadonlyArray<{ readonly state: string; readonly count: number }>;
  /** total / usable, 0..1+. */
  readonly usedRatio: number;
}

export async function connectionUsage(db: Queryable): Promise<ConnectionUsage> {
  const settings = await db.query<{ max: number; su: number; reserved: number | null }>(
    `SELECT current_setting('max_connections')::int AS max,
            current_setting('superuser_reserved_connections')::int AS su,
            nullif(current_setting('reserved_connections', true), '')::int AS reserved`,
  );
  const { rows } = await db.query<{ state: string; count: number; here: number }>(
    `SELECT coalesce(state, 'hidden') AS state, count(*)::int AS count,
            (count(*) FILTER (WHERE datname = current_database()))::int AS here
       FROM pg_stat_activity
      WHERE backend_type = 'client backend'
      GROUP BY 1
      ORDER BY 2 DESC, 1`,
  );
  const s = settings.rows[0];
  const maxConnections = s?.max ?? 0;
  const reserved = (s?.su ?? 0) + (s?.reserved ?? 0);
  const usable = Math.max(1, maxConnections - reserved);
  const total = rows.reduce((sum, row) => sum + row.count, 0);
  return {
    maxConnections,
    reserved,
    usable,
    total,
    thisDatabase: rows.reduce((sum, row) => sum + row.here, 0),
    byState: rows.map((row) => ({ state: row.state, count: row.count })),
    usedRatio: total / usable,
  };
}

export interface Session extends Backend {
  readonly transactionSeconds: number | null;
  readonly querySeconds: number | null;
  /** Seconds in the current state (how long idle in transaction). */
  readonly stateSeconds: number | null;
  readonly waitEvent: string | null;
  /** Pids this session waits for (pg_blocking_pids). */
  readonly blockedBy: readonly number[];
  /** Masked, one line, cut short; null when hidden. */
  readonly query: string | null;
}

interface SessionRow extends BackendRow {
  xact_seconds: number | null;
  query_seconds: number | null;
  state_seconds: number | null;
  wait_event_type: string | null;
  wait_event: string | null;
  blocked_by: number[] | null;
  query: string | null;
}

/** Every other client session of the application database. */
export async function listSessions(db: Queryable): Promise<Session[]> {
  const { rows } = await db.query<SessionRow>(
    `SELECT ${BACKEND_COLUMNS},
            extract(epoch FROM now() - xact_start)::float8 AS xact_seconds,
            extract(epoch FROM now() - query_start)::float8 AS query_seconds,
            extract(epoch FROM now() - state_change)::float8 AS state_seconds,
            wait_event_type, wait_event, pg_blocking_pids(pid) AS blocked_by, query
       FROM pg_stat_activity
      WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
      ORDER BY backend_start, pid`,
  );
  return rows.map(sessionOf);
}

function sessionOf(row: SessionRow): Session {
  const round = (value: number | null) => (value === null ? null : Math.round(value * 10) / 10);
  return {
    ...backendOf(row),
    transactionSeconds: round(row.xact_seconds),
    querySeconds: round(row.query_seconds),
    stateSeconds: round(row.state_seconds),
    waitEvent: row.wait_event_type === null ? null : `${row.wait_event_type}:${row.wait_event ?? '?'}`,
    blockedBy: row.blocked_by ?? [],
    query: shownQuery(row.query),
  };
}

/** A statement as reports may show it: literals masked, one line, cut short; null when hidden. */
export function shownQuery(query: string | null): string | null {
  return query === null || query === '' ? null : oneLine(maskLiterals(query), QUERY_TEXT_MAX);
}

/** Idle inside an open transaction: it holds its snapshot and locks, and no cancel can end it. */
export function isIdleInTransaction(state: string | null): boolean {
  return state === 'idle in transaction' || state === 'idle in transaction (aborted)';
}

/** Running a statement for longer than `seconds`, longest first. */
export function longRunning(sessions: readonly Session[], seconds = LONG_QUERY_SECONDS): Session[] {
  return sessions.filter((s) => s.state === 'active' && (s.querySeconds ?? 0) >= seconds).sort((a, b) => (b.querySeconds ?? 0) - (a.querySeconds ?? 0));
}

/** Idle inside an open transaction, longest first (each holds its snapshot and locks). */
export function idleInTransaction(sessions: readonly Session[]): Session[] {
  return sessions.filter((s) => isIdleInTransaction(s.state)).sort((a, b) => (b.stateSeconds ?? 0) - (a.stateSeconds ?? 0));
}

/** Transactions open longer than `seconds`, whatever they are doing now, oldest first. */
export function longTransactions(sessions: readonly Session[], seconds = LONG_TRANSACTION_SECONDS): Session[] {
  return sessions.filter((s) => (s.transactionSeconds ?? 0) >= seconds).sort((a, b) => (b.transactionSeconds ?? 0) - (a.transactionSeconds ?? 0));
}

export interface BlockingReport {
  /** Sessions waiting for a lock another session holds. */
  readonly blocked: readonly Session[];
  /** Sessions others wait for; `blocking` lists whom. */
  readonly blockers: ReadonlyArray<Session & { readonly blocking: readonly number[] }>;
}

export function blocking(sessions: readonly Session[]): BlockingReport {
  const blocked = sessions.filter((s) => s.blockedBy.length > 0);
  const whom = new Map<number, number[]>();
  for (const waiter of blocked) for (const pid of waiter.blockedBy) whom.set(pid, [...(whom.get(pid) ?? []), waiter.pid]);
  const blockers = sessions.filter((s) => whom.has(s.pid)).map((s) => ({ ...s, blocking: whom.get(s.pid) ?? [] }));
  return { blocked, blockers };
}

/** Connections of the application database per client address and application, most first. */
export async function connectionsByClient(db: Queryable): Promise<Array<{ clientAddr: string; applicationName: string; count: number; idle: number }>> {
  const { rows } = await db.query<{ client_addr: string | null; application_name: string | null; count: number; idle: number }>(
    `SELECT host(client_addr) AS client_addr, application_name, count(*)::int AS count,
            (count(*) FILTER (WHERE state = 'idle'))::int AS idle
       FROM pg_stat_activity
      WHERE datname = current_database() AND backend_type = 'client backend'
      GROUP BY 1, 2
      ORDER BY 3 DESC, 1, 2`,
  );
  return rows.map((row) => ({
    clientAddr: row.client_addr ?? 'local socket',
    applicationName: row.application_name === null || row.application_name === '' ? '(none)' : row.application_name,
    count: row.count,
    idle: row.idle,
  }));
}

/** `4m 12s` */
export function seconds(value: number | null): string {
  if (value === null) return '-';
  const total = Math.round(value);
  const h = Math.floor(total / 3_600);
  const m = Math.floor((total % 3_600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${value < 10 ? value.toFixed(1) : s}s`;
}
