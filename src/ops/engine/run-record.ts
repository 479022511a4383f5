/**
 * What a journal says about its run: the state, each step's status and output, the
 * approval, and what may be done next. Everything that shows or continues a run derives
 * it here from the journal, so `runs`, `runs show`, `resume`, `rollback` and the report a
 * run prints can never disagree.
 */
import type { ErrorInfo, JournalEntry, JournalEntryOf, PlanStep } from './journal.ts';
import { liveness } from './process-identity.ts';
import type { JsonObject } from './types.ts';

export const runStates = ['running', 'interrupted', 'awaiting-approval', 'succeeded', 'unverified', 'failed', 'rolled-back', 'needs-attention'] as const;
/**
 * - running: a live process is working on it.
 * - interrupted: the process died mid-run (no final event, pid gone): resume or roll back.
 * - awaiting-approval: high/critical, waiting for `shipshape approve`.
 * - succeeded: every step done and verified.
 * - unverified: every step done, but a check could not be made (exit 5): not known to be right.
 * - failed: ended without anything left changed (prerequisite, gate, first step failed, cancelled).
 * - rolled-back: steps had changed things and every one was undone.
 * - needs-attention: something is still changed that the engine could not undo.
 */
export type RunState = (typeof runStates)[number];

export const stepStatuses = ['pending', 'running', 'done', 'failed', 'undone', 'skipped'] as const;
export type StepStatus = (typeof stepStatuses)[number];

export interface UndoRecord {
  readonly status: 'undone' | 'failed' | 'impossible';
  readonly how?: 'undo' | 'undo-interrupted' | 'nothing-to-undo';
  readonly durationMs?: number;
  readonly error?: ErrorInfo;
  readonly reason?: string;
}

export interface StepRecord {
  readonly id: string;
  readonly title: string;
  readonly irreversible: string | undefined;
  readonly undoable: boolean;
  status: StepStatus;
  /** Plan lines, replaced by the lines journaled when the step really started. */
  describe: string[];
  startedAt: string | undefined;
  durationMs: number | undefined;
  output: JsonObject | undefined;
  error: ErrorInfo | undefined;
  undo: UndoRecord | undefined;
  /** It started and never finished: the process running it died (its output is unknown). */
  interrupted: boolean;
  /** Skipped because the parameters did not ask for it: what would have (e.g. "--verify-restore"). */
  notAsked: string | undefined;
}

export interface CheckRecord {
  readonly name: string;
  readonly ok: boolean;
  /** Could not be made (`detail` says why): neither passed nor failed. */
  readonly unverified?: boolean | undefined;
  /** For an unverified check: why the procedure says the run may still succeed. */
  readonly safe?: string | undefined;
  readonly detail: string;
  readonly remedy?: string | undefined;
}

export interface RunRecord {
  readonly runId: string;
  readonly created: JournalEntryOf<'run.created'>;
  readonly state: RunState;
  readonly startedAt: string;
  /** When the last attempt ended (undefined while running or interrupted). */
  readonly endedAt: string | undefined;
  readonly lastEnd: JournalEntryOf<'run.ended'> | undefined;
  readonly lastAttempt: JournalEntryOf<'attempt.started'> | undefined;
  readonly steps: StepRecord[];
  /** Of the latest attempt that checked them. */
  readonly prerequisites: CheckRecord[];
  readonly verification: CheckRecord[];
  readonly approval: JournalEntryOf<'approval.granted'> | undefined;
  /** The approval gate was passed: the run went ahead under an approval. */
  readonly approvalUsed: boolean;
  readonly rollbackStarted: boolean;
  /** A page was triggered and not yet resolved. */
  readonly openPage: string | undefined;
  readonly entries: readonly JournalEntry[];
  readonly unreadableLines: number;
}

