/**
 * `shipshape approve <run-id>`: a second operator records their approval of a high or
 * critical run in its journal. The approval lets the run go ahead until it expires
 * (policy, default one hour); the requester then resumes the run.
 */
import type { Config } from '../../config/index.ts';
import { ShipError } from '../../errors.ts';
import { JournalWriter, type PlanStep } from './journal.ts';
import { enginePolicyFrom, type EnginePolicy } from './policy.ts';
import { loadRun } from './runs.ts';
import type { JsonObject, Risk } from './types.ts';

export interface ApprovalResult {
  readonly runId: string;
  readonly procedure: { readonly id: string; readonly command: string; readonly title: string; readonly risk: Risk };
  readonly requestedBy: string;
  readonly requestedAt: string;
  readonly approvedBy: string;
  readonly approvedAt: string;
  readonly expiresAt: string;
  /** What was approved: the parameters (secrets redacted) and the plan. */
  readonly params: JsonObject;
  readonly plan: PlanStep[];
  readonly next: string;
}

export interface ApproveDeps {
  readonly config: Config;
  /** Default: the policy the configuration sets. */
  readonly policy?: EnginePolicy | undefined;
  readonly now?: (() => Date) | undefined;
}

export async function approveRun(runId: string, deps: ApproveDeps): Promise<ApprovalResult> {
  const now = deps.now ?? (() => new Date());
  const policy = deps.policy ?? enginePolicyFrom(deps.config);
  const approver = deps.config.operator;
  const record = await loadRun(deps.config.stateDir, runId);
  if (record.state !== 'awaiting-approval') {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `Run ${runId} is ${record.state}, not awaiting approval; there is nothing to approve. \`shipshape runs show ${runId}\` shows what happened.`,
    );
  }
  const requester = record.created.operator;
  if (approver === requester) {
    throw new ShipError(
      'SHIP_ERR_SELF_APPROVAL',
      `You (${approver}) requested run ${runId}; a different operator must approve it. Ask a colleague to run \`shipshape approve ${runId}\` as themselves (SHIPSHAPE_OPERATOR or their OS user).`,
    );
  }
  const approvedAt = now();
  const expiresAt = new Date(approvedAt.getTime() + policy.approvalTtlMs);
  const lastSeq = record.entries.reduce((max, entry) => Math.max(max, entry.seq), 0);
  const writer = JournalWriter.append(deps.config.stateDir, runId, lastSeq, () => approvedAt);
  try {
    writer.write({ type: 'approval.granted', by: approver, expiresAt: expiresAt.toISOString(), how: 'command' });
  } finally {
    writer.close();
  }
  const { procedure } = record.created;
  return {
    runId,
    procedure: { id: procedure.id, command: procedure.command, title: procedure.title, risk: procedure.risk },
    requestedBy: requester,
    requestedAt: record.startedAt,
    approvedBy: approver,
    approvedAt: approvedAt.toISOString(),
    expiresAt: expiresAt.toISOString(),
    params: record.created.params,
    plan: record.created.plan,
    next: `${requester} runs \`shipshape runs resume ${runId}\` before ${expiresAt.toISOString()}`,
  };
}
