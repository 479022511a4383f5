/**
 * Operator console sessions (migration 0013): an admin token, checked once at sign-in, is
 * exchanged for a random session token kept in an HttpOnly cookie, so the admin token never
 * stays in the browser, a URL or a page. Each session carries the operator's name (recorded
 * with every action); every console form must send back the session's CSRF token, derived from
 * the session token (`csrfTokenFor`), which a page on another site can neither read nor compute.
 * Only sha256 hashes are stored. A session ends at sign-out, after CONSOLE_SESSION_TTL_HOURS, or
 * as soon as the admin token it came from is revoked or expires.
 */
import { createHash } from 'node:crypto';
import type { Queryable } from '../db/pool.ts';
import { hashToken, issueToken, secretsEqual } from './secrets.ts';

/** The names `SHIPSHAPE_OPERATOR` takes in practice: what journals and the audit log show. */
export const OPERATOR_NAME = /^[A-Za-z0-9._@-]{1,64}$/;

export const CONSOLE_SESSION_TTL_HOURS = 8;

export interface ConsoleSession {
  readonly id: string;
  readonly operator: string;
  readonly expiresAt: Date;
}

export interface OpenedConsoleSession extends ConsoleSession {
  /** For the cookie; shown once, never stored. */
  readonly token: string;
}

export async function openConsoleSession(
  db: Queryable,
  input: { operator: string; adminTokenId: string | null; ip: string | undefined },
): Promise<OpenedConsoleSession> {
  const session = issueToken();
  const { rows } = await db.query<{ id: string; expires_at: Date }>(
    `INSERT INTO console_sessions (token_hash, operator, admin_token_id, ip, expires_at)
     VALUES ($1::bytea, $2::text, $3::uuid, $4::text, now() + make_interval(hours => $5::int))
     RETURNING id, expires_at`,
    [session.hash, input.operator, input.adminTokenId, input.ip ?? null, CONSOLE_SESSION_TTL_HOURS],
  );
  const row = rows[0];
  if (!row) throw new Error('INSERT … RETURNING gave no row');
  return { id: row.id, operator: input.operator, expiresAt: row.expires_at, token: session.token };
}

/** The live session behind a cookie's token, or undefined. */
export async function findConsoleSession(db: Queryable, token: string | undefined): Promise<ConsoleSession | undefined> {
  if (!token) return undefined;
  const { rows } = await db.query<{ id: string; operator: string; expires_at: Date }>(
    `SELECT s.id, s.operator, s.expires_at
       FROM console_sessions s
       LEFT JOIN admin_tokens t ON t.id = s.admin_token_id
      WHERE s.token_hash = $1::bytea AND s.ended_at IS NULL AND s.expires_at > now()
        AND (s.admin_token_id IS NULL OR (t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())))`,
    [hashToken(token)],
  );
  const row = rows[0];
  return row ? { id: row.id, operator: row.operator, expiresAt: row.expires_at } : undefined;
}

/** The CSRF token of the session whose token is `sessionToken`: put in every form, checked on every POST. */
export function csrfTokenFor(sessionToken: string): string {
  return createHash('sha256').update(`shipshape-console-csrf:${sessionToken}`).digest('base64url');
}

/** Whether a form's CSRF token is the session's, compared in constant time. */
export function csrfMatches(sessionToken: string, presented: string | undefined): boolean {
  return presented !== undefined && presented !== '' && secretsEqual(csrfTokenFor(sessionToken), presented);
}

export async function endConsoleSession(db: Queryable, id: string): Promise<void> {
  await db.query('UPDATE console_sessions SET ended_at = now() WHERE id = $1::uuid AND ended_at IS NULL', [id]);
}
