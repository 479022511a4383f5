/**
 * The run report: what a run (or dry run, resume, rollback) did, built from the journal,
 * and the one function that turns it into output and an exit code.
 */
import { errorCatalogue, ExitCode, type ErrorCode } from '../../errors.ts';
import type { ErrorInfo } from './journal.ts';
import type { CheckRecord, RunRecord, RunState, StepStatus, UndoRecord } from './run-record.ts';
import type { JsonObject, JsonValue, Procedure, Risk } from './types.ts';

export type ReportMode = 'run' | 'dry-run' | 'resume' | 'rollback';
/** A run's state, or `planned` (dry run) / `not-started` (refused before a run was recorded). */
export type ReportState = RunState | 'planned' | 'not-started';

export interface StepReport {
  readonly id: string;
  readonly title: string;
  readonly status: StepStatus;
  readonly durationMs: number | null;
  /** The exact SQL, commands or objects the step touches (or touched). */
  readonly describe: string[];
  readonly irreversible: string | null;
  /** Started and never finished because the process died. */
  readonly interrupted: boolean;
  readonly error: string | null;
  readonly undo: UndoRecord | null;
  /** Short form of what the step returned (long values cut). */
  readonly output: JsonObject | null;
  /** Skipped because it was not asked for: what would have asked for it (e.g. "--verify-restore"). */
  readonly notAsked: string | null;
  /** Done, but the check it makes could not be made: why (its output's `unverified`). */
  readonly unverified: string | null;
}

/** A done step's "could not check" reason, from its output's `unverified` field. */
export function stepUnverified(output: JsonObject | undefined | null): string | null {
  const value = output?.unverified;
  return typeof value === 'string' && value !== '' ? value : null;
}

export interface RunReport {
  readonly runId: string | null;
  readonly mode: ReportMode;
  readonly procedure: {
    readonly id: string;
    readonly command: string;
    readonly title: string;
    readonly risk: Risk;
    readonly runbookSection: string;
  };
  /** Who ran this command. */
  readonly operator: string;
  /** Who started the run (differs from `operator` for resume/rollback by someone else). */
  readonly requestedBy: string;
  readonly state: ReportState;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  readonly durationMs: number | null;
  readonly params: JsonObject;
  readonly locks: string[];
  readonly prerequisites: CheckRecord[];
  readonly steps: StepReport[];
  readonly verification: CheckRecord[];
  /** Names of the verification checks (what a dry run would verify). */
  readonly plannedVerification: string[];
  readonly approval: { readonly by: string; readonly expiresAt: string; readonly how: 'command' | 'inline' } | null;
  readonly error: { readonly code: ErrorCode; readonly message: string } | null;
  /** The command to run next, when there is one. */
  readonly next: string | null;
  readonly exitCode: ExitCode;
}

export interface ReportOutcome {
  readonly exitCode: ExitCode;
  readonly error?: { readonly code: ErrorCode; readonly message: string } | undefined;
  readonly next?: string | undefined;
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(errorCatalogue, code);
}

export function errorFromInfo(info: ErrorInfo | undefined): { code: ErrorCode; message: string } | undefined {
  if (info === undefined) return undefined;
  return { code: isErrorCode(info.code) ? info.code : 'SHIP_ERR_INTERNAL', message: info.message };
}

/** A journaled exit code back as an `ExitCode`; anything unknown is treated as "a human must act". */
export function toExitCode(value: number): ExitCode {
  return Object.values(ExitCode).find((code) => code === value) ?? ExitCode.needsHuman;
}

export function reportFromRecord(record: RunRecord, mode: ReportMode, operator: string, outcome: ReportOutcome): RunReport {
  const created = record.created;
  const endedAt = record.endedAt ?? null;
  return {
    runId: record.runId,
    mode,
    procedure: {
      id: created.procedure.id,
      command: created.procedure.command,
      title: created.procedure.title,
      risk: created.procedure.risk,
      runbookSection: created.procedure.runbookSection,
    },
    operator,
    requestedBy: created.operator,
    state: record.state,
    startedAt: record.startedAt,
    endedAt,
    durationMs: endedAt === null ? null : Date.parse(endedAt) - Date.parse(record.startedAt),
    params: created.params,
    locks: created.locks,
    prerequisites: record.prerequisites,
    steps: record.steps.map((step) => ({
      id: step.id,
      title: step.title,
      status: step.status,
      durationMs: step.durationMs ?? null,
      describe: step.describe,
      irreversible: step.irreversible ?? null,
      interrupted: step.interrupted,
      error: step.error?.message ?? null,
      undo: step.undo ?? null,
      output: step.output === undefined ? null : summarizeOutput(step.output),
      notAsked: step.notAsked ?? null,
      unverified: step.status === 'done' ? stepUnverified(step.output) : null,
    })),
    verification: record.verification,
    plannedVerification: [],
    approval: record.approval ? { by: record.approval.by, expiresAt: record.approval.expiresAt, how: record.approval.how } : null,
    error: outcome.error ?? null,
    next: outcome.next ?? null,
    exitCode: outcome.exitCode,
  };
}

/** A report for something refused or planned before any run was recorded. */
export function reportWithoutRun(
  procedure: Procedure,
  mode: ReportMode,
  operator: string,
  params: JsonObject,
  details: {
    state: 'planned' | 'not-started';
    steps?: StepReport[];
    prerequisites?: CheckRecord[];
    locks?: string[];
    outcome: ReportOutcome;
  },
): RunReport {
  return {
    runId: null,
    mode,
    procedure: {
      id: procedure.id,
      command: procedure.command,
      title: procedure.title,
      risk: procedure.risk,
      runbookSection: procedure.runbookSection,
    },
    operator,
    requestedBy: operator,
    state: details.state,
    startedAt: null,
    endedAt: null,
    durationMs: null,
    params,
    locks: details.locks ?? [],
    prerequisites: details.prerequisites ?? [],
    steps: details.steps ?? [],
    verification: [],
    plannedVerification: procedure.verification.map((check) => check.name),
    approval: null,
    error: details.outcome.error ?? null,
    next: details.outcome.next ?? null,
    exitCode: details.outcome.exitCode,
  };
}

const MAX_STRING = 200;
const MAX_ITEMS = 20;

/** Keeps reports readable: long strings and arrays are cut, with a marker saying so. */
export function summarizeOutput(output: JsonObject): JsonObject {
  const cut = (value: JsonValue, depth: number): JsonValue => {
    if (typeof value === 'string') return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}… (${value.length} chars)` : value;
    if (value === null || typeof value !== 'object') return value;
    if (depth > 3) return '…';
    if (Array.isArray(value)) {
      const items = value.slice(0, MAX_ITEMS).map((item) => cut(item, depth + 1));
      return value.length > MAX_ITEMS ? [...items, `… ${value.length - MAX_ITEMS} more`] : items;
    }
    const out: JsonObject = {};
    for (const [key, item] of Object.entries(value)) out[key] = cut(item, depth + 1);
    return out;
  };
  const out: JsonObject = {};
  for (const [key, item] of Object.entries(output)) out[key] = cut(item, 0);
  return out;
}
