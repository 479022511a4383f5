/**
 * The run journal: one JSON line per event in `STATE_DIR/runs/<run-id>.jsonl`, written and
 * fsync'd before the runner moves on.
 *
 * It lives outside the database on purpose: a restore replaces the database, and the
 * record of what the restore did (and how to undo it) must survive that. The database
 * mirror (mirror.ts) is a convenience copy; this file is the truth that `runs`,
 * `runs resume`, `runs rollback` and `approve` read.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { errnoCode, ShipError } from '../../errors.ts';
import { checkRunId, isRunId } from './run-id.ts';
import { jsonObjectSchema } from './json.ts';
import { issueTypes, risks } from './types.ts';

const jsonObject = jsonObjectSchema;

const errorInfo = z.object({ code: z.string(), message: z.string() });
export type ErrorInfo = z.infer<typeof errorInfo>;

const checkFields = {
  name: z.string(),
  ok: z.boolean(),
  /** The check could not be made (`detail` says why); `ok` is false. */
  unverified: z.boolean().optional(),
  /** For an unverified check: why the procedure says that is safe (the run may still succeed). */
  safe: z.string().optional(),
  detail: z.string(),
  remedy: z.string().optional(),
};

const planStep = z.object({
  id: z.string(),
  title: z.string(),
  describe: z.array(z.string()),
  irreversible: z.string().optional(),
  undoable: z.boolean(),
});
export type PlanStep = z.infer<typeof planStep>;

export const attemptModes = ['run', 'resume', 'rollback'] as const;
export type AttemptMode = (typeof attemptModes)[number];

/** How a process's work on a run ended; `awaiting-approval` is the one that is not final. */
export const endStates = ['succeeded', 'unverified', 'failed', 'rolled-back', 'needs-attention', 'awaiting-approval'] as const;
export type EndState = (typeof endStates)[number];

const envelope = { seq: z.number().int(), at: z.string() };

function buildJournalEntrySchema() {
  return z.discriminatedUnion('type', [
    z.object({
      ...envelope,
      type: z.literal('run.created'),
      runId: z.string(),
      procedure: z.object({
        id: z.string(),
        command: z.string(),
        title: z.string(),
        risk: z.enum(risks),
        issueType: z.enum(issueTypes),
        runbookSection: z.string(),
      }),
      operator: z.string(),
      params: jsonObject,
      /** Parameter fields replaced in `params` because they looked secret; resume refuses such runs. */
      redactedParams: z.array(z.string()),
      /** Parameter fields marked personal: `params` holds a placeholder, the run's private record the value (personal.ts). */
      personalParams: z.array(z.string()).optional(),
      locks: z.array(z.string()),
      plan: z.array(planStep),
    }),
    z.object({
      ...envelope,
      type: z.literal('attempt.started'),
      mode: z.enum(attemptModes),
      operator: z.string(),
      pid: z.number().int(),
      host: z.string(),
      processStart: z.string().optional(),
    }),
    z.object({ ...envelope, type: z.literal('lock.acquired'), resources: z.array(z.string()), advisory: z.boolean() }),
    z.object({ ...envelope, type: z.literal('prerequisite'), ...checkFields }),
    z.object({
      ...envelope,
      type: z.literal('gate'),
      gate: z.enum(['confirmation', 'irreversible', 'approval']),
      outcome: z.enum(['passed', 'refused', 'awaiting']),
      how: z.enum(['flag', 'prompt', 'approval', 'inline']).optional(),
      by: z.string().optional(),
      detail: z.string(),
    }),
    z.object({
      ...envelope,
      type: z.literal('approval.granted'),
      by: z.string(),
      expiresAt: z.string(),
      how: z.enum(['command', 'inline']),
    }),
    z.object({ ...envelope, type: z.literal('step.started'), step: z.string(), title: z.string(), describe: z.array(z.string()) }),
    z.object({ ...envelope, type: z.literal('step.done'), step: z.string(), durationMs: z.number(), output: jsonObject }),
    z.object({ ...envelope, type: z.literal('step.failed'), step: z.string(), durationMs: z.number(), error: errorInfo }),
    /** A step that runs only when asked, not asked this time; `reason` is what would have asked for it. */
    z.object({ ...envelope, type: z.literal('step.skipped'), step: z.string(), reason: z.string() }),
    z.object({ ...envelope, type: z.literal('note'), step: z.string().optional(), message: z.string(), data: jsonObject.optional() }),
    z.object({ ...envelope, type: z.literal('rollback.started'), reason: z.string() }),
    z.object({ ...envelope, type: z.literal('step.undo.started'), step: z.string() }),
    z.object({
      ...envelope,
      type: z.literal('step.undone'),
      step: z.string(),
      durationMs: z.number(),
      how: z.enum(['undo', 'undo-interrupted', 'nothing-to-undo']),
    }),
    z.object({ ...envelope, type: z.literal('step.undo.failed'), step: z.string(), durationMs: z.number(), error: errorInfo }),
    z.object({ ...envelope, type: z.literal('step.undo.impossible'), step: z.string(), reason: z.string() }),
    z.object({ ...envelope, type: z.literal('verification'), ...checkFields }),
    z.object({
      ...envelope,
      type: z.literal('alert'),
      event: z.string(),
      severity: z.enum(['info', 'warning', 'error', 'critical']),
      page: z.enum(['trigger', 'resolve']).optional(),
      dedupKey: z.string().optional(),
    }),
    z.object({
      ...envelope,
      type: z.literal('run.ended'),
      state: z.enum(endStates),
      exitCode: z.number().int(),
      error: errorInfo.optional(),
      next: z.string().optional(),
    }),
  ]);
}