/** Derives the run's record; `undefined` for a journal without its `run.created` line. */
export function summarizeRun(entries: readonly JournalEntry[], unreadableLines = 0): RunRecord | undefined {
  const first = entries[0];
  if (first === undefined || first.type !== 'run.created') return undefined;
  const created = first;
  const steps = created.plan.map((plan: PlanStep) => newStepRecord(plan));
  const byId = new Map(steps.map((step) => [step.id, step]));
  let lastEnd: JournalEntryOf<'run.ended'> | undefined;
  let lastAttempt: JournalEntryOf<'attempt.started'> | undefined;
  let endedAfterAttempt = false;
  let prerequisites: CheckRecord[] = [];
  let verification: CheckRecord[] = [];
  let freshPrerequisites = false;
  let freshVerification = false;
  let approval: JournalEntryOf<'approval.granted'> | undefined;
  let approvalUsed = false;
  let rollbackStarted = false;
  let openPage: string | undefined;

  for (const entry of entries) {
    switch (entry.type) {
      case 'attempt.started':
        // A step still running when a new attempt starts was cut off by the previous one's death.
        for (const step of steps) if (step.status === 'running') step.interrupted = true;
        lastAttempt = entry;
        endedAfterAttempt = false;
        freshPrerequisites = true;
        freshVerification = true;
        break;
      case 'prerequisite':
        if (freshPrerequisites) prerequisites = [];
        freshPrerequisites = false;
        prerequisites.push(check(entry));
        break;
      case 'verification':
        if (freshVerification) verification = [];
        freshVerification = false;
        verification.push(check(entry));
        break;
      case 'approval.granted':
        approval = entry;
        break;
      case 'gate':
        if (entry.gate === 'approval' && entry.outcome === 'passed') approvalUsed = true;
        break;
      case 'step.started': {
        const step = byId.get(entry.step);
        if (step) {
          step.status = 'running';
          step.describe = entry.describe;
          step.startedAt = entry.at;
          step.error = undefined;
          step.interrupted = false;
        }
        break;
      }
      case 'step.done': {
        const step = byId.get(entry.step);
        if (step) Object.assign(step, { status: 'done', durationMs: entry.durationMs, output: entry.output });
        break;
      }
      case 'step.failed': {
        const step = byId.get(entry.step);
        if (step) Object.assign(step, { status: 'failed', durationMs: entry.durationMs, error: entry.error });
        break;
      }
      case 'step.skipped': {
        const step = byId.get(entry.step);
        if (step) Object.assign(step, { status: 'skipped', notAsked: entry.reason });
        break;
      }
      case 'rollback.started':
        rollbackStarted = true;
        break;
      case 'step.undone': {
        const step = byId.get(entry.step);
        if (step) {
          step.status = 'undone';
          step.undo = { status: 'undone', how: entry.how, durationMs: entry.durationMs };
        }
        break;
      }
      case 'step.undo.failed': {
        const step = byId.get(entry.step);
        if (step) step.undo = { status: 'failed', durationMs: entry.durationMs, error: entry.error };
        break;
      }
      case 'step.undo.impossible': {
        const step = byId.get(entry.step);
        if (step) step.undo = { status: 'impossible', reason: entry.reason };
        break;
      }
      case 'alert':
        if (entry.page === 'trigger') openPage = entry.dedupKey;
        if (entry.page === 'resolve') openPage = undefined;
        break;
      case 'run.ended':
        lastEnd = entry;
        endedAfterAttempt = true;
        break;
      default:
        break;
    }
  }

  let state: RunState;
  if (lastEnd !== undefined && (endedAfterAttempt || lastAttempt === undefined)) {
    state = lastEnd.state;
  } else if (lastAttempt === undefined) {
    state = 'interrupted';
  } else {
    state = liveness(lastAttempt) === 'dead' ? 'interrupted' : 'running';
  }
  const final = state === 'succeeded' || state === 'unverified' || state === 'failed' || state === 'rolled-back' || state === 'needs-attention';
  for (const step of steps) {
    if (step.status === 'running' && state !== 'running') {
      step.interrupted = true;
      if (final) {
        step.status = 'failed';
        step.error = { code: 'SHIP_ERR_STEP_FAILED', message: 'interrupted before it finished; its effect is unknown' };
      }
    }
    if (final && step.status === 'pending') step.status = 'skipped';
  }

  return {
    runId: created.runId,
    created,
    state,
    startedAt: created.at,
    endedAt: state === 'running' || state === 'interrupted' ? undefined : lastEnd?.at,
    lastEnd,
    lastAttempt,
    steps,
    prerequisites,
    verification,
    approval,
    approvalUsed,
    rollbackStarted,
    openPage,
    entries,
    unreadableLines,
  };
}

function newStepRecord(plan: PlanStep): StepRecord {
  return {
    id: plan.id,
    title: plan.title,
    irreversible: plan.irreversible,
    undoable: plan.undoable,
    status: 'pending',
    describe: plan.describe,
    startedAt: undefined,
    durationMs: undefined,
    output: undefined,
    error: undefined,
    undo: undefined,
    interrupted: false,
    notAsked: undefined,
  };
}

function check(entry: CheckRecord): CheckRecord {
  return {
    name: entry.name,
    ok: entry.ok,
    ...(entry.unverified ? { unverified: true } : {}),
    ...(entry.safe === undefined ? {} : { safe: entry.safe }),
    detail: entry.detail,
    ...(entry.remedy === undefined ? {} : { remedy: entry.remedy }),
  };
}

/** Steps that are done and not undone, in the order they ran. */
export function completedSteps(record: RunRecord): StepRecord[] {
  return record.steps.filter((step) => step.status === 'done');
}

/** The step that started and never finished (the process died inside it), unless since undone. */
export function interruptedStep(record: RunRecord): StepRecord | undefined {
  return record.steps.find((step) => step.interrupted && step.status !== 'undone');
}
