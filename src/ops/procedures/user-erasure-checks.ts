/**
 * The prerequisites of a GDPR erasure (runbook: "Delete User Data", Prerequisites), shared by
 * `shipshape user delete` and the scheduled `shipshape user purge-due` so both apply exactly
 * the same rules. Each check only reads.
 *
 * - a deletion request is pending for the account (it is what the grace period counts from);
 * - the request records how the requester's identity was verified;
 * - legal approved it, for this ticket, and the approver is not the operator erasing;
 * - the grace period has passed, or `--skip-grace` is backed by a second approval;
 * - a verified export archive made since the request exists in legal storage (re-verified).
 */
import type { ObjectStore } from '../../adapters/storage/index.ts';
import type { Queryable } from '../../db/pool.ts';
import { findPendingDeletion, listApprovals, type DeletionApproval, type DeletionRequest } from '../../domain/deletion-requests.ts';
import { latestVerifiedExport, verifyExportArchive } from '../../domain/user-export.ts';
import { describeError } from '../../errors.ts';
import type { CheckResult } from '../engine/types.ts';

export interface ErasureSubject {
  readonly userId: string;
  readonly email: string;
  /** The operator who would erase; approvals by them do not count. */
  readonly operator: string;
  /** The ticket the erasure runs under; undefined (the scheduled sweep) accepts the legal approval's ticket. */
  readonly ticket: string | undefined;
  readonly skipGrace: boolean;
}

export interface ErasureCheck {
  readonly name: string;
  run(db: Queryable, store: ObjectStore, subject: ErasureSubject): Promise<CheckResult>;
}

const noRequest = (subject: ErasureSubject): CheckResult => ({
  ok: false,
  detail: 'no deletion request is pending for the account',
  remedy: `record one first: \`shipshape user request-deletion ${subject.email} --ticket REF --identity-ref REF\` (the grace period starts then)`,
});

/** The legal approval that counts for this erasure, if any. */
export function countingApproval(
  approvals: readonly DeletionApproval[],
  subject: ErasureSubject,
  kind: DeletionApproval['kind'],
): DeletionApproval | undefined {
  return approvals.find(
    (approval) => approval.kind === kind && approval.approvedBy !== subject.operator && (subject.ticket === undefined || approval.ticket === subject.ticket),
  );
}

