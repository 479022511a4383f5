/**
 * One process's attempt at a run: it owns the journal writer, the locks, the database
 * connection, the mirror and the in-memory step outputs, and it closes them all.
 */
import { performance } from 'node:perf_hooks';
import type { Alert } from '../../adapters/alerts/index.ts';
import type { Database } from '../../db/index.ts';
import { describeError, isShipError, ShipError, type ErrorCode } from '../../errors.ts';
import { pageKey, sendSafely } from './alerts.ts';
import { needsConfirmation, needsApproval, type Engine } from './engine.ts';
import { JournalWriter, type AttemptMode, type EndState, type ErrorInfo, type JournalEntry, type JournalEvent, type PlanStep } from './journal.ts';
import { jsonObjectSchema } from './json.ts';
import { acquireLocks, type HeldLocks } from './locks.ts';
import { JournalMirror } from './mirror.ts';
import { writePersonalRecord } from './personal.ts';
import type { JsonRedactor } from './redact.ts';
import type { ReportOutcome } from './report.ts';
import { summarizeRun, type CheckRecord, type RunRecord } from './run-record.ts';
import { currentProcess } from './process-identity.ts';
import { type Check, type CheckResult, type JsonObject, parseOutput, type Procedure, type RunContext, type Step } from './types.ts';

/** Opens the application database on first use; a failed open is retried on the next use. */
export class LazyDatabase {
  private opened: Database | undefined;
  private opening: Promise<Database> | undefined;

  private readonly open: () => Promise<Database>;

  constructor(open: () => Promise<Database>) {
    this.open = open;
  }

  get(): Promise<Database> {
    this.opening ??= this.open().then(
      (database) => (this.opened = database),
      (error: unknown) => {
        this.opening = undefined;
        throw error;
      },
    );
    return this.opening;
  }

  current(): Database | undefined {
    return this.opened;
  }

  async close(): Promise<void> {
    const database = this.opened;
    this.opened = undefined;
    this.opening = undefined;
    await database?.close().catch(() => undefined);
  }
}

export interface ContextParts {
  readonly engine: Engine;
  readonly runId: string;
  readonly params: unknown;
  readonly outputs: Readonly<Record<string, JsonObject>>;
  readonly database: LazyDatabase;
  readonly signal: AbortSignal;
  readonly step: string | undefined;
  readonly note: (step: string | undefined, message: string, data: JsonObject | undefined) => void;
}

export function buildContext(parts: ContextParts): RunContext<unknown> {
  const { engine, step } = parts;
  return {
    runId: parts.runId,
    params: parts.params,
    operator: engine.config.operator,
    config: engine.config,
    profile: engine.profile,
    logger: engine.logger.child({ runId: parts.runId, ...(step === undefined ? {} : { step }) }),
    outputs: parts.outputs,
    database: () => parts.database.get(),
    note: (message, data) => parts.note(step, message, data),
    progress: (update) => engine.observer.progress(step, update),
    signal: parts.signal,
  };
}

/** A step's describe() lines; a describe() that throws is shown, not fatal. */
export function describeStep(step: Step<unknown>, context: RunContext<unknown>, redactor: JsonRedactor): string[] {
  try {
    return step.describe(context).map(redactor.text);
  } catch (error) {
    return [`(could not describe this step: ${redactor.text(describeError(error))})`];
  }
}

export function planOf(procedure: Procedure, context: RunContext<unknown>, redactor: JsonRedactor): PlanStep[] {
  return procedure.steps.map((step) => ({
    id: step.id,
    title: step.title,
    describe: describeStep(step, context, redactor),
    ...(step.irreversible === undefined ? {} : { irreversible: step.irreversible }),
    undoable: step.undo !== undefined,
  }));
}

/**
 * Runs a check; one that throws is a failed check whose detail is the error. An unverified
 * result carries the check's `unverifiedIsSafe` as `safe`; it is never `ok`.
 */
export async function runCheck(check: Check<unknown>, context: RunContext<unknown>, redactor: JsonRedactor): Promise<Omit<CheckRecord, 'name'>> {
  try {
    // A check is a read-only probe, so an interrupt need not wait for it: one stuck on a server
    // that never answers (a hung S3) would otherwise keep SIGTERM waiting for ever.
    const result: CheckResult = await untilAborted(check.run(context), context.signal);
    const unverified = result.unverified === true;
    return {
      ok: result.ok && !unverified,
      ...(unverified ? { unverified: true } : {}),
      ...(unverified && (result.safe ?? check.unverifiedIsSafe) !== undefined ? { safe: redactor.text(result.safe ?? check.unverifiedIsSafe ?? '') } : {}),
      detail: redactor.text(result.detail),
      ...(result.remedy === undefined ? {} : { remedy: redactor.text(result.remedy) }),
    };
  } catch (error) {
    return { ok: false, detail: `could not check: ${redactor.text(describeError(error))}` };
  }
}

