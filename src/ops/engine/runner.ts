/**
 * The procedure runner: gates, locks, prerequisites, steps, verification, rollback —
 * journaled event by event — for a new run, a resumed run, and a rollback.
 *
 *   parse params ─▶ gates (confirm, irreversible) ─▶ locks ─▶ journal created
 *     ─▶ prerequisites ──✗──▶ failed (exit 3, nothing changed)
 *     ─▶ approval (high/critical) ──none──▶ awaiting-approval (exit 3) ─▶ approve ─▶ resume
 *     ─▶ steps ──✗──▶ rollback ─▶ rolled-back (exit 1) | needs-attention (exit 4)
 *     ─▶ verification ──✗──▶ rollback
 *     ─▶ succeeded (exit 0)
 *
 * Expected failures come back as a `RunReport` with its exit code, never as exceptions,
 * so the CLI maps every outcome to output and exit code in one place (present.ts).
 */
import { performance } from 'node:perf_hooks';
import type { z } from 'zod';
import { ExitCode, ShipError, describeError, isShipError, type ErrorCode } from '../../errors.ts';
import { needsApproval, needsConfirmation, resolveEngine, type Engine, type EngineDeps } from './engine.ts';
import type { JournalEvent } from './journal.ts';
import { prerequisitesMessage, rollbackMessage, sentence, type Stuck } from './messages.ts';
import { reportFromRecord, reportWithoutRun, stepUnverified, type ReportMode, type ReportOutcome, type RunReport, type StepReport } from './report.ts';
import type { CheckRecord, RunRecord } from './run-record.ts';
import type { JsonRedactor } from './redact.ts';
import { personalValues, readPersonalRecord, withPersonalValues } from './personal.ts';
import { newRunId } from './run-id.ts';
import { loadRun } from './runs.ts';
import { buildContext, describeStep, elapsed, errorInfo, LazyDatabase, runCheck, Session, toJsonObject } from './session.ts';
import { type JsonObject, parseOutput, type Procedure, type RunContext, type Step } from './types.ts';

export interface RunOptions {
  /** Print the plan, evaluate prerequisites read-only, change nothing. */
  readonly dryRun?: boolean | undefined;
  /** Confirms a medium-or-riskier procedure without a prompt. */
  readonly yes?: boolean | undefined;
  /** Confirms the irreversible steps, separately from --yes. */
  readonly yesIrreversible?: boolean | undefined;
  /** A second operator's name, where policy allows inline approval. */
  readonly approvedBy?: string | undefined;
  /** Queue behind a run that holds a lock instead of failing. */
  readonly wait?: boolean | undefined;
  /** How to name a parameter in a validation message (`email` → `<email>`, `scope` → `--scope`). */
  readonly fieldLabel?: ((field: string) => string) | undefined;
}

export type ContinueOptions = Pick<RunOptions, 'yes' | 'yesIrreversible' | 'wait'>;

/** Validates input against the procedure's schema; bad input names every field at fault. */
export function parseParams(procedure: Procedure, input: unknown, fieldLabel: (field: string) => string = (field) => field): unknown {
  const parsed = procedure.params.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const field = issue.path.map(String).join('.');
    return field === '' ? issue.message : `${fieldLabel(field)}: ${issue.message}`;
  });
  throw new ShipError(
    'SHIP_ERR_VALIDATION',
    `Invalid input for \`shipshape ${procedure.command}\`: ${sentence(problems.join('; '))} Nothing was run; see \`shipshape ${procedure.command} --help\`.`,
    { details: { fields: parsed.error.issues.map((issue) => issue.path.map(String).join('.')) } },
  );
}

