/**
 * `shipshape approve <run-id>`: a second operator records their approval of a high or
 * critical run in its journal. The approval lets the run go ahead until it expires
 * (policy, default one hour); the requester then resumes the run.
 */
import type { Config } from '../../config/index.ts';
import { ExitCode, ShipError } from '../../errors.ts';
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

export interface RefusalResult {
  readonly runId: string;
  readonly procedure: { readonly id: string; readonly command: string; readonly title: string; readonly risk: Risk };
  readonly requestedBy: string;
  readonly refusedBy: string;
  readonly refusedAt: string;
  readonly reason: string;
  /** The requester refused their own run: that withdraws it (a cancellation), which needs no second operator. */
  readonly withdrawn: boolean;
}

export interface RefuseOptions {
  /** The operator refusing; default the configured operator (SHIPSHAPE_OPERATOR). */
  readonly by?: string | undefined;
  readonly reason: string;
}

/**
 * Refuses a run awaiting approval: the refusal (who, why) goes into its journal and the run
 * ends `failed` with exit code 3 — no step ran, so nothing needs undoing. Any operator may
 * refuse; when the requester does, it is recorded as withdrawing the run (as
 * `shipshape runs rollback` cancels one). Refusing needs no second operator because it
 * changes nothing; approving does.
 */
export async function refuseRun(runId: string, options: RefuseOptions, deps: ApproveDeps): Promise<RefusalResult> {
  const now = deps.now ?? (() => new Date());
  const by = options.by ?? deps.config.operator;
  const reason = options.reason.trim();
  if (reason === '') {
    throw new ShipError('SHIP_ERR_VALIDATION', `Say why run ${runId} is refused (--reason "…"): the requester reads it.`);
  }
  const record = await loadRun(deps.config.stateDir, runId);
  if (record.state !== 'awaiting-approval') {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `Run ${runId} is ${record.state}, not awaiting approval; there is nothing to refuse. \`shipshape runs show ${runId}\` shows what happened.`,
    );
  }
  const requester = record.created.operator;
  const withdrawn = by === requester;
  const refusedAt = now();
  const lastSeq = record.entries.reduce((max, entry) => Math.max(max, entry.seq), 0);
  const writer = JournalWriter.append(deps.config.stateDir, runId, lastSeq, () => refusedAt);
  const detail = withdrawn ? `withdrawn by its requester ${by}: ${reason}` : `refused by ${by}: ${reason}`;
  try {
    writer.write({ type: 'gate', gate: 'approval', outcome: 'refused', how: 'approval', by, detail });
    writer.write({
      type: 'run.ended',
      state: 'failed',
      exitCode: ExitCode.prerequisite,
      error: { code: 'SHIP_ERR_APPROVAL_REFUSED', message: `Run ${runId} was ${detail}. No step ran; nothing changed.` },
      next: `if it is still needed, address the reason and run \`shipshape ${record.created.procedure.command}\` again`,
    });
  } finally {
    writer.close();
  }
  const { procedure } = record.created;
  return {
    runId,
    procedure: { id: procedure.id, command: procedure.command, title: procedure.title, risk: procedure.risk },
    requestedBy: requester,
    refusedBy: by,
    refusedAt: refusedAt.toISOString(),
    reason,
    withdrawn,
  };
}
