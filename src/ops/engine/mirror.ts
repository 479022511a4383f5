/**
 * A copy of run journals in the database (`shipshape.runs`, `shipshape.run_events`), for
 * dashboards and for operators on other hosts. Best effort by design: the journal file is
 * the record, and a mirror that cannot write (database down, migration 0002 not applied,
 * database just replaced by a restore) logs one warning and never touches the run.
 *
 * Inserts are idempotent (`ON CONFLICT DO NOTHING` on run id + seq), so the final sync can
 * resend every event: that is what repopulates the mirror after a restore replaced it.
 */
import type { Database } from '../../db/index.ts';
import { describeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { JournalEntry } from './journal.ts';
import { summarizeRun } from './run-record.ts';

export class JournalMirror {
  private mirroredSeq = 0;
  private warned = false;
  /** After a failure, only the final flush tries again: each try may wait a full connect timeout. */
  private paused = false;
  private chain: Promise<void> = Promise.resolve();

  private readonly database: () => Database | undefined;
  private readonly logger: Logger;

  constructor(database: () => Database | undefined, logger: Logger) {
    this.database = database;
    this.logger = logger;
  }

  /** Queues mirroring of the events not yet mirrored; returns at once. */
  push(entries: readonly JournalEntry[]): void {
    if (this.paused) return;
    const snapshot = [...entries];
    this.chain = this.chain.then(() => this.sync(snapshot, false));
  }

  /** Resends everything (idempotently) and waits for all queued work. */
  async flush(entries: readonly JournalEntry[]): Promise<void> {
    const snapshot = [...entries];
    this.chain = this.chain.then(() => this.sync(snapshot, true));
    await this.chain;
  }

  /** Skips per-event mirroring (the database is known to be unreachable); the final flush still tries. */
  pause(): void {
    this.paused = true;
  }

  private async sync(entries: JournalEntry[], everything: boolean): Promise<void> {
    if (this.paused && !everything) return;
    const database = this.database();
    if (database === undefined) return;
    const record = summarizeRun(entries);
    if (record === undefined) return;
    const pending = everything ? entries : entries.filter((entry) => entry.seq > this.mirroredSeq);
    if (pending.length === 0) return;
    const created = record.created;
    try {
      await database.pool.query(
        `WITH run AS (
           INSERT INTO shipshape.runs (id, procedure, command, risk, operator, params, state, started_at, ended_at, exit_code, updated_at)
           VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::jsonb, $7::text, $8::timestamptz, $9::timestamptz, $10::integer, now())
           ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, ended_at = EXCLUDED.ended_at,
             exit_code = EXCLUDED.exit_code, updated_at = now()
           RETURNING id
         )
         INSERT INTO shipshape.run_events (run_id, seq, at, type, data)
         SELECT run.id, e.seq, e.at, e.type, e.data
           FROM run, jsonb_to_recordset($11::jsonb) AS e(seq integer, at timestamptz, type text, data jsonb)
         ON CONFLICT (run_id, seq) DO NOTHING`,
        [
          record.runId,
          created.procedure.id,
          created.procedure.command,
          created.procedure.risk,
          created.operator,
          JSON.stringify(created.params),
          // A mirror cannot tell a live process from a dead one; it shows the last thing written.
          record.state === 'interrupted' ? 'running' : record.state,
          created.at,
          record.endedAt ?? null,
          record.lastEnd && record.endedAt ? record.lastEnd.exitCode : null,
          JSON.stringify(pending.map((entry) => ({ seq: entry.seq, at: entry.at, type: entry.type, data: entry }))),
        ],
      );
      this.mirroredSeq = Math.max(this.mirroredSeq, ...pending.map((entry) => entry.seq));
    } catch (error) {
      this.paused = true;
      if (!this.warned) {
        this.warned = true;
        this.logger.warn(
          { err: describeError(error), runId: record.runId },
          'could not mirror the run journal into the database; the journal file is complete (apply migrations to enable the mirror)',
        );
      }
    }
  }
}