/** Runs a procedure (or plans it with `dryRun`). Never throws for an expected failure. */
export async function runProcedure<S extends z.ZodType>(procedure: Procedure<S>, input: unknown, options: RunOptions, deps: EngineDeps): Promise<RunReport> {
  const subject: Procedure = procedure;
  let engine = resolveEngine(deps);
  const operator = engine.config.operator;
  let params: unknown;
  let paramsJson: JsonObject;
  try {
    params = parseParams(subject, input, options.fieldLabel);
    paramsJson = toJsonObject(params ?? {}, 'the parameter schema produced');
  } catch (error) {
    return notStarted(subject, 'run', operator, {}, error);
  }
  const personal = personalValues(subject.params, params);
  engine = keepingApart(engine, personal);
  const shownParams = engine.redactor.object(paramsJson);
  if (options.dryRun) return dryRun(subject, params, shownParams, engine);

  const inline = options.approvedBy?.trim();
  let resources: string[];
  let gateEvents: JournalEvent[];
  try {
    if (inline !== undefined && needsApproval(subject.risk)) checkInlineApproval(subject, operator, inline, engine);
    const executesNow = !needsApproval(subject.risk) || inline !== undefined;
    gateEvents = executesNow ? await askGates(subject, subject.steps, options, engine, 'run') : [];
    resources = subject.locks(params, engine.config);
  } catch (error) {
    return notStarted(subject, 'run', operator, shownParams, error);
  }

  const session = new Session(engine, subject, newRunId(engine.now()), params, 'run');
  let outcome: ReportOutcome;
  try {
    await session.openInfrastructure();
    try {
      await session.acquire(resources, options.wait ?? false);
    } catch (error) {
      return notStarted(subject, 'run', operator, shownParams, error, resources);
    }
    session.create(paramsJson, resources, personal);
    for (const event of gateEvents) session.write(event);
    outcome = await forward(session, { checkPrerequisites: true, inlineApprovedBy: needsApproval(subject.risk) ? inline : undefined });
  } catch (error) {
    outcome = engineFailure(session, error);
  } finally {
    await session.close();
  }
  return session.started ? reportFromRecord(session.record(), 'run', operator, outcome) : notStarted(subject, 'run', operator, shownParams, outcome);
}

/**
 * Continues a run: one awaiting approval (now approved), or one whose process died. Steps
 * already done are skipped; a step that started and never finished runs again, which is
 * why steps must be idempotent or check before they act.
 */
export async function resumeRun(runId: string, procedures: readonly Procedure[], options: ContinueOptions, deps: EngineDeps): Promise<RunReport> {
  const { engine, record, procedure, personal, refuse } = await reopenRun(runId, procedures, deps, 'resume');

  if (record.state === 'running')
    return refuse('SHIP_ERR_LOCKED', `Run ${runId} is still running (${attemptWhere(record)}). Wait for it, or interrupt it with Ctrl-C where it runs.`);
  if (record.state !== 'interrupted' && record.state !== 'awaiting-approval') {
    return refuse(
      'SHIP_ERR_VALIDATION',
      `Run ${runId} is ${record.state}; only interrupted runs and runs awaiting approval can be resumed.${nextForState(record)}`,
    );
  }
  if (record.rollbackStarted) {
    return refuse('SHIP_ERR_VALIDATION', `Run ${runId} was rolling back when it stopped, so it cannot go forward again.`, `shipshape runs rollback ${runId}`);
  }
  if (record.created.redactedParams.length > 0) {
    return refuse(
      'SHIP_ERR_VALIDATION',
      `Run ${runId} was started with secret parameter(s) ${record.created.redactedParams.join(', ')}, which the journal does not keep, so it cannot be resumed. Roll it back and start a new run.`,
      `shipshape runs rollback ${runId}`,
    );
  }
  const personalParams = record.created.personalParams ?? [];
  if (personalParams.length > 0 && personal === undefined) {
    return refuse(
      'SHIP_ERR_VALIDATION',
      `Run ${runId} named a person (${personalParams.join(', ')}) whose details were erased since, so it cannot be resumed. Roll it back and, if it is still needed, start a new run.`,
      `shipshape runs rollback ${runId}`,
    );
  }
  const reparsed = procedure.params.safeParse({ ...record.created.params, ...personal });
  if (!reparsed.success) {
    return refuse(
      'SHIP_ERR_VALIDATION',
      `The parameters journaled for run ${runId} no longer validate against ${procedure.id} (${reparsed.error.issues[0]?.message ?? 'invalid'}); the procedure changed since the run started. Roll it back and start a new run.`,
      `shipshape runs rollback ${runId}`,
    );
  }
  const changedSomething = record.steps.some((step) => step.status !== 'pending');
  if (needsApproval(procedure.risk) && !record.approvalUsed) {
    const problem = approvalProblem(record, engine);
    if (problem)
      return refuse('SHIP_ERR_APPROVAL_REQUIRED', problem, `another operator runs \`shipshape approve ${runId}\`, then \`shipshape runs resume ${runId}\``);
  }
  const remaining = procedure.steps.filter((step) => record.steps.find((s) => s.id === step.id)?.status !== 'done');
  let gateEvents: JournalEvent[];
  try {
    gateEvents = await askGates(procedure, remaining, options, engine, 'resume');
  } catch (error) {
    return refuse.because(error);
  }

  const session = new Session(engine, procedure, runId, reparsed.data, 'resume', record.entries);
  return continueRun(session, 'resume', record, options, gateEvents, refuse, () =>
    forward(session, { checkPrerequisites: !changedSomething, inlineApprovedBy: undefined }),
  );
}

