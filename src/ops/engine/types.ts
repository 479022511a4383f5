/**
 * The shape of a runbook procedure as code.
 *
 * A procedure file reads top to bottom like its runbook section: what it is and when to
 * use it, its parameters, the prerequisites that must hold before anything changes, the
 * steps (each with the exact SQL/command/object it touches and, where possible, its
 * undo), and the verification that proves it worked. The runner (runner.ts) owns
 * everything around that: gates, locks, the journal, rollback, resume and output.
 *
 * Step outputs are a typed contract. A step whose output a later step, a check or its own
 * `undo` reads declares it: `output: z.object({...})`, the zod schema of what `run` returns.
 * Build such a step with `stepFor<Params>()` so that `run` is type-checked against the
 * schema (and `undo` gets the parsed output); read it with `outputOf(context, step)`
 * (undefined until the step has completed) or `requireOutput(context, step)`. Both parse
 * the journaled JSON with the same schema: a resumed or rolled-back run reads outputs that
 * another version of the code may have written, and one that no longer parses is a
 * ShipError naming the step, never a silently wrong value. The runner also refuses a `run`
 * result its schema does not accept, before journaling it. `context.outputs` (by step id,
 * untyped) remains for steps that declare nothing.
 */
import type { z } from 'zod';
import { ShipError } from '../../errors.ts';
import type { IssueType } from '../../adapters/alerts/types.ts';
import type { AppProfile } from '../../app-profile.ts';
import type { Config } from '../../config/index.ts';
import type { Database } from '../../db/index.ts';
import type { Logger } from '../../log.ts';

export const risks = ['none', 'low', 'medium', 'high', 'critical'] as const;
/** none/low run at once; medium asks for confirmation; high/critical also need a second operator's approval. */
export type Risk = (typeof risks)[number];

/** The runbook's escalation matrix rows; a procedure's decides who hears about it. */
export { issueTypes, type IssueType } from '../../adapters/alerts/types.ts';

/** Anything that survives a round trip through the JSON journal. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** What a procedure's code gets from the runner. */
export interface RunContext<P> {
  readonly runId: string;
  /** Validated parameters (as recorded in the journal, so a resumed run sees the same ones). */
  readonly params: P;
  /** Who is running it: SHIPSHAPE_OPERATOR, else the OS user. */
  readonly operator: string;
  readonly config: Config;
  readonly profile: AppProfile;
  readonly logger: Logger;
  /**
   * Outputs of the steps completed so far, by step id. Restored from the journal when a
   * run is resumed or rolled back by another process, which is why they are JSON. Prefer
   * `outputOf(context, step)` for a step that declares `output`: it is typed and parsed.
   */
  readonly outputs: Readonly<Record<string, JsonObject>>;
  /** The application database, opened on first use and closed by the runner. */
  database(): Promise<Database>;
  /** A line for the operator and the journal ("fetched 12.4 MB in 2.1 s"). Never pass secrets. */
  note(message: string, data?: JsonObject): void;
  /** Byte progress for transfers; drives the progress bar on a terminal. */
  progress(update: { readonly bytes: number; readonly totalBytes?: number | undefined; readonly label?: string }): void;
  /** Aborted when the operator interrupts the run (first Ctrl-C). */
  readonly signal: AbortSignal;
}

export interface CheckResult {
  /** It was checked and holds. False both when it was checked and does not hold, and when it could not be checked. */
  readonly ok: boolean;
  /**
   * The check could not be made (what it looks at did not answer), so it neither passed nor
   * failed: `detail` says why. Never shown as passed; the run goes on (a prerequisite) or is
   * kept (a verification), and ends `unverified` with exit 5 unless the check says why that
   * is safe (`Check.unverifiedIsSafe`). Build it with `unverified()`.
   */
  readonly unverified?: boolean | undefined;
  /**
   * For an unverified result: why not checking is safe this time (the run may still succeed),
   * when that depends on the case; `Check.unverifiedIsSafe` says it for every case.
   */
  readonly safe?: string | undefined;
  /** What was found, e.g. "pg_dump 15.20 for server 15.20". */
  readonly detail: string;
  /** When not ok: what to do about it, e.g. "apt-get install postgresql-client-16"; when unverified, how to check by hand. */
  readonly remedy?: string | undefined;
}

