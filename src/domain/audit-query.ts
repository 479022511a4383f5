/**
 * Reading the audit trail, for `shipshape audit`.
 */
import type { Queryable } from '../db/pool.ts';

export interface AuditRecord {
  readonly id: number;
  readonly at: Date;
  readonly actor: string;
  readonly action: string;
  readonly userId: string | null;
  readonly ip: string | null;
  readonly details: Record<string, unknown>;
}

export interface AuditFilter {
  readonly userId?: string | undefined;
  readonly since?: Date | undefined;
  /** Exact action, or a prefix ending in `.` (`gdpr.`). */
  readonly action?: string | undefined;
  readonly limit: number;
}

/** Entries matching the filter, newest first. */
export async function queryAudit(db: Queryable, filter: AuditFilter): Promise<AuditRecord[]> {
  const { rows } = await db.query<{
    id: number;
    at: Date;
    actor: string;
    action: string;
    user_id: string | null;
    ip: string | null;
    details: Record<string, unknown>;
  }>(
    `SELECT id, at, actor, action, user_id, ip, details FROM audit_log
      WHERE ($1::uuid IS NULL OR user_id = $1::uuid)
        AND ($2::timestamptz IS NULL OR at >= $2::timestamptz)
        AND ($3::text IS NULL OR action = $3::text OR (right($3::text, 1) = '.' AND starts_with(action, $3::text)))
      ORDER BY at DESC, id DESC
      LIMIT $4::int`,
    [filter.userId ?? null, filter.since ?? null, filter.action ?? null, filter.limit],
  );
  return rows.map((row) => ({ id: Number(row.id), at: row.at, actor: row.actor, action: row.action, userId: row.user_id, ip: row.ip, details: row.details }));
}