let builtJournalEntrySchema: ReturnType<typeof buildJournalEntrySchema> | undefined;
/**
 * Built on the first journal read, not at import: `shipshape runs` on a STATE_DIR without runs,
 * and every command that only writes journals, never pays for constructing it.
 */
export const journalEntrySchema = () => (builtJournalEntrySchema ??= buildJournalEntrySchema());

export type JournalEntry = z.infer<ReturnType<typeof buildJournalEntrySchema>>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event as the runner writes it; the journal adds `seq` and `at`. */
export type JournalEvent = DistributiveOmit<JournalEntry, 'seq' | 'at'>;
export type JournalEntryOf<T extends JournalEntry['type']> = Extract<JournalEntry, { type: T }>;

export function runsDirectory(stateDir: string): string {
  return path.join(stateDir, 'runs');
}

export function journalPath(stateDir: string, runId: string): string {
  return path.join(runsDirectory(stateDir), `${checkRunId(runId)}.jsonl`);
}

/** An open journal file. Appends are synchronous so an event is on disk before the next action. */
export class JournalWriter {
  private seq: number;

  private readonly fd: number;
  private readonly now: () => Date;
  /** Held from opening an existing journal until the first event is on disk (see `append`). */
  private claim: JournalClaim | undefined;

  private constructor(fd: number, lastSeq: number, now: () => Date, claim?: JournalClaim) {
    this.fd = fd;
    this.now = now;
    this.seq = lastSeq;
    this.claim = claim;
  }

  /** Creates the journal of a new run; fails if the file exists (run ids are never reused). */
  static create(stateDir: string, runId: string, now: () => Date): JournalWriter {
    const dir = runsDirectory(stateDir);
    mkdirSync(dir, { recursive: true });
    const fd = openSync(journalPath(stateDir, runId), 'wx', 0o660);
    syncDirectory(dir);
    return new JournalWriter(fd, 0, now);
  }

