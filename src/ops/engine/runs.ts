/**
 * Reading runs back from their journals: one, or all of them for `shipshape runs`.
 */
import { ShipError } from '../../errors.ts';
import { listRunIds, readJournal } from './journal.ts';
import { checkRunId } from './run-id.ts';
import { summarizeRun, type RunRecord } from './run-record.ts';

export async function loadRun(stateDir: string, runId: string): Promise<RunRecord> {
  const { entries, unreadableLines } = await readJournal(stateDir, checkRunId(runId));
  const record = summarizeRun(entries, unreadableLines);
  if (record === undefined) {
    throw new ShipError(
      'SHIP_ERR_RUN_NOT_FOUND',
      `The journal of run ${runId} has no readable start event, so the run cannot be shown or continued. Inspect the file under STATE_DIR/runs by hand.`,
    );
  }
  return record;
}

/** Every run with a readable journal, newest first. */
export async function listRuns(stateDir: string, limit = Number.POSITIVE_INFINITY): Promise<RunRecord[]> {
  const records: RunRecord[] = [];
  for (const runId of await listRunIds(stateDir)) {
    if (records.length >= limit) break;
    const { entries, unreadableLines } = await readJournal(stateDir, runId);
    const record = summarizeRun(entries, unreadableLines);
    if (record) records.push(record);
  }
  return records;
}
