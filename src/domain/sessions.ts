/**
 * Sessions: an opaque bearer token per login, stored as a hash, with expiry, revocation
 * and last-seen tracking.
 */
import { prepared, type Queryable } from '../db/pool.ts';
import { ShipError } from '../errors.ts';
import { hashToken, issueToken } from './secrets.ts';
import type { User } from './users.ts';

export interface Session {
  readonly id: string;
  readonly userId: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly lastSeenAt: Date;
}

export interface Authenticated {
  readonly user: User;
  readonly session: Session;
}

/** last_seen_at is written at most this often per session, so reads do not turn into writes. */
export const LAST_SEEN_RESOLUTION_SECONDS = 60;

/**
 * Starts a session. Refused with SHIP_ERR_MAINTENANCE when maintenance is on at the moment of
 * the insert — the gate let the request in earlier, but a login still in flight when
 * maintenance starts must not come out of it signed in — unless `duringMaintenance` says an
 * admin token let the request through.
 */
export async function createSession(
  db: Queryable,
  input: { userId: string; ttlHours: number; ip?: string | undefined; userAgent?: string | undefined; duringMaintenance?: boolean | undefined },
): Promise<{ token: string; session: Session }> {
  const { token, hash } = issueToken();
  const { rows } = await db.query<{ id: string; created_at: Date; expires_at: Date; last_seen_at: Date }>(
    `INSERT INTO sessions (user_id, token_hash, expires_at, ip, user_agent)
     SELECT $1::uuid, $2::bytea, now() + make_interval(hours => $3::int), $4::text, $5::text
      WHERE $6::boolean OR NOT coalesce((SELECT maintenance_enabled FROM app_state LIMIT 1), false)
     RETURNING id, created_at, expires_at, last_seen_at`,
    [input.userId, hash, input.ttlHours, input.ip ?? null, input.userAgent?.slice(0, 1000) ?? null, input.duringMaintenance === true],
  );
  const row = rows[0];
  if (row === undefined) throw new ShipError('SHIP_ERR_MAINTENANCE', 'Maintenance started while you were signing in. Try again when it is over.');
  return {
    token,
    session: { id: row.id, userId: input.userId, createdAt: row.created_at, expiresAt: row.expires_at, lastSeenAt: row.last_seen_at },
  };
}

/** The live session a bearer token belongs to; expired and revoked sessions do not count. */
export async function authenticate(db: Queryable, token: string): Promise<Authenticated | undefined> {
  return (await authenticateHash(db, hashToken(token)))?.auth;
}

/** What a sign-in yields: the session, its user, and the version of the user's task list. */
export interface SignIn {
  readonly auth: Authenticated;
  /** task-list-cache.ts; null before the list was first written. Read at the start of this request: never keep it beyond it. */
  readonly listVersion: string | null;
}

/** The columns of `signed_in` (see `SIGN_IN_CTES`), as node-postgres returns them. */
export interface SignInRow {
  session_id: string;
  user_id: string;
  email: string;
  display_name: string | null;
  user_created_at: Date;
  session_created_at: Date;
  expires_at: Date;
  last_seen_at: Date;
  list_version: string | null;
}

/**
 * The sign-in as common table expressions, for statements that do something else for the
 * signed-in user in the same round trip (`signInWith`). `$1` is the token hash, `$2` the
 * last-seen resolution; `signed_in` holds one row (`SignInRow`) for a live session, none
 * otherwise, so whatever joins it does nothing for an expired or revoked session. It also
 * touches last_seen_at at most once per resolution, and reads the version of the user's task
 * list (task-list-cache.ts) from the statement's snapshot.
 */
const SIGN_IN_CTES = `hit AS (
       SELECT s.id, s.user_id, s.created_at, s.expires_at, s.last_seen_at
         FROM sessions s
        WHERE s.token_hash = $1::bytea AND s.revoked_at IS NULL AND s.expires_at > now()
     ), touched AS (
       UPDATE sessions SET last_seen_at = now()
        WHERE id = (SELECT id FROM hit) AND last_seen_at < now() - make_interval(secs => $2::int)
     ), signed_in AS (
       SELECT hit.id AS session_id, hit.user_id, u.email, u.display_name, u.created_at AS user_created_at,
              hit.created_at AS session_created_at, hit.expires_at, hit.last_seen_at, v.version::text AS list_version
         FROM hit JOIN users u ON u.id = hit.user_id
         -- A join, not a subquery in the select list: that would run again for each row of a statement that joins signed_in to many.
         LEFT JOIN task_list_versions v ON v.user_id = hit.user_id
     )`;

/**
 * One statement that signs in and does `then` for the signed-in user: `then` is the rest of
 * the statement after the sign-in CTEs (it reads `signed_in`, may add CTEs of its own after a
 * comma, and numbers its own parameters from `$3`, given in `values`). The first row carries
 * the `SignInRow` columns beside its own (later rows may leave them null, so as not to send
 * them again); no row means no live session. `name` names the prepared
 * statement and must be unique per `then`.
 */
export async function signInWith<Row extends object>(
  db: Queryable,
  tokenHash: Buffer,
  statement: { readonly name: string; readonly then: string; readonly values: readonly unknown[] },
): Promise<Array<SignInRow & Row>> {
  const { rows } = await db.query<SignInRow & Row>(
    prepared(db, statement.name, `WITH ${SIGN_IN_CTES}${statement.then}`, [tokenHash, LAST_SEEN_RESOLUTION_SECONDS, ...statement.values]),
  );
  return rows;
}

/** The sign-in read from one of `signInWith`'s rows. */
export function signInFrom(row: SignInRow): SignIn {
  return {
    auth: {
      user: { id: row.user_id, email: row.email, displayName: row.display_name, createdAt: row.user_created_at },
      session: { id: row.session_id, userId: row.user_id, createdAt: row.session_created_at, expiresAt: row.expires_at, lastSeenAt: row.last_seen_at },
    },
    listVersion: row.list_version,
  };
}

/** `authenticate` for a token already hashed (`hashToken`). */
export async function authenticateHash(db: Queryable, tokenHash: Buffer): Promise<SignIn | undefined> {
  const [row] = await signInWith(db, tokenHash, { name: 'shipshape_authenticate_v3', then: ' SELECT * FROM signed_in', values: [] });
  return row && signInFrom(row);
}

export async function revokeSession(db: Queryable, sessionId: string): Promise<void> {
  await db.query('UPDATE sessions SET revoked_at = now() WHERE id = $1::uuid AND revoked_at IS NULL', [sessionId]);
}

/** Signs a user out everywhere; returns how many live sessions ended. */
export async function revokeAllSessions(db: Queryable, userId: string): Promise<number> {
  const { rowCount } = await db.query('UPDATE sessions SET revoked_at = now() WHERE user_id = $1::uuid AND revoked_at IS NULL', [userId]);
  return rowCount ?? 0;
}

/** Distinct users seen in the last `minutes` minutes: the runbook's "activeUsers". */
export async function countActiveUsers(db: Queryable, minutes = 15): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(DISTINCT user_id)::int AS n FROM sessions
      WHERE revoked_at IS NULL AND expires_at > now() AND last_seen_at > now() - make_interval(mins => $1::int)`,
    [minutes],
  );
  return rows[0]?.n ?? 0;
}