/**
 * Undoes a run's completed steps in reverse order: for an interrupted run, a run that
 * needs attention (retrying a failed undo), or a run awaiting approval (cancelling it).
 */
export async function rollbackRun(runId: string, procedures: readonly Procedure[], options: ContinueOptions, deps: EngineDeps): Promise<RunReport> {
  // Undo works without the personal values (steps then see the journal's placeholders) if the person was erased since.
  const { engine, operator, record, procedure, personal, refuse } = await reopenRun(runId, procedures, deps, 'rollback');

  if (record.state === 'running')
    return refuse(
      'SHIP_ERR_LOCKED',
      `Run ${runId} is still running (${attemptWhere(record)}). Interrupt it with Ctrl-C where it runs: it rolls back by itself.`,
    );
  if (record.state === 'succeeded' && procedure.undoAfterSuccess === undefined) {
    return refuse(
      'SHIP_ERR_VALIDATION',
      `Run ${runId} succeeded and was verified; the engine does not roll back finished work. Use the procedure that reverses it (see \`shipshape procedures\`).`,
    );
  }
  if (record.state === 'failed' || record.state === 'rolled-back') {
    return refuse('SHIP_ERR_VALIDATION', `Run ${runId} is ${record.state}: nothing it changed is still in effect, so there is nothing to roll back.`);
  }
  const journaled = { ...record.created.params, ...personal };
  const parsed = procedure.params.safeParse(journaled);
  // Undo must work even if the schema changed since: then steps get the journaled JSON.
  const params: unknown = parsed.success ? parsed.data : journaled;
  const toUndo = record.steps.filter((step) => step.status === 'done' || (step.interrupted && step.status !== 'undone'));
  let gateEvents: JournalEvent[] = [];
  try {
    if (needsConfirmation(procedure.risk) && toUndo.length > 0) {
      gateEvents = await confirm(
        procedure,
        options,
        engine,
        `Roll back run ${runId} (undo ${toUndo
          .map((s) => s.id)
          .reverse()
          .join(', ')})?`,
      );
    }
  } catch (error) {
    return refuse.because(error);
  }

  const session = new Session(engine, procedure, runId, params, 'rollback', record.entries);
  return continueRun(session, 'rollback', record, options, gateEvents, refuse, async () => {
    if (record.state !== 'awaiting-approval') return rollback(session, `Rolled back by ${operator} with \`shipshape runs rollback\`.`, 'rollback');
    session.write({ type: 'note', message: `cancelled by ${operator} before any step ran` });
    return session.end('failed', { exitCode: ExitCode.ok });
  });
}

/** What resume and rollback start from: the run's record, its procedure, its personal values (if still kept). */
async function reopenRun(runId: string, procedures: readonly Procedure[], deps: EngineDeps, mode: 'resume' | 'rollback') {
  const base = resolveEngine(deps);
  const operator = base.config.operator;
  const record = await loadRun(base.config.stateDir, runId);
  const procedure = procedureFor(record, procedures);
  const personal = await readPersonalRecord(base.config.stateDir, runId);
  const engine = keepingApart(base, personal ?? {});
  return { engine, operator, record, procedure, personal, refuse: refuser(record, mode, operator, engine.redactor) };
}

/** The engine for one run: its journal keeps the run's personal values out (see personal.ts). */
function keepingApart(engine: Engine, personal: Readonly<Record<string, string>>): Engine {
  return Object.keys(personal).length === 0 ? engine : { ...engine, redactor: withPersonalValues(engine.redactor, personal) };
}

interface Refuse {
  (code: ErrorCode, message: string, next?: string): RunReport;
  /** For a thrown error (a gate refused, the locks held elsewhere): its code and redacted message. */
  because(error: unknown): RunReport;
}