  /**
   * Opens an existing journal to append to it — only if nobody appended since the caller read
   * it (its last event is still `lastSeq`); otherwise SHIP_ERR_RUN_CHANGED and nothing is
   * written. Two operators deciding on one run at once (approve and refuse, a resume and a
   * refuse, two resumes) each act on the state they read, so only one of them may write on
   * top of it. The check and the first event happen under the journal's claim, so whoever
   * comes second sees that event and is refused.
   */
  static append(stateDir: string, runId: string, lastSeq: number, now: () => Date): JournalWriter {
    const file = journalPath(stateDir, runId);
    const claim = JournalClaim.take(file);
    try {
      const current = lastSeqIn(readFileSync(file, 'utf8'));
      if (current !== lastSeq) {
        throw new ShipError(
          'SHIP_ERR_RUN_CHANGED',
          `Run ${runId} changed while this command was preparing (another operator or process wrote event ${current}; this command read up to ${lastSeq}). Nothing was written. \`shipshape runs show ${runId}\` shows what happened; run the command again if it still applies.`,
        );
      }
      return new JournalWriter(openSync(file, 'a'), lastSeq, now, claim);
    } catch (error) {
      claim.release();
      throw error;
    }
  }

  write(event: JournalEvent): JournalEntry {
    this.seq += 1;
    const entry: JournalEntry = { ...event, seq: this.seq, at: this.now().toISOString() };
    writeSync(this.fd, `${JSON.stringify(entry)}\n`);
    fsyncSync(this.fd);
    this.releaseClaim();
    return entry;
  }

  close(): void {
    this.releaseClaim();
    closeSync(this.fd);
  }

  private releaseClaim(): void {
    this.claim?.release();
    this.claim = undefined;
  }
}

/**
 * `<journal>.claim`, created exclusively around "check the last event, write the next one" —
 * a few milliseconds. One left behind by a process killed in that window is stale after
 * CLAIM_STALE_MS and taken over.
 */
class JournalClaim {
  private readonly file: string;

  private constructor(file: string) {
    this.file = file;
  }

  static take(journal: string): JournalClaim {
    const file = `${journal}.claim`;
    for (;;) {
      try {
        closeSync(openSync(file, 'wx', 0o600));
        return new JournalClaim(file);
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw error;
      }
      if (claimAgeMs(file) > CLAIM_STALE_MS) {
        unlinkQuietly(file);
        continue;
      }
      // A synchronous pause: the journal is written synchronously, and the holder needs only a moment.
      Atomics.wait(CLAIM_PAUSE, 0, 0, 5);
    }
  }

  release(): void {
    unlinkQuietly(this.file);
  }
}

const CLAIM_STALE_MS = 10_000;
const CLAIM_PAUSE = new Int32Array(new SharedArrayBuffer(4));

function claimAgeMs(file: string): number {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return Number.POSITIVE_INFINITY; // gone already: try again at once
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
}

function lastSeqIn(text: string): number {
  return parseJournal(text).entries.reduce((max, entry) => Math.max(max, entry.seq), 0);
}

function syncDirectory(dir: string): void {
  // Makes the new file's directory entry durable too; some platforms cannot fsync a directory.
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Best effort.
  }
}

export interface JournalContents {
  readonly entries: JournalEntry[];
  /** Lines that did not parse: a torn last line after a crash, or events from a newer Shipshape. */
  readonly unreadableLines: number;
}

export async function readJournal(stateDir: string, runId: string): Promise<JournalContents> {
  let text: string;
  try {
    text = await readFile(journalPath(stateDir, runId), 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') {
      throw new ShipError(
        'SHIP_ERR_RUN_NOT_FOUND',
        `There is no run ${runId} in ${runsDirectory(stateDir)}. Run \`shipshape runs\` to list runs (check STATE_DIR if the list is empty).`,
      );
    }
    throw error;
  }
  return parseJournal(text);
}

export function parseJournal(text: string): JournalContents {
  const entries: JournalEntry[] = [];
  let unreadableLines = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      unreadableLines += 1;
      continue;
    }
    const parsed = journalEntrySchema().safeParse(value);
    if (parsed.success) entries.push(parsed.data);
    else unreadableLines += 1;
  }
  return { entries, unreadableLines };
}

/** Every run id with a journal, newest first. */
export async function listRunIds(stateDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(runsDirectory(stateDir));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
  return names
    .filter((name) => name.endsWith('.jsonl'))
    .map((name) => name.slice(0, -'.jsonl'.length))
    .filter(isRunId)
    .sort()
    .reverse();
}
