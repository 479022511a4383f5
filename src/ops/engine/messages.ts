/**
 * The sentences an operator reads when a run stops: what happened, exactly what state
 * things are in, and the command to run next.
 */
import type { CheckRecord, RunRecord, StepRecord } from './run-record.ts';

const list = (steps: readonly StepRecord[]) => (steps.length === 0 ? 'none' : steps.map((step) => step.id).join(', '));

/**
 * `text` ended as a sentence. Error messages, remedies and undo reasons come from procedures
 * and usually end with a full stop already; appending another gave "…again..".
 */
export function sentence(text: string): string {
  const trimmed = text.trimEnd();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

export function prerequisitesMessage(command: string, failed: readonly CheckRecord[]): string {
  const lines = failed.map((check) => `${check.name}: ${check.detail}${check.remedy ? ` — ${check.remedy}` : ''}`);
  return `${failed.length} prerequisite(s) not met, so nothing was changed: ${sentence(lines.join('; '))} Fix them, then run \`shipshape ${command}\` again.`;
}

export interface Stuck {
  readonly step: string;
  readonly why: string;
  readonly kind: 'undo-failed' | 'impossible';
}

/** After a rollback: which steps were undone, which are still in effect, what to do. */
export function rollbackMessage(record: RunRecord, cause: string, stuck: Stuck | undefined): { message: string; next: string | undefined } {
  const runId = record.runId;
  const undone = [...record.steps].filter((step) => step.status === 'undone').reverse();
  const stillDone = record.steps.filter((step) => step.status === 'done' || (step.interrupted && step.status !== 'undone'));
  const undoneText = undone.length === 0 ? 'no step had to be undone' : `undone (in that order): ${list(undone)}`;
  if (stuck === undefined) {
    return {
      message: `${cause} Rollback complete, ${undoneText}; nothing this run changed is still in effect.`,
      next: `fix the cause, then run \`shipshape ${record.created.procedure.command}\` again`,
    };
  }
  const blocked =
    stuck.kind === 'undo-failed' ? `undoing step ${stuck.step} failed: ${sentence(stuck.why)}` : `step ${stuck.step} cannot be undone: ${sentence(stuck.why)}`;
  const next =
    stuck.kind === 'undo-failed'
      ? `fix what made the undo of ${stuck.step} fail, then run \`shipshape runs rollback ${runId}\` to continue undoing (${list([...stillDone].reverse())})`
      : `a human must decide: ${stuck.step} stays done; undo the steps before it by hand if that is right. \`shipshape runs show ${runId}\` has every step's output`;
  return {
    message:
      `${cause} Rollback stopped: ${blocked} ` +
      `Still in effect: ${list(stillDone)}. Undone: ${undone.length === 0 ? 'none' : list(undone)}. ` +
      'The rollback stopped there because undoing earlier steps on top of a later one that is still in effect could leave things worse.',
    next,
  };
}