/** How a resume or rollback that cannot go ahead ends: nothing is written, the run stays as its journal says. */
function refuser(record: RunRecord, mode: ReportMode, operator: string, redactor: JsonRedactor): Refuse {
  const refuse = (code: ErrorCode, message: string, next?: string) =>
    reportFromRecord(record, mode, operator, { exitCode: new ShipError(code, message).exitCode, error: { code, message }, next });
  return Object.assign(refuse, {
    because: (error: unknown) => refuse(isShipError(error) ? error.code : 'SHIP_ERR_INTERNAL', errorInfo(error, redactor, 'SHIP_ERR_INTERNAL').message),
  });
}

/**
 * Picks a journaled run up in this process: its locks again (refused if another process holds
 * them), the gates just passed into the journal, then `body`. A bug in here leaves the run
 * needing attention rather than half-reported.
 */
async function continueRun(
  session: Session,
  mode: 'resume' | 'rollback',
  record: RunRecord,
  options: ContinueOptions,
  gateEvents: readonly JournalEvent[],
  refuse: Refuse,
  body: () => Promise<ReportOutcome>,
): Promise<RunReport> {
  let outcome: ReportOutcome;
  try {
    await session.openInfrastructure();
    try {
      await session.acquire(record.created.locks, options.wait ?? false);
      // Refused (SHIP_ERR_RUN_CHANGED) if anyone wrote to the journal since it was read above.
      session.reopen(record.created.locks);
    } catch (error) {
      return refuse.because(error);
    }
    for (const event of gateEvents) session.write(event);
    outcome = await body();
  } catch (error) {
    outcome = engineFailure(session, error);
  } finally {
    await session.close();
  }
  return reportFromRecord(session.record(), mode, session.engine.config.operator, outcome);
}