/**
 * A check that could not be made: `why` it could not, and how to check by hand. With
 * `safe`, why the run may still succeed without it (printed with the result).
 */
export function unverified(why: string, howToCheck?: string, safe?: string): CheckResult {
  return {
    ok: false,
    unverified: true,
    detail: why,
    ...(howToCheck === undefined ? {} : { remedy: howToCheck }),
    ...(safe === undefined ? {} : { safe }),
  };
}

/** A prerequisite or a verification: it looks, it never changes anything. */
export interface Check<P> {
  readonly name: string;
  run(context: RunContext<P>): Promise<CheckResult>;
  /**
   * Why a run may still end `succeeded` (exit 0) when this check cannot be made. Without it,
   * an unverified check ends the run `unverified` (exit 5). It is printed with the result.
   */
  readonly unverifiedIsSafe?: string;
}

export interface Step<P> {
  /** Stable id, kebab-case; the journal refers to steps by it. */
  readonly id: string;
  /** The runbook's words for the step ("Terminate active connections"). */
  readonly title: string;
  /**
   * The zod schema of what `run` returns, for a step whose output is read elsewhere (a later
   * step, a check, its `undo`). Declare it through `stepFor<Params>()`, which type-checks
   * `run` and `undo` against it; the runner refuses a `run` result it does not accept.
   */
  readonly output?: z.ZodType;
  /**
   * The exact SQL, command lines or objects the step will touch, for `--dry-run` and the
   * journal. Must not do I/O beyond reading; must not reveal secrets.
   */
  describe(context: RunContext<P>): string[];
  /**
   * Does the step. What it returns is journaled and handed to `undo` and later steps. A step
   * that checks as it goes and could not make its check (the API did not answer) returns
   * `unverified: '<why>'` in its output: it is shown with ? and "unverified: <why>", never ✓,
   * and the run ends `unverified` (exit 5).
   */
  run(context: RunContext<P>): Promise<JsonObject | void>;
  /**
   * Puts back what `run` changed, given what `run` returned. A step without `undo` that
   * changes something must say so with `irreversible`.
   */
  undo?(context: RunContext<P>, output: JsonObject): Promise<void>;
  /** Why this step cannot be undone; the runner asks for an explicit confirmation of it. */
  readonly irreversible?: string;
  /**
   * Puts back whatever `run` may have changed when the process died before `run` returned
   * (so there is no output to hand to `undo`). Must be safe whether `run` got nowhere,
   * part-way or all the way. Without it, `shipshape runs rollback` of a run interrupted in
   * this step stops here and leaves the step to a human.
   */
  undoInterrupted?(context: RunContext<P>): Promise<void>;
  /**
   * For a step that runs only when asked: returns what would have asked for it (e.g.
   * "--verify-restore") when the parameters did not, and the runner records the step as
   * skipped ("not asked"), never as done. Must not do I/O.
   */
  notAsked?(context: RunContext<P>): string | undefined;
}

