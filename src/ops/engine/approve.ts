/**
 * `shipshape approve <run-id>`: a second operator records their approval of a high or
 * critical run in its journal. The approval lets the run go ahead until it expires
 * (policy, default one hour); the requester then resumes the run.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../config/index.ts';
import { ExitCode, ShipError } from '../../errors.ts';
import { JournalWriter, type JournalEvent, type PlanStep } from './journal.ts';
import { enginePolicyFrom, type EnginePolicy } from './policy.ts';
import type { RunRecord } from './run-record.ts';
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
  const approvedAt = now();
  const expiresAt = new Date(approvedAt.getTime() + policy.approvalTtlMs);
  const record = await decide(deps.config.stateDir, runId, 'approve', approvedAt, (awaiting) => {
    if (approver === awaiting.created.operator) {
      throw new ShipError(
        'SHIP_ERR_SELF_APPROVAL',
        `You (${approver}) requested run ${runId}; a different operator must approve it. Ask a colleague to run \`shipshape approve ${runId}\` as themselves (SHIPSHAPE_OPERATOR or their OS user).`,
      );
    }
    return [{ type: 'approval.granted', by: approver, expiresAt: expiresAt.toISOString(), how: 'command' }];
  });
  const requester = record.created.operator;
  return {
    runId,
    procedure: procedureOf(record),
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
  const refusedAt = now();
  const record = await decide(deps.config.stateDir, runId, 'refuse', refusedAt, (awaiting) => {
    const detail = refusalDetail(by === awaiting.created.operator, by, reason);
    return [
      { type: 'gate', gate: 'approval', outcome: 'refused', how: 'approval', by, detail },
      {
        type: 'run.ended',
        state: 'failed',
        exitCode: ExitCode.prerequisite,
        error: { code: 'SHIP_ERR_APPROVAL_REFUSED', message: `Run ${runId} was ${detail}. No step ran; nothing changed.` },
        next: `if it is still needed, address the reason and run \`shipshape ${awaiting.created.procedure.command}\` again`,
      },
    ];
  });
  const requester = record.created.operator;
  const withdrawn = by === requester;
  return {
    runId,
    procedure: procedureOf(record),
    requestedBy: requester,
    refusedBy: by,
    refusedAt: refusedAt.toISOString(),
    reason,
    withdrawn,
  };
}

/** What became of a run awaiting approval while its requester waited (`--wait-for-approval`). */
export type ApprovalDecision =
  | { readonly kind: 'approved'; readonly by: string; readonly expiresAt: string }
  | { readonly kind: 'refused'; readonly by: string; readonly message: string }
  /** It left awaiting-approval another way (cancelled with `runs rollback`, resumed elsewhere). */
  | { readonly kind: 'moved-on'; readonly state: RunRecord['state'] }
  /** The waiter stopped (Ctrl-C): the run is still awaiting approval. */
  | { readonly kind: 'stopped' };

export interface WaitForDecisionOptions {
  readonly signal: AbortSignal;
  /** How often the journal is re-read; default one second. */
  readonly pollMs?: number | undefined;
  readonly now?: (() => Date) | undefined;
}

/**
 * Re-reads the run's journal until another operator approves it (a valid approval, not by
 * the requester, not expired), refuses it, or it moves on another way — or until `signal`
 * aborts. The journal is the only channel: approvals and refusals from the CLI on another
 * machine or from the console are seen alike, and nothing here changes the run.
 */
export async function waitForApprovalDecision(stateDir: string, runId: string, options: WaitForDecisionOptions): Promise<ApprovalDecision> {
  const now = options.now ?? (() => new Date());
  const pollMs = options.pollMs ?? 1_000;
  for (;;) {
    if (options.signal.aborted) return { kind: 'stopped' };
    const record = await loadRun(stateDir, runId);
    const decision = decisionOf(record, now());
    if (decision !== undefined) return decision;
    try {
      await sleep(pollMs, undefined, { signal: options.signal });
    } catch {
      return { kind: 'stopped' };
    }
  }
}

function decisionOf(record: RunRecord, now: Date): ApprovalDecision | undefined {
  if (record.state === 'awaiting-approval') {
    const approval = record.approval;
    const valid = approval !== undefined && approval.by !== record.created.operator && Date.parse(approval.expiresAt) > now.getTime();
    return valid ? { kind: 'approved', by: approval.by, expiresAt: approval.expiresAt } : undefined;
  }
  const refusal = record.entries.findLast((entry) => entry.type === 'gate' && entry.gate === 'approval' && entry.outcome === 'refused');
  if (record.state === 'failed' && refusal?.type === 'gate' && record.lastEnd?.error?.code === 'SHIP_ERR_APPROVAL_REFUSED') {
    return { kind: 'refused', by: refusal.by ?? 'another operator', message: record.lastEnd.error.message };
  }
  return { kind: 'moved-on', state: record.state };
}

/** The run, if it is awaiting approval; otherwise why there is nothing to approve or refuse. */
function refusalDetail(withdrawn: boolean, by: string, reason: string): string {
  return withdrawn ? `withdrawn by its requester ${by}: ${reason}` : `refused by ${by}: ${reason}`;
}

/**
 * Records a decision on a run awaiting approval: the events `decision` makes from the run as
 * read, appended only if nothing was written to the journal since. If something was (another
 * operator decided, the requester resumed or cancelled), the run is read again, so the
 * decision is refused for the state the run is really in, or made on top of it if it still
 * awaits approval.
 */
async function decide(
  stateDir: string,
  runId: string,
  verb: 'approve' | 'refuse',
  at: Date,
  decision: (awaiting: RunRecord) => readonly JournalEvent[],
): Promise<RunRecord> {
  for (;;) {
    const record = await awaitingRun(stateDir, runId, verb);
    const events = decision(record);
    try {
      appendEvents(stateDir, record, at, events);
      return record;
    } catch (error) {
      if (!(error instanceof ShipError && error.code === 'SHIP_ERR_RUN_CHANGED')) throw error;
    }
  }
}

async function awaitingRun(stateDir: string, runId: string, verb: 'approve' | 'refuse'): Promise<RunRecord> {
  const record = await loadRun(stateDir, runId);
  if (record.state !== 'awaiting-approval') {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `Run ${runId} is ${record.state}, not awaiting approval; there is nothing to ${verb}. \`shipshape runs show ${runId}\` shows what happened.`,
    );
  }
  return record;
}

/** Adds events after the run's last one (SHIP_ERR_RUN_CHANGED if that is no longer last), dated `at`, each on disk before the next. */
function appendEvents(stateDir: string, record: RunRecord, at: Date, events: readonly JournalEvent[]): void {
  const lastSeq = record.entries.reduce((max, entry) => Math.max(max, entry.seq), 0);
  const writer = JournalWriter.append(stateDir, record.runId, lastSeq, () => at);
  try {
    for (const event of events) writer.write(event);
  } finally {
    writer.close();
  }
}

function procedureOf(record: RunRecord): ApprovalResult['procedure'] {
  const { procedure } = record.created;
  return { id: procedure.id, command: procedure.command, title: procedure.title, risk: procedure.risk };
}