async function forward(session: Session, options: { checkPrerequisites: boolean; inlineApprovedBy: string | undefined }): Promise<ReportOutcome> {
  const { procedure, engine, runId } = session;
  if (options.checkPrerequisites) {
    const failed: CheckRecord[] = [];
    for (const check of procedure.prerequisites) {
      const result = await runCheck(check, session.context(engine.signal, undefined), engine.redactor);
      session.write({ type: 'prerequisite', name: check.name, ...result });
      // One that could not be checked does not stop the run; it ends the run `unverified`.
      if (!result.ok && !result.unverified) failed.push({ name: check.name, ...result });
    }
    if (failed.length > 0) {
      return session.end('failed', {
        exitCode: ExitCode.prerequisite,
        error: { code: 'SHIP_ERR_PREREQUISITE_FAILED', message: prerequisitesMessage(procedure.command, failed) },
        next: `fix the prerequisites, then run \`shipshape ${procedure.command}\` again`,
      });
    }
  } else {
    session.write({ type: 'note', message: 'prerequisites not re-checked: this run had already started changing things' });
  }

  if (needsApproval(procedure.risk) && !session.record().approvalUsed) {
    if (options.inlineApprovedBy !== undefined) {
      session.write({ type: 'approval.granted', by: options.inlineApprovedBy, expiresAt: engine.now().toISOString(), how: 'inline' });
      session.write({
        type: 'gate',
        gate: 'approval',
        outcome: 'passed',
        how: 'inline',
        by: options.inlineApprovedBy,
        detail: 'approved inline with --approved-by (allowed by policy)',
      });
    } else {
      const problem = approvalProblem(session.record(), engine);
      if (problem !== undefined) {
        const next = `another operator runs \`shipshape approve ${runId}\`, then \`shipshape runs resume ${runId}\``;
        session.write({ type: 'gate', gate: 'approval', outcome: 'awaiting', detail: problem });
        const outcome = session.end('awaiting-approval', {
          exitCode: ExitCode.prerequisite,
          error: { code: 'SHIP_ERR_APPROVAL_REQUIRED', message: problem },
          next,
        });
        await session.announce(
          'approval-requested',
          `${engine.config.operator} asks for approval of \`shipshape ${procedure.command}\`: run \`shipshape approve ${runId}\`.`,
        );
        return outcome;
      }
      const approval = session.record().approval;
      session.write({
        type: 'gate',
        gate: 'approval',
        outcome: 'passed',
        how: 'approval',
        ...(approval ? { by: approval.by } : {}),
        detail: `approved until ${approval?.expiresAt ?? '?'}`,
      });
    }
  }

  await session.announce('started', `${engine.config.operator} is running \`shipshape ${procedure.command}\`.`);
  let cause: string | undefined;
  for (const step of procedure.steps) {
    if (session.record().steps.find((s) => s.id === step.id)?.status === 'done') continue;
    if (engine.signal.aborted) {
      cause = `The operator interrupted the run before step ${step.id}.`;
      break;
    }
    const notAsked = step.notAsked?.(session.context(engine.signal, step.id));
    if (notAsked !== undefined) {
      session.skipStep(step, notAsked);
      continue;
    }
    const result = await session.runStep(step, engine.signal);
    if (!result.ok) {
      cause = `Step ${step.id} (${step.title}) failed: ${sentence(result.error.message)}`;
      break;
    }
  }
  if (cause === undefined) {
    const failed: string[] = [];
    for (const check of procedure.verification) {
      const result = await runCheck(check, session.context(engine.signal, undefined), engine.redactor);
      session.write({ type: 'verification', name: check.name, ...result });
      if (!result.ok && !result.unverified) failed.push(`${check.name}: ${result.detail}${result.remedy ? ` (${result.remedy})` : ''}`);
    }
    if (failed.length > 0) cause = `Verification failed — ${sentence(failed.join('; '))} A run that does not verify is treated as failed.`;
    else if (engine.signal.aborted) cause = 'The operator interrupted the run during verification.';
  }
  if (cause !== undefined) return rollback(session, cause, 'run');

  const record = session.record();
  const stepChecks: CheckRecord[] = record.steps.flatMap((step) => {
    const why = step.status === 'done' ? stepUnverified(step.output) : null;
    return why === null ? [] : [{ name: `step ${step.id}`, ok: false, unverified: true, detail: why }];
  });
  const unchecked = [...record.prerequisites, ...stepChecks, ...record.verification].filter((check) => check.unverified && check.safe === undefined);
  if (unchecked.length > 0) {
    const message = unverifiedMessage(procedure.command, unchecked);
    const outcome = session.end('unverified', {
      exitCode: ExitCode.unverified,
      error: { code: 'SHIP_ERR_UNVERIFIED', message },
      next: `${sentence(unchecked.map((check) => check.remedy ?? `check "${check.name}" by hand`).join('; '))} If it did not work: \`shipshape runs rollback ${runId}\` undoes its steps.`,
    });
    await session.announce('unverified', message);
    return outcome;
  }
  const outcome = session.end('succeeded', { exitCode: ExitCode.ok });
  const safe = [...record.prerequisites, ...record.verification].filter((check) => check.unverified);
  const also = safe.length === 0 ? '' : ` (not checked, and safe: ${safe.map((check) => `${check.name} — ${check.safe ?? ''}`).join('; ')})`;
  await session.announce('succeeded', `\`shipshape ${procedure.command}\` finished and verified${also}.`);
  return outcome;
}

/** Why a run whose steps all ran is not called a success: the checks that could not be made. */
function unverifiedMessage(command: string, unchecked: readonly CheckRecord[]): string {
  const list = unchecked.map((check) => `${check.name}: ${check.detail}`).join('; ');
  return `\`shipshape ${command}\` ran every step, but ${unchecked.length === 1 ? 'one check' : `${unchecked.length} checks`} could not be made, so it is not known to have worked — ${sentence(list)} Nothing was rolled back.`;
}

/**
 * Undoes completed steps newest first, and stops at the first step that cannot be undone:
 * undoing earlier steps underneath a later change that is still in effect could leave
 * things worse than either state (maintenance mode off over a half-restored database).
 */
