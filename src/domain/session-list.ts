/**
 * A user's live sessions, as they see them in "signed-in devices", and ending one of them.
 */
import { ShipError } from '../errors.ts';
import type { Queryable } from '../db/pool.ts';

export interface SessionSummary {
  readonly id: string;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  readonly expiresAt: Date;
  readonly ip: string | null;
  readonly userAgent: string | null;
}

/** Live (not expired, not revoked) sessions of a user, most recently used first. */
export async function listLiveSessions(db: Queryable, userId: string): Promise<SessionSummary[]> {
  const { rows } = await db.query<{ id: string; created_at: Date; last_seen_at: Date; expires_at: Date; ip: string | null; user_agent: string | null }>(
    `SELECT id, created_at, last_seen_at, expires_at, ip, user_agent FROM sessions
      WHERE user_id = $1::uuid AND revoked_at IS NULL AND expires_at > now()
      ORDER BY last_seen_at DESC, created_at DESC`,
    [userId],
  );
  return rows.map((row) => ({
    id: row.id,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    expiresAt: row.expires_at,
    ip: row.ip,
    userAgent: row.user_agent,
  }));
}

/** Ends one of the user's own live sessions; another user's session (or an ended one) is a 404. */
export async function revokeOwnSession(db: Queryable, userId: string, sessionId: string): Promise<void> {
  const { rowCount } = await db.query(
    'UPDATE sessions SET revoked_at = now() WHERE id = $1::uuid AND user_id = $2::uuid AND revoked_at IS NULL AND expires_at > now()',
    [sessionId, userId],
  );
  if (!rowCount) throw new ShipError('SHIP_ERR_NOT_FOUND', `Session ${sessionId} is not one of your live sessions. List them with GET /me/sessions.`);
}