export interface Procedure<S extends z.ZodType = z.ZodType> {
  /** Dotted id, e.g. `db.backup`. */
  readonly id: string;
  /** How an operator types it, e.g. `db backup`. */
  readonly command: string;
  readonly title: string;
  /** The runbook section this file implements, verbatim. */
  readonly runbookSection: string;
  readonly whenToUse: string;
  readonly risk: Risk;
  /** As the runbook states it, e.g. "5-10 minutes". */
  readonly expectedDuration: string;
  readonly issueType: IssueType;
  /** Named alert channels beyond the issue type's own, e.g. `#ops-backups`. */
  readonly alertChannels?: readonly string[];
  readonly params: S;
  /**
   * Resources this run must hold exclusively, e.g. `database:<name>`. Two runs that share
   * a resource never overlap.
   */
  locks(params: z.output<S>, config: Config): string[];
  /**
   * Set when a step drops, renames or replaces the application database itself. The runner
   * then keeps no connection of its own to it (no advisory lock — the lock file alone keeps
   * runs apart — and the journal is mirrored only at the end, best effort), so nothing of
   * the runner's blocks `DROP DATABASE` or is lost with the old database.
   */
  readonly replacesDatabase?: boolean;
  /**
   * Set when a succeeded run can still be undone step by step (its undos stay valid after
   * verification), e.g. a restore that keeps the database it replaced. `shipshape runs
   * rollback` then accepts the succeeded run. Says why that is safe, for the operator.
   */
  readonly undoAfterSuccess?: string;
  readonly prerequisites: ReadonlyArray<Check<z.output<S>>>;
  readonly steps: ReadonlyArray<Step<z.output<S>>>;
  readonly verification: ReadonlyArray<Check<z.output<S>>>;
}

/** A step that declares its output: `run` returns `z.input<S>`, `undo` and readers get `z.output<S>`. */
export interface StepWithOutput<P, S extends z.ZodType> extends Omit<Step<P>, 'output' | 'run' | 'undo'> {
  readonly output: S;
  run(context: RunContext<P>): Promise<z.input<S>>;
  undo?(context: RunContext<P>, output: z.output<S>): Promise<void>;
}

/**
 * `const step = stepFor<Params>();` then `const dump = step({ id: 'dump', output: z.object({...}), ... })`:
 * checks `run` and `undo` against `output` (curried so the schema's type is inferred while
 * the parameters' type is given).
 */
export function stepFor<P>(): <S extends z.ZodType>(step: StepWithOutput<P, S>) => StepWithOutput<P, S> {
  return (step) => step;
}

/** What a reader of a step's output needs of the step: its id and its declared schema. */
export interface OutputSource<S extends z.ZodType> {
  readonly id: string;
  readonly output: S;
}

/**
 * The output of `step` in this run, parsed with the step's schema; undefined when the step
 * has not completed (not reached yet, skipped, or in a dry run). A journaled output the
 * schema no longer accepts (journaled by another version of the code) is a ShipError
 * naming the step.
 */
export function outputOf<S extends z.ZodType>(context: Pick<RunContext<unknown>, 'outputs' | 'runId'>, step: OutputSource<S>): z.output<S> | undefined {
  const journaled = context.outputs[step.id];
  return journaled === undefined ? undefined : parseOutput(step, journaled, `run ${context.runId}`);
}

/** `outputOf`, for readers that run only after `step` completed: its absence is a ShipError. */
export function requireOutput<S extends z.ZodType>(context: Pick<RunContext<unknown>, 'outputs' | 'runId'>, step: OutputSource<S>): z.output<S> {
  const output = outputOf(context, step);
  if (output === undefined)
    throw new ShipError(
      'SHIP_ERR_INTERNAL',
      `Step ${step.id} of run ${context.runId} has no output in the journal, but it is needed here; it has not completed. Start a new run of the procedure.`,
    );
  return output;
}

/** Parses `value` as `step` declares its output; `where` says whose output it is, for the error. */
export function parseOutput<S extends z.ZodType>(step: OutputSource<S>, value: unknown, where: string): z.output<S> {
  const parsed = step.output.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.length === 0 ? '(output)' : issue.path.join('.')}: ${issue.message}`).join('; ');
  throw new ShipError(
    'SHIP_ERR_INTERNAL',
    `The output of step ${step.id} (${where}) does not match what the step declares: ${problems}. It was probably journaled by another version of Shipshape; finish or roll back the run with that version, or start a new run.`,
    { details: { step: step.id } },
  );
}

/** Identity helper that keeps a procedure's parameter type flowing into its steps. */
export function defineProcedure<S extends z.ZodType>(procedure: Procedure<S>): Procedure<S> {
  return procedure;
}