async function rollback(session: Session, cause: string, mode: 'run' | 'rollback'): Promise<ReportOutcome> {
  const { procedure, engine } = session;
  session.write({ type: 'rollback.started', reason: cause });
  // Undo runs even after Ctrl-C: the interrupt is what asked for it. A second Ctrl-C exits.
  const undoSignal = new AbortController().signal;
  const targets = [...session.record().steps].reverse().filter((step) => step.status === 'done' || (step.interrupted && step.status !== 'undone'));
  let stuck: Stuck | undefined;
  for (const target of targets) {
    const step: Step<unknown> | undefined = procedure.steps.find((candidate) => candidate.id === target.id);
    const interrupted = target.status !== 'done';
    if (step === undefined) {
      stuck = { step: target.id, kind: 'impossible', why: 'the procedure no longer has this step' };
      session.write({ type: 'step.undo.impossible', step: target.id, reason: stuck.why });
      break;
    }
    const output = session.outputs[step.id] ?? target.output ?? {};
    let undo: ((context: RunContext<unknown>) => Promise<void>) | undefined;
    if (interrupted) undo = step.undoInterrupted?.bind(step);
    else if (step.undo !== undefined) {
      const undoStep = step.undo.bind(step);
      const schema = step.output;
      // A declared output reaches undo parsed by the step's own schema, which is what `stepFor`
      // typed its undo against (hence the cast); a mismatch fails the undo, naming the step.
      undo = (context) =>
        undoStep(
          context,
          schema === undefined ? output : (parseOutput({ id: step.id, output: schema }, output, `journaled in run ${session.runId}`) as JsonObject),
        );
    }
    if (undo === undefined) {
      if (step.undo === undefined && step.irreversible === undefined) {
        // Declares no change (no undo, not irreversible): nothing to put back.
        session.write({ type: 'step.undone', step: step.id, durationMs: 0, how: 'nothing-to-undo' });
        continue;
      }
      const why = interrupted
        ? 'it was interrupted before it finished and has no undoInterrupted(), so what it changed is unknown'
        : (step.irreversible ?? 'it has no undo');
      stuck = { step: step.id, kind: 'impossible', why };
      session.write({ type: 'step.undo.impossible', step: step.id, reason: why });
      break;
    }
    session.write({ type: 'step.undo.started', step: step.id });
    const started = performance.now();
    try {
      await undo(session.context(undoSignal, step.id));
      session.write({ type: 'step.undone', step: step.id, durationMs: elapsed(started), how: interrupted ? 'undo-interrupted' : 'undo' });
    } catch (error) {
      const info = errorInfo(error, engine.redactor, 'SHIP_ERR_ROLLBACK_FAILED');
      session.write({ type: 'step.undo.failed', step: step.id, durationMs: elapsed(started), error: info });
      stuck = { step: step.id, kind: 'undo-failed', why: info.message };
      break;
    }
  }

  const { message, next } = rollbackMessage(session.record(), cause, stuck);
  if (stuck !== undefined) {
    const outcome = session.end('needs-attention', { exitCode: ExitCode.needsHuman, error: { code: 'SHIP_ERR_ROLLBACK_FAILED', message }, next });
    await session.announce('needs-attention', `${message} Next: ${sentence(next ?? 'see the journal')}`);
    return outcome;
  }
  const changed = targets.length > 0;
  const outcome =
    mode === 'rollback'
      ? session.end('rolled-back', { exitCode: ExitCode.ok })
      : session.end(changed ? 'rolled-back' : 'failed', {
          exitCode: ExitCode.failedRolledBack,
          error: { code: 'SHIP_ERR_STEP_FAILED', message },
          next,
        });
  await session.announce(mode === 'rollback' ? 'rolled-back' : 'failed', message);
  return outcome;
}

/** A bug or a broken journal: stop, keep what the journal says, and hand over to a human. */
function engineFailure(session: Session, error: unknown): ReportOutcome {
  const message = `The engine itself failed: ${sentence(session.engine.redactor.text(describeError(error)))} Steps already done were NOT undone.`;
  const next = `inspect with \`shipshape runs show ${session.runId}\`, then \`shipshape runs rollback ${session.runId}\` if the steps should be undone`;
  session.engine.logger.error({ err: describeError(error), runId: session.runId }, 'run engine failure');
  const outcome: ReportOutcome = { exitCode: ExitCode.needsHuman, error: { code: 'SHIP_ERR_INTERNAL', message }, next };
  if (!session.started) return outcome;
  try {
    return session.end('needs-attention', outcome);
  } catch {
    return outcome;
  }
}

