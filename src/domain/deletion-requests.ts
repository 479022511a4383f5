/**
 * Deletion requests (GDPR "right to erasure") and their legal approvals. A request signs the
 * user out everywhere and blocks login at once; the data stays until the grace period has
 * passed, so the request can still be cancelled.
 */
import { ShipError } from '../errors.ts';
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { firstRow } from '../db/rows.ts';
import { recordAudit } from './audit.ts';
import { revokeAllSessions } from './sessions.ts';

export interface DeletionRequest {
  readonly id: string;
  readonly userId: string;
  readonly requestedAt: Date;
  readonly requestedBy: string;
  /** The earliest moment the account may be erased. */
  readonly dueAt: Date;
  readonly ticket: string | null;
  readonly identityReference: string | null;
}

export const approvalKinds = ['legal', 'skip-grace'] as const;
export type ApprovalKind = (typeof approvalKinds)[number];

export interface DeletionApproval {
  readonly id: string;
  readonly requestId: string;
  readonly kind: ApprovalKind;
  readonly ticket: string;
  readonly approvedBy: string;
  readonly approvedAt: Date;
}

/** What a self-service request records as its identity verification. */
export const SELF_SERVICE_IDENTITY = 'self-service: password re-entered in a signed-in session';

interface RequestRow {
  id: string;
  user_id: string;
  requested_at: Date;
  requested_by: string;
  due_at: Date;
  ticket: string | null;
  identity_reference: string | null;
}

const toRequest = (row: RequestRow): DeletionRequest => ({
  id: row.id,
  userId: row.user_id,
  requestedAt: row.requested_at,
  requestedBy: row.requested_by,
  dueAt: row.due_at,
  ticket: row.ticket,
  identityReference: row.identity_reference,
});

const COLUMNS = 'id, user_id, requested_at, requested_by, due_at, ticket, identity_reference';

export async function findPendingDeletion(db: Queryable, userId: string): Promise<DeletionRequest | undefined> {
  const { rows } = await db.query<RequestRow>(`SELECT ${COLUMNS} FROM deletion_requests WHERE user_id = $1::uuid AND cancelled_at IS NULL`, [userId]);
  return rows[0] && toRequest(rows[0]);
}

export interface NewDeletionRequest {
  readonly userId: string;
  /** Audit actor: `user:<id>` or `operator:<name>`. */
  readonly requestedBy: string;
  readonly graceDays: number;
  readonly ticket?: string | null | undefined;
  readonly identityReference?: string | null | undefined;
  readonly ip?: string | undefined;
}

/**
 * Records a request, signs the user out everywhere and blocks login. A second request while one
 * is pending returns the pending one unchanged (`created: false`).
 */
export async function requestDeletion(pool: Pool, input: NewDeletionRequest): Promise<{ request: DeletionRequest; created: boolean; sessionsRevoked: number }> {
  return withTransaction(pool, async (tx) => {
    // Serialises concurrent requests for one account on its row.
    await tx.query('SELECT 1 FROM users WHERE id = $1::uuid FOR UPDATE', [input.userId]);
    const pending = await findPendingDeletion(tx, input.userId);
    if (pending) return { request: pending, created: false, sessionsRevoked: 0 };
    const { rows } = await tx.query<RequestRow>(
      `INSERT INTO deletion_requests (user_id, requested_by, due_at, ticket, identity_reference)
       VALUES ($1::uuid, $2::text, now() + make_interval(days => $3::int), $4::text, $5::text)
       RETURNING ${COLUMNS}`,
      [input.userId, input.requestedBy, input.graceDays, input.ticket ?? null, input.identityReference ?? null],
    );
    const request = toRequest(firstRow(rows));
    const sessionsRevoked = await revokeAllSessions(tx, input.userId);
    await recordAudit(tx, {
      actor: input.requestedBy,
      action: 'gdpr.deletion.requested',
      userId: input.userId,
      ip: input.ip,
      details: { requestId: request.id, dueAt: request.dueAt.toISOString(), ticket: request.ticket, sessionsRevoked },
    });
    if (sessionsRevoked > 0) {
      await recordAudit(tx, {
        actor: input.requestedBy,
        action: 'auth.sessions.revoked',
        userId: input.userId,
        ip: input.ip,
        details: { reason: 'deletion requested', count: sessionsRevoked },
      });
    }
    return { request, created: true, sessionsRevoked };
  });
}