/** `work`, or a rejection with the signal's reason as soon as `signal` aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  });
}

export function errorInfo(error: unknown, redactor: JsonRedactor, fallback: ErrorCode): ErrorInfo {
  if (isShipError(error)) return { code: error.code, message: redactor.text(error.message) };
  return { code: fallback, message: redactor.text(describeError(error)) };
}

export class Session {
  readonly outputs: Record<string, JsonObject> = {};
  readonly entries: JournalEntry[];
  readonly database: LazyDatabase;
  private writer: JournalWriter | undefined;
  private readonly mirror: JournalMirror;
  private locks: HeldLocks | undefined;
  private infrastructure: Database | undefined;
  private finishing = false;
  private opened = false;

  readonly engine: Engine;
  readonly procedure: Procedure;
  readonly runId: string;
  readonly params: unknown;
  readonly mode: AttemptMode;

  constructor(engine: Engine, procedure: Procedure, runId: string, params: unknown, mode: AttemptMode, existing: readonly JournalEntry[] = []) {
    this.engine = engine;
    this.procedure = procedure;
    this.runId = runId;
    this.params = params;
    this.mode = mode;
    this.entries = [...existing];
    this.database = new LazyDatabase(() => engine.openDatabase(engine.config, engine.logger));
    this.mirror = new JournalMirror(() => (procedure.replacesDatabase && !this.finishing ? undefined : this.database.current()), engine.logger);
    const record = existing.length > 0 ? summarizeRun(existing) : undefined;
    for (const step of record?.steps ?? []) if (step.status === 'done' && step.output) this.outputs[step.id] = step.output;
  }

  /**
   * Connects to a real PostgreSQL server for advisory locks and the journal mirror. An
   * unreachable database is not an error here: the lock file and journal file suffice,
   * and prerequisites will say so if the procedure needs the database.
   */
  async openInfrastructure(): Promise<void> {
    if (this.engine.config.databaseUrl === undefined || this.procedure.replacesDatabase) return;
    try {
      const database = await this.database.get();
      await database.pool.query('SELECT 1');
      this.infrastructure = database;
    } catch (error) {
      this.mirror.pause();
      this.engine.logger.warn({ err: describeError(error) }, 'database unreachable: using lock files only; the journal will not be mirrored');
    }
  }

  async acquire(resources: readonly string[], wait: boolean): Promise<HeldLocks> {
    this.locks = await acquireLocks({
      stateDir: this.engine.config.stateDir,
      resources,
      runId: this.runId,
      operator: this.engine.config.operator,
      database: this.infrastructure,
      wait,
      signal: this.engine.signal,
      logger: this.engine.logger,
      now: this.engine.now,
    });
    return this.locks;
  }

  /**
   * Creates the journal of a new run and records who is running it where. `personal` (the
   * values of parameters marked personal) goes to the run's private record, never the journal.
   */
  create(paramsJson: JsonObject, resources: readonly string[], personal: Readonly<Record<string, string>>): void {
    const redacted = this.engine.redactor.objectWithPaths(paramsJson);
    const context = this.context(this.engine.signal, undefined);
    this.writer = JournalWriter.create(this.engine.config.stateDir, this.runId, this.engine.now);
    const personalParams = Object.keys(personal);
    if (personalParams.length > 0) writePersonalRecord(this.engine.config.stateDir, this.runId, personal);
    const procedure = this.procedure;
    this.write({
      type: 'run.created',
      runId: this.runId,
      procedure: {
        id: procedure.id,
        command: procedure.command,
        title: procedure.title,
        risk: procedure.risk,
        issueType: procedure.issueType,
        runbookSection: procedure.runbookSection,
      },
      operator: this.engine.config.operator,
      params: redacted.value,
      redactedParams: redacted.redactedPaths,
      ...(personalParams.length > 0 ? { personalParams } : {}),
      locks: [...resources],
      plan: planOf(procedure, context, this.engine.redactor),
    });
    this.beginAttempt(resources);
  }

  /** Appends to an existing run's journal (resume, rollback). */
  reopen(resources: readonly string[]): void {
    const lastSeq = this.entries.reduce((max, entry) => Math.max(max, entry.seq), 0);
    this.writer = JournalWriter.append(this.engine.config.stateDir, this.runId, lastSeq, this.engine.now);
    this.beginAttempt(resources);
  }

  private beginAttempt(resources: readonly string[]): void {
    this.opened = true;
    const me = currentProcess();
    this.write({
      type: 'attempt.started',
      mode: this.mode,
      operator: this.engine.config.operator,
      pid: me.pid,
      host: me.host,
      ...(me.processStart === undefined ? {} : { processStart: me.processStart }),
    });
    if (resources.length > 0) this.write({ type: 'lock.acquired', resources: [...resources], advisory: this.locks?.advisory ?? false });
    const record = this.record();
    this.engine.observer.begin({
      runId: this.runId,
      mode: this.mode,
      command: this.procedure.command,
      title: this.procedure.title,
      steps: record.steps.map((step) => ({ id: step.id, title: step.title, status: step.status, durationMs: step.durationMs })),
    });
  }

  /** The journal was created or reopened by this attempt (it stays true after close). */
  get started(): boolean {
    return this.opened;
  }

  write(event: JournalEvent): JournalEntry {
    if (this.writer === undefined) throw new ShipError('SHIP_ERR_INTERNAL', 'The journal was written before it was opened.');
    const entry = this.writer.write(this.redact(event));
    this.entries.push(entry);
    try {
      this.engine.observer.event(entry);
    } catch (error) {
      this.engine.logger.warn({ err: describeError(error) }, 'the run display failed; the run goes on');
    }
    this.mirror.push(this.entries);
    return entry;
  }

  record(): RunRecord {
    const record = summarizeRun(this.entries);
    if (record === undefined) throw new ShipError('SHIP_ERR_INTERNAL', `The journal of run ${this.runId} has no run.created event.`);
    return record;
  }

  context(signal: AbortSignal, step: string | undefined): RunContext<unknown> {
    return buildContext({
      engine: this.engine,
      runId: this.runId,
      params: this.params,
      outputs: this.outputs,
      database: this.database,
      signal,
      step,
      note: (noteStep, message, data) => {
        this.write({ type: 'note', ...(noteStep === undefined ? {} : { step: noteStep }), message, ...(data === undefined ? {} : { data }) });
      },
    });
  }

  /** Runs and journals a step, returning its (unredacted) output or the error. */
  async runStep(step: Step<unknown>, signal: AbortSignal): Promise<{ ok: true } | { ok: false; error: ErrorInfo }> {
    const context = this.context(signal, step.id);
    this.write({ type: 'step.started', step: step.id, title: step.title, describe: describeStep(step, context, this.engine.redactor) });
    const started = performance.now();
    try {
      const result = await step.run(context);
      const output = toJsonObject(result ?? {}, `step ${step.id} returned`);
      // What later readers will parse from the journal must parse now (the JSON form, as they will see it).
      if (step.output !== undefined) parseOutput({ id: step.id, output: step.output }, output, `as its run returned it in run ${this.runId}`);
      this.outputs[step.id] = output;
      this.write({ type: 'step.done', step: step.id, durationMs: elapsed(started), output });
      return { ok: true };
    } catch (error) {
      const info = signal.aborted
        ? { code: 'SHIP_ERR_STEP_FAILED', message: `interrupted by the operator (${this.engine.redactor.text(describeError(error))})` }
        : errorInfo(error, this.engine.redactor, 'SHIP_ERR_STEP_FAILED');
      this.write({ type: 'step.failed', step: step.id, durationMs: elapsed(started), error: info });
      return { ok: false, error: info };
    }
  }

  /** Records a step the parameters did not ask for as skipped, with what would have asked for it. */
  skipStep(step: Step<unknown>, reason: string): void {
    this.write({ type: 'step.skipped', step: step.id, reason });
  }

  end(state: EndState, outcome: ReportOutcome): ReportOutcome {
    this.write({
      type: 'run.ended',
      state,
      exitCode: outcome.exitCode,
      ...(outcome.error === undefined ? {} : { error: outcome.error }),
      ...(outcome.next === undefined ? {} : { next: outcome.next }),
    });
    return outcome;
  }

  /**
   * Tells people; never fails the run. Medium-risk runs and riskier are announced throughout,
   * and so are procedures that name their own channels (the runbook's "Alerts:" lines, e.g.
   * backups → #ops-backups). Any run that changes things is heard of when it fails: a failed
   * nightly backup must not go unnoticed because backups are low risk.
   */
  async announce(
    kind: 'started' | 'succeeded' | 'unverified' | 'failed' | 'needs-attention' | 'approval-requested' | 'rolled-back',
    text: string,
  ): Promise<void> {
    const procedure = this.procedure;
    const failure = kind === 'failed' || kind === 'needs-attention' || kind === 'rolled-back' || kind === 'unverified';
    const announced = needsConfirmation(procedure.risk) || procedure.alertChannels !== undefined || (failure && procedure.risk !== 'none');
    if (!announced) return;
    const record = this.record();
    const severity: Alert['severity'] =
      kind === 'needs-attention' ? 'critical' : kind === 'failed' ? 'error' : kind === 'approval-requested' || kind === 'unverified' ? 'warning' : 'info';
    const page = kind === 'needs-attention' || (kind === 'failed' && needsApproval(procedure.risk)) ? 'trigger' : undefined;
    const titles = {
      started: 'started',
      succeeded: 'succeeded',
      unverified: 'finished UNVERIFIED (a check could not be made)',
      failed: 'failed',
      'needs-attention': 'FAILED and needs a human',
      'approval-requested': 'needs approval',
      'rolled-back': 'rolled back',
    } as const;
    const alert: Alert = {
      issueType: procedure.issueType,
      severity,
      event: `procedure.${kind}`,
      title: `${procedure.title} ${titles[kind]} (run ${this.runId})`,
      text: this.engine.redactor.text(text),
      ...(procedure.alertChannels === undefined ? {} : { channelHints: [...procedure.alertChannels] }),
      ...(page === undefined ? {} : { page, dedupKey: pageKey(this.runId) }),
      details: { runId: this.runId, procedure: procedure.id, risk: procedure.risk, operator: this.engine.config.operator },
    };
    await this.sendAlert(alert);
    // A page from an earlier attempt (needs-attention) is closed once things are put right.
    if ((kind === 'succeeded' || kind === 'rolled-back') && record.openPage !== undefined) {
      await this.sendAlert({ ...alert, page: 'resolve', dedupKey: record.openPage });
    }
  }

  private async sendAlert(alert: Alert): Promise<void> {
    await sendSafely(this.engine.alerts, alert, this.engine.logger);
    this.write({
      type: 'alert',
      event: alert.event,
      severity: alert.severity,
      ...(alert.page === undefined ? {} : { page: alert.page }),
      ...(alert.dedupKey === undefined ? {} : { dedupKey: alert.dedupKey }),
    });
  }

  /** Releases everything, in the order that frees other runs soonest. */
  async close(): Promise<void> {
    this.finishing = true;
    try {
      this.engine.observer.end();
    } catch {
      // A display problem must not keep locks held.
    }
    await this.locks?.release().catch((error: unknown) => this.engine.logger.warn({ err: describeError(error) }, 'could not release a lock'));
    this.locks = undefined;
    if (this.started && this.procedure.replacesDatabase && this.engine.config.databaseUrl !== undefined) {
      // The runner kept away from the database during the steps; now mirror into whatever is there.
      await this.database.get().catch(() => undefined);
    }
    if (this.started) await this.mirror.flush(this.entries);
    await this.database.close();
    this.writer?.close();
    this.writer = undefined;
  }

  private redact(event: JournalEvent): JournalEvent {
    const r = this.engine.redactor;
    switch (event.type) {
      case 'run.created':
        return { ...event, plan: event.plan.map((step) => ({ ...step, describe: step.describe.map(r.text) })) };
      case 'step.started':
        return { ...event, describe: event.describe.map(r.text) };
      case 'step.done':
        return { ...event, output: r.object(event.output) };
      case 'step.failed':
      case 'step.undo.failed':
        return { ...event, error: { code: event.error.code, message: r.text(event.error.message) } };
      case 'note':
        return { ...event, message: r.text(event.message), ...(event.data === undefined ? {} : { data: r.object(event.data) }) };
      case 'prerequisite':
      case 'verification':
        return { ...event, detail: r.text(event.detail), ...(event.remedy === undefined ? {} : { remedy: r.text(event.remedy) }) };
      case 'run.ended':
        return event.error === undefined ? event : { ...event, error: { code: event.error.code, message: r.text(event.error.message) } };
      case 'rollback.started':
        return { ...event, reason: r.text(event.reason) };
      default:
        return event;
    }
  }
}

export function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

/** Round-trips a value through JSON so what runs is exactly what the journal can restore. */
export function toJsonObject(value: unknown, what: string): JsonObject {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new ShipError('SHIP_ERR_INTERNAL', `${what} a value that cannot be written as JSON (${describeError(error)}).`);
  }
  const parsed = jsonObjectSchema.safeParse(text === undefined ? undefined : JSON.parse(text));
  if (!parsed.success) throw new ShipError('SHIP_ERR_INTERNAL', `${what} something other than a JSON object.`);
  return parsed.data;
}