/** Confirmation gates, asked before anything is locked or written; refusal throws. */
async function askGates(
  procedure: Procedure,
  stepsAhead: ReadonlyArray<Step<unknown>>,
  options: ContinueOptions,
  engine: Engine,
  mode: 'run' | 'resume',
): Promise<JournalEvent[]> {
  const events: JournalEvent[] = [];
  const irreversible = stepsAhead.filter((step) => step.irreversible !== undefined);
  const verb = mode === 'run' ? 'Run' : 'Resume';
  if (needsConfirmation(procedure.risk)) {
    const question = `${verb} \`shipshape ${procedure.command}\` (${procedure.risk} risk; steps: ${stepsAhead.map((step) => step.id).join(', ')})?`;
    events.push(...(await confirm(procedure, options, engine, question, irreversible.length > 0 && !options.yesIrreversible)));
  }
  if (irreversible.length > 0) {
    if (options.yesIrreversible) {
      events.push({
        type: 'gate',
        gate: 'irreversible',
        outcome: 'passed',
        how: 'flag',
        by: engine.config.operator,
        detail: `--yes-irreversible for ${irreversible.map((s) => s.id).join(', ')}`,
      });
    } else if (engine.prompter === undefined) {
      throw new ShipError(
        'SHIP_ERR_CONFIRMATION_REQUIRED',
        `${irreversibleText(irreversible)} There is no terminal to ask on: pass --yes-irreversible (separately from --yes) to confirm. Nothing was changed.`,
      );
    } else {
      for (const step of irreversible) {
        const ok = await engine.prompter.typed(`Step ${step.id} cannot be undone: ${step.irreversible ?? ''}. Type ${step.id} to confirm`, step.id);
        if (!ok) throw new ShipError('SHIP_ERR_CONFIRMATION_REQUIRED', `Step ${step.id} was not confirmed. Nothing was changed.`);
        events.push({
          type: 'gate',
          gate: 'irreversible',
          outcome: 'passed',
          how: 'prompt',
          by: engine.config.operator,
          detail: `typed confirmation for ${step.id}`,
        });
      }
    }
  }
  return events;
}

async function confirm(
  procedure: Procedure,
  options: ContinueOptions,
  engine: Engine,
  question: string,
  irreversibleAlsoMissing = false,
): Promise<JournalEvent[]> {
  if (options.yes) return [{ type: 'gate', gate: 'confirmation', outcome: 'passed', how: 'flag', by: engine.config.operator, detail: '--yes' }];
  if (engine.prompter === undefined) {
    const also = irreversibleAlsoMissing ? ' and --yes-irreversible for its irreversible steps' : '';
    throw new ShipError(
      'SHIP_ERR_CONFIRMATION_REQUIRED',
      `\`shipshape ${procedure.command}\` is a ${procedure.risk}-risk procedure and needs confirmation, but there is no terminal to ask on. ` +
        `Review the plan with \`shipshape ${procedure.command} --dry-run\`, then pass --yes${also}. Nothing was changed.`,
    );
  }
  if (!(await engine.prompter.confirm(question))) {
    throw new ShipError('SHIP_ERR_CONFIRMATION_REQUIRED', 'Not confirmed. Nothing was changed.');
  }
  return [{ type: 'gate', gate: 'confirmation', outcome: 'passed', how: 'prompt', by: engine.config.operator, detail: 'confirmed at the terminal' }];
}

function irreversibleText(steps: ReadonlyArray<Step<unknown>>): string {
  return steps.map((step) => `Step ${step.id} cannot be undone: ${sentence(step.irreversible ?? '')}`).join(' ');
}

function checkInlineApproval(procedure: Procedure, operator: string, approvedBy: string, engine: Engine): void {
  if (!engine.policy.allowInlineApproval) {
    throw new ShipError(
      'SHIP_ERR_FORBIDDEN',
      `--approved-by is not allowed here (SHIPSHAPE_ALLOW_INLINE_APPROVAL is off). Run \`shipshape ${procedure.command}\` without it; ` +
        'it records the run as awaiting approval and prints the `shipshape approve` command for a second operator.',
    );
  }
  if (approvedBy === '' || approvedBy === operator) {
    throw new ShipError('SHIP_ERR_SELF_APPROVAL', `--approved-by must name a second operator, not you (${operator}). Ask a colleague to approve.`);
  }
}