export const erasureChecks: readonly ErasureCheck[] = [
  {
    name: 'deletion request on record',
    async run(db, _store, subject) {
      const request = await findPendingDeletion(db, subject.userId);
      if (!request) return noRequest(subject);
      return {
        ok: true,
        detail: `requested ${request.requestedAt.toISOString()} by ${request.requestedBy}${request.ticket ? ` (ticket ${request.ticket})` : ''}`,
      };
    },
  },
  {
    name: 'identity verification reference present',
    async run(db, _store, subject) {
      const request = await findPendingDeletion(db, subject.userId);
      if (!request) return noRequest(subject);
      const reference = request.identityReference?.trim() ?? '';
      return reference !== ''
        ? { ok: true, detail: `identity verified: ${reference}` }
        : {
            ok: false,
            detail: 'the deletion request does not say how the requester was identified',
            remedy: `verify the requester's identity, cancel (\`shipshape user cancel-deletion ${subject.email}\`) and record the request again with --identity-ref`,
          };
    },
  },
  {
    name: 'legal approval recorded by a different operator',
    async run(db, _store, subject) {
      const request = await findPendingDeletion(db, subject.userId);
      if (!request) return noRequest(subject);
      const approvals = await listApprovals(db, request.id);
      const approval = countingApproval(approvals, subject, 'legal');
      if (approval) return { ok: true, detail: `approved by ${approval.approvedBy} at ${approval.approvedAt.toISOString()} for ticket ${approval.ticket}` };
      const own = approvals.some((a) => a.kind === 'legal' && a.approvedBy === subject.operator);
      const otherTicket = approvals.find((a) => a.kind === 'legal' && a.approvedBy !== subject.operator);
      return {
        ok: false,
        detail: own
          ? `the only legal approval is your own (${subject.operator}); it must come from someone else`
          : otherTicket
            ? `legal approved ticket ${otherTicket.ticket}, not ${subject.ticket ?? '?'}`
            : 'legal has not approved this deletion',
        remedy: `a different operator records legal's approval: \`shipshape user approve-deletion ${subject.email} --ticket ${subject.ticket ?? 'REF'}\``,
      };
    },
  },
  {
    name: 'grace period passed',
    async run(db, _store, subject) {
      const request = await findPendingDeletion(db, subject.userId);
      if (!request) return noRequest(subject);
      if (request.dueAt.getTime() <= Date.now()) return { ok: true, detail: `grace period ended ${request.dueAt.toISOString()}` };
      if (!subject.skipGrace) {
        return {
          ok: false,
          detail: `the grace period runs until ${request.dueAt.toISOString()}; the user may still cancel`,
          remedy: 'wait until then (`shipshape user purge-due` erases due requests), or pass --skip-grace backed by a second approval',
        };
      }
      const approval = countingApproval(await listApprovals(db, request.id), subject, 'skip-grace');
      return approval
        ? { ok: true, detail: `grace period (until ${request.dueAt.toISOString()}) skipped with the approval of ${approval.approvedBy}` }
        : {
            ok: false,
            detail: `--skip-grace needs a second approval; none is recorded by an operator other than ${subject.operator}${subject.ticket ? ` for ticket ${subject.ticket}` : ''}`,
            remedy: `a different operator runs \`shipshape user approve-deletion ${subject.email} --ticket ${subject.ticket ?? 'REF'} --skip-grace\``,
          };
    },
  },
  {
    name: 'verified export archive exists',
    async run(db, store, subject) {
      const request = await findPendingDeletion(db, subject.userId);
      if (!request) return noRequest(subject);
      const latest = await latestVerifiedExport(db, subject.userId, request.requestedAt);
      const remedy = `run \`shipshape user export ${subject.email}${subject.ticket ? ` --ticket ${subject.ticket}` : ''}\``;
      if (!latest) return { ok: false, detail: `no verified export archive made since the request (${request.requestedAt.toISOString()})`, remedy };
      try {
        await verifyExportArchive(store, latest.key, { sha256: latest.sha256, bytes: latest.bytes, userId: subject.userId });
      } catch (error) {
        return { ok: false, detail: `the archive ${latest.key} no longer verifies: ${describeError(error)}`, remedy };
      }
      return { ok: true, detail: `${store.location}/${latest.key} read back and verified (${latest.bytes} bytes)` };
    },
  },
];

/** Runs every check; `ready` only when all pass. Used by the scheduled sweep. */
export async function assessErasure(
  db: Queryable,
  store: ObjectStore,
  subject: ErasureSubject,
): Promise<{
  ready: boolean;
  failed: Array<{ name: string; detail: string }>;
  request: DeletionRequest | undefined;
  approval: DeletionApproval | undefined;
  exportKey: string | null;
}> {
  const failed: Array<{ name: string; detail: string }> = [];
  for (const check of erasureChecks) {
    let result: CheckResult;
    try {
      result = await check.run(db, store, subject);
    } catch (error) {
      result = { ok: false, detail: `could not check: ${describeError(error)}` };
    }
    if (!result.ok) failed.push({ name: check.name, detail: result.detail });
  }
  const request = await findPendingDeletion(db, subject.userId);
  const approval = request ? countingApproval(await listApprovals(db, request.id), subject, 'legal') : undefined;
  const exported = request ? await latestVerifiedExport(db, subject.userId, request.requestedAt) : undefined;
  return { ready: failed.length === 0, failed, request, approval, exportKey: exported?.key ?? null };
}
