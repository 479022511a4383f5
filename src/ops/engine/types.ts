/**
 * The shape of a runbook procedure as code.
 *
 * A procedure file reads top to bottom like its runbook section: what it is and when to
 * use it, its parameters, the prerequisites that must hold before anything changes, the
 * steps (each with the exact SQL/command/object it touches and, where possible, its
 * undo), and the verification that proves it worked. The runner (runner.ts) owns
 * everything around that: gates, locks, the journal, rollback, resume and output.
 */
import type { z } from 'zod';
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
   * run is resumed or rolled back by another process, which is why they are JSON.
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

/** Identity helper that keeps a procedure's parameter type flowing into its steps. */
export function defineProcedure<S extends z.ZodType>(procedure: Procedure<S>): Procedure<S> {
  return procedure;
}