/** Why the run may not go ahead under its approval yet, or undefined when it may. */
function approvalProblem(record: RunRecord, engine: Engine): string | undefined {
  const runId = record.runId;
  const risk = record.created.procedure.risk;
  const approval = record.approval;
  if (approval === undefined) {
    return `\`shipshape ${record.created.procedure.command}\` is ${risk}-risk and needs approval by a second operator. Run ${runId} is recorded and waiting: another operator runs \`shipshape approve ${runId}\`, then run \`shipshape runs resume ${runId}\`.`;
  }
  if (approval.by === record.created.operator) {
    return `Run ${runId} was approved by its own requester (${approval.by}), which does not count. Another operator must run \`shipshape approve ${runId}\`.`;
  }
  if (Date.parse(approval.expiresAt) <= engine.now().getTime()) {
    return `The approval of run ${runId} by ${approval.by} expired at ${approval.expiresAt}. Ask for a new one: another operator runs \`shipshape approve ${runId}\`, then run \`shipshape runs resume ${runId}\`.`;
  }
  return undefined;
}

async function dryRun(procedure: Procedure, params: unknown, shownParams: JsonObject, engine: Engine): Promise<RunReport> {
  const database = new LazyDatabase(() => engine.openDatabase(engine.config, engine.logger));
  const context = buildContext({
    engine,
    runId: 'dry-run',
    params,
    outputs: {},
    database,
    signal: engine.signal,
    step: undefined,
    note: (_step, message) => engine.logger.info({ dryRun: true }, engine.redactor.text(message)),
  });
  const prerequisites: CheckRecord[] = [];
  try {
    for (const check of procedure.prerequisites) prerequisites.push({ name: check.name, ...(await runCheck(check, context, engine.redactor)) });
  } finally {
    await database.close();
  }
  const steps: StepReport[] = procedure.steps.map((step) => ({
    id: step.id,
    title: step.title,
    status: 'pending',
    durationMs: null,
    describe: describeStep(step, { ...context }, engine.redactor),
    irreversible: step.irreversible ?? null,
    interrupted: false,
    error: null,
    undo: null,
    output: null,
    notAsked: null,
    unverified: null,
  }));
  let locks: string[] = [];
  try {
    locks = procedure.locks(params, engine.config);
  } catch (error) {
    locks = [`(could not compute locks: ${engine.redactor.text(describeError(error))})`];
  }
  const failed = prerequisites.filter((check) => !check.ok);
  const outcome: ReportOutcome =
    failed.length === 0
      ? { exitCode: ExitCode.ok }
      : {
          exitCode: ExitCode.prerequisite,
          error: { code: 'SHIP_ERR_PREREQUISITE_FAILED', message: prerequisitesMessage(procedure.command, failed) },
        };
  return reportWithoutRun(procedure, 'dry-run', engine.config.operator, shownParams, { state: 'planned', steps, prerequisites, locks, outcome });
}

function notStarted(procedure: Procedure, mode: ReportMode, operator: string, params: JsonObject, failure: unknown, locks: string[] = []): RunReport {
  let outcome: ReportOutcome;
  if (isShipError(failure)) outcome = { exitCode: failure.exitCode, error: { code: failure.code, message: failure.message } };
  else if (isOutcome(failure)) outcome = failure;
  else outcome = { exitCode: ExitCode.needsHuman, error: { code: 'SHIP_ERR_INTERNAL', message: describeError(failure) } };
  return reportWithoutRun(procedure, mode, operator, params, { state: 'not-started', locks, outcome });
}

function isOutcome(value: unknown): value is ReportOutcome {
  return typeof value === 'object' && value !== null && 'exitCode' in value && typeof value.exitCode === 'number';
}

function procedureFor(record: RunRecord, procedures: readonly Procedure[]): Procedure {
  const procedure = procedures.find((candidate) => candidate.id === record.created.procedure.id);
  if (procedure === undefined) {
    throw new ShipError(
      'SHIP_ERR_NOT_FOUND',
      `Run ${record.runId} is of procedure ${record.created.procedure.id}, which this Shipshape does not have. Use the release that started it.`,
    );
  }
  return procedure;
}

function attemptWhere(record: RunRecord): string {
  const attempt = record.lastAttempt;
  return attempt ? `pid ${attempt.pid} on ${attempt.host}, operator ${attempt.operator}` : 'no process recorded';
}

function nextForState(record: RunRecord): string {
  if (record.state === 'needs-attention') return ` Finish undoing it with \`shipshape runs rollback ${record.runId}\`.`;
  return '';
}