/**
 * Cancels the pending request. `withinGraceOnly` (the self-service path) refuses once the grace
 * period is over; an operator may still cancel until the account is erased.
 */
export async function cancelDeletion(
  pool: Pool,
  input: { userId: string; cancelledBy: string; withinGraceOnly: boolean; ip?: string | undefined },
): Promise<DeletionRequest> {
  return withTransaction(pool, async (tx) => {
    const { rows } = await tx.query<RequestRow & { grace_over: boolean }>(
      `SELECT ${COLUMNS}, due_at <= now() AS grace_over FROM deletion_requests WHERE user_id = $1::uuid AND cancelled_at IS NULL FOR UPDATE`,
      [input.userId],
    );
    const row = rows[0];
    if (!row) throw new ShipError('SHIP_ERR_NOT_FOUND', 'There is no pending deletion request for this account, so there is nothing to cancel.');
    if (input.withinGraceOnly && row.grace_over) {
      throw new ShipError(
        'SHIP_ERR_ACCOUNT_PENDING_DELETION',
        `The grace period of this deletion request ended on ${row.due_at.toISOString()}, so it can no longer be cancelled here. Contact support to stop the erasure.`,
      );
    }
    await tx.query('UPDATE deletion_requests SET cancelled_at = now(), cancelled_by = $2::text WHERE id = $1::uuid', [row.id, input.cancelledBy]);
    await recordAudit(tx, { actor: input.cancelledBy, action: 'gdpr.deletion.cancelled', userId: input.userId, ip: input.ip, details: { requestId: row.id } });
    return toRequest(row);
  });
}

/** Pending requests whose grace period has passed, oldest first. */
export async function listDueDeletions(db: Queryable): Promise<DeletionRequest[]> {
  const { rows } = await db.query<RequestRow>(`SELECT ${COLUMNS} FROM deletion_requests WHERE cancelled_at IS NULL AND due_at <= now() ORDER BY due_at, id`);
  return rows.map(toRequest);
}

/** Records an approval of a pending request (idempotent per approver and kind). */
export async function approveDeletion(
  db: Queryable,
  input: { requestId: string; userId: string; kind: ApprovalKind; ticket: string; approvedBy: string },
): Promise<DeletionApproval> {
  const { rows } = await db.query<{ id: string; request_id: string; kind: ApprovalKind; ticket: string; approved_by: string; approved_at: Date }>(
    `INSERT INTO deletion_approvals (request_id, kind, ticket, approved_by) VALUES ($1::uuid, $2::text, $3::text, $4::text)
     ON CONFLICT (request_id, kind, approved_by) DO UPDATE SET ticket = EXCLUDED.ticket, approved_at = now()
     RETURNING id, request_id, kind, ticket, approved_by, approved_at`,
    [input.requestId, input.kind, input.ticket, input.approvedBy],
  );
  const row = firstRow(rows);
  await recordAudit(db, {
    actor: `operator:${input.approvedBy}`,
    action: input.kind === 'legal' ? 'gdpr.deletion.approved' : 'gdpr.deletion.grace_skip_approved',
    userId: input.userId,
    details: { requestId: input.requestId, ticket: input.ticket },
  });
  return { id: row.id, requestId: row.request_id, kind: row.kind, ticket: row.ticket, approvedBy: row.approved_by, approvedAt: row.approved_at };
}

export async function listApprovals(db: Queryable, requestId: string): Promise<DeletionApproval[]> {
  const { rows } = await db.query<{ id: string; request_id: string; kind: ApprovalKind; ticket: string; approved_by: string; approved_at: Date }>(
    'SELECT id, request_id, kind, ticket, approved_by, approved_at FROM deletion_approvals WHERE request_id = $1::uuid ORDER BY approved_at',
    [requestId],
  );
  return rows.map((row) => ({
    id: row.id,
    requestId: row.request_id,
    kind: row.kind,
    ticket: row.ticket,
    approvedBy: row.approved_by,
    approvedAt: row.approved_at,
  }));
}

/** The 403 a user with a pending deletion meets at login: what happened and how to undo it. */
export function pendingDeletionError(request: Pick<DeletionRequest, 'dueAt'>): ShipError {
  return new ShipError(
    'SHIP_ERR_ACCOUNT_PENDING_DELETION',
    `This account is scheduled for deletion on ${request.dueAt.toISOString()} and cannot sign in. ` +
      'To cancel the deletion, send POST /me/restore with your email and password before then.',
    { details: { dueAt: request.dueAt.toISOString() } },
  );
}
