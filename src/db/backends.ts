/**
 * The other sessions on the application database, and ending them (runbook: "Kill All
 * Database Connections"; "Restore Database", step 8).
 *
 * "Other" is every client backend of the current database except the one running the
 * query and any the caller names as its own, so callers hold their clients for the whole
 * operation. Only client backends count:
 * autovacuum and parallel workers (including those of our own query) come and go by
 * themselves, and a check that counted them would fail at random.
 *
 * Query texts are never read: they can hold the very data and secrets a report must not.
 */
import type { Pool, PoolClient, Queryable } from './pool.ts';

export interface Backend {
  readonly pid: number;
  /** Null when the server hides it (another role's session without pg_read_all_stats). */
  readonly user: string | null;
  readonly applicationName: string | null;
  /** Null for a Unix-socket connection. */
  readonly clientAddr: string | null;
  readonly state: string | null;
  readonly backendStart: string | null;
  readonly queryStart: string | null;
}

export type TerminationOutcome =
  /** The backend exited within the wait. */
  | 'terminated'
  /** It had already gone when we asked. */
  | 'gone'
  /** Signalled, but still there when the wait ran out (stuck in an uninterruptible call). */
  | 'still-running'
  /** The server refused: a superuser's session, or another role's without pg_signal_backend. */
  | 'not-permitted';

export interface Termination extends Backend {
  readonly outcome: TerminationOutcome;
  /** The server's reason when not permitted. */
  readonly error?: string;
}

/** The pg_stat_activity columns a `Backend` is read from (`backendOf`); add your own after them. */
export const BACKEND_COLUMNS = 'pid, usename, application_name, host(client_addr) AS client_addr, state, backend_start, query_start';

export interface BackendRow {
  pid: number;
  usename: string | null;
  application_name: string | null;
  client_addr: string | null;
  state: string | null;
  backend_start: Date | null;
  query_start: Date | null;
}

export function backendOf(row: BackendRow): Backend {
  return {
    pid: row.pid,
    user: row.usename,
    applicationName: row.application_name === '' ? null : row.application_name,
    clientAddr: row.client_addr,
    state: row.state,
    backendStart: row.backend_start?.toISOString() ?? null,
    queryStart: row.query_start?.toISOString() ?? null,
  };
}

/**
 * Every other client backend of the current database (or of `database`, when the caller is
 * connected elsewhere to take that one away), oldest first; `ours` are left out too.
 */
export async function otherBackends(db: Queryable, ours: readonly number[] = [], database?: string): Promise<Backend[]> {
  const { rows } = await db.query<BackendRow>(
    `SELECT ${BACKEND_COLUMNS}
       FROM pg_stat_activity
      WHERE datname = coalesce($2::text, current_database())
        AND pid <> pg_backend_pid()
        AND pid <> ALL ($1::integer[])
        AND backend_type = 'client backend'
      ORDER BY backend_start, pid`,
    [ours, database ?? null],
  );
  return rows.map(backendOf);
}

/**
 * Terminates every other client session (of `database`, or the current one), one pid per
 * statement, each waited for up to `waitMs`; returns them with their outcomes. Callers decide
 * what a refusal or a survivor means for them. Each outcome is also pushed to `ended` as it
 * comes, so a caller still knows what was done when a later statement fails.
 */
export async function terminateOtherBackends(
  db: Queryable,
  options: { readonly ours?: readonly number[]; readonly database?: string; readonly waitMs: number; readonly ended?: Termination[] },
): Promise<Termination[]> {
  const ended = options.ended ?? [];
  for (const backend of await otherBackends(db, options.ours, options.database)) ended.push(await terminateBackend(db, backend, options.waitMs));
  return ended;
}

export interface OwnSessions {
  /** One of them, to run the operation on. */
  readonly client: PoolClient;
  /** Backend pids of every connection `pool` had open: ours, never to be terminated. */
  readonly pids: readonly number[];
  release(): void;
}

/**
 * Checks out every idle connection of `pool` (at least one), so the caller knows which
 * sessions are its own and nothing else in the process uses them meanwhile. Call it while
 * nothing else is using the pool: a connection checked out elsewhere is not seen.
 */
export async function holdOwnSessions(pool: Pool): Promise<OwnSessions> {
  const clients: PoolClient[] = [];
  const release = () => {
    for (const held of clients.splice(0)) held.release();
  };
  try {
    const client = await pool.connect();
    clients.push(client);
    // pg's pool hands out idle connections before it opens new ones, so this opens none.
    while (pool.idleCount > 0) clients.push(await pool.connect());
    const pids: number[] = [];
    for (const held of clients) pids.push(await ownBackendPid(held));
    return { client, pids, release };
  } catch (error) {
    release();
    throw error;
  }
}

/** The pid of the session `db` runs on; meaningful only on a single client, not a pool. */
export async function ownBackendPid(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return rows[0]?.pid ?? 0;
}

/**
 * Terminates one backend and waits up to `waitMs` for it to exit (PostgreSQL 14+ waits
 * for us, so "terminated" means gone, not merely signalled). One pid per statement: a
 * refusal raises an error, which in a set-returning query would abandon the rest of the
 * list after some backends had already been killed.
 */
export async function terminateBackend(db: Queryable, backend: Backend, waitMs: number): Promise<Termination> {
  try {
    const { rows } = await db.query<{ terminated: boolean }>('SELECT pg_terminate_backend($1::integer, $2::bigint) AS terminated', [backend.pid, waitMs]);
    if (rows[0]?.terminated) return { ...backend, outcome: 'terminated' };
    // false means "no such backend" or "did not exit within waitMs"; a fresh look tells which.
    const { rows: present } = await db.query<{ found: boolean }>('SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1::integer) AS found', [
      backend.pid,
    ]);
    return { ...backend, outcome: present[0]?.found ? 'still-running' : 'gone' };
  } catch (error) {
    // 42501 insufficient_privilege is the only refusal pg_terminate_backend raises.
    if (isPgError(error) && error.code === '42501') return { ...backend, outcome: 'not-permitted', error: error.message };
    throw error;
  }
}

/** Who a connection is, for reports: `pid 4242 app@10.0.0.7 "shipshape"`. */
export function describeConnection(backend: Pick<Backend, 'pid' | 'user' | 'clientAddr' | 'applicationName'>): string {
  const app = backend.applicationName ? ` "${backend.applicationName}"` : '';
  return `pid ${backend.pid} ${backend.user ?? '?'}@${backend.clientAddr ?? 'local socket'}${app}`;
}

/** And what it is doing: `pid 4242 app@10.0.0.7 "shipshape" idle, last query started …`. */
export function describeBackend(backend: Backend): string {
  const since = backend.queryStart ? `, last query started ${backend.queryStart}` : '';
  return `${describeConnection(backend)} ${backend.state ?? 'state hidden'}${since}`;
}

function isPgError(error: unknown): error is Error & { code: string } {
  return error instanceof Error && 'code' in error && typeof error.code === 'string';
}
