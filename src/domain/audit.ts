/**
 * The audit trail: who did what, when, from where. Details never hold secrets.
 */
import type { Queryable } from '../db/pool.ts';

export interface AuditEntry {
  /** `user:<id>`, `admin-api`, `operator:<name>`, or `anonymous`. */
  readonly actor: string;
  /** Dotted verb, e.g. `auth.login.failed`, `admin.maintenance.enabled`. */
  readonly action: string;
  readonly userId?: string | null | undefined;
  readonly ip?: string | null | undefined;
  readonly details?: Record<string, unknown> | undefined;
}

export async function recordAudit(db: Queryable, entry: AuditEntry): Promise<void> {
  await db.query('INSERT INTO audit_log (actor, action, user_id, ip, details) VALUES ($1::text, $2::text, $3::uuid, $4::text, $5::jsonb)', [
    entry.actor,
    entry.action,
    entry.userId ?? null,
    entry.ip ?? null,
    JSON.stringify(entry.details ?? {}),
  ]);
}
