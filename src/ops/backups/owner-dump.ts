/**
 * Dumping the embedded database from a process that does not own it (a `shipshape db backup`
 * while `shipshape serve` runs, or a `shipshape worker` beside it).
 *
 * PGlite is open in exactly one process, and its pg_dump runs inside that process. So the
 * other process asks for the dump through the job queue: it sends a job to the
 * `shipshape-embedded-dump` queue, which only the owner's workers work; the owner dumps
 * (holding the embedded backend, as its own backups do) straight into the storage the asker
 * named, under the backup id the asker chose, and completes the job with the dump's facts.
 * The asker follows the job and carries on with its own run — verifying the stored copy,
 * writing the manifest — so the backup, its journal and its exit code are the asker's.
 *
 * The owner writes with its own storage credentials: both processes share STATE_DIR (that is
 * what makes one the other's guest) and, normally, their environment.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { AppProfile } from '../../app-profile.ts';
import type { Config } from '../../config/index.ts';
import type { EmbeddedDatabase } from '../../db/embedded.ts';
import type { Pool } from '../../db/pool.ts';
import { describeError, ShipError } from '../../errors.ts';
import { queueClient, queueNames } from '../../db/queue.ts';
import { liveness } from '../engine/process-identity.ts';
import type { CheckResult } from '../engine/types.ts';
import { withBackupStore } from './backup-store.ts';
import { checkBackupId } from './backup-id.ts';
import { dumpEmbedded } from './dump-embedded.ts';
import { dumpFactsSchema, dumpKey, type DumpFacts } from './manifest.ts';

const FOLLOW_POLL_MS = 500;

export const ownerDumpRequest = z.object({
  /** Chosen by the asker, so the dump lands where its run expects it. */
  backupId: z.string(),
  /** The asker's BACKUP_STORAGE_URL. */
  storageUrl: z.string(),
});
export type OwnerDumpRequest = z.infer<typeof ownerDumpRequest>;

/** Whether the owner runs workers, and so takes dumps: a prerequisite, so nothing is changed when it does not. */
export async function ownerTakesDumps(pool: Pool, ownerPid: number): Promise<CheckResult> {
  const remedy = `restart \`shipshape serve\` without --no-workers (its workers take the dump), or stop process ${ownerPid} and run the backup again`;
  try {
    const instances = await (await queueClient(pool)).getInstances();
    const owner = instances.find((instance) => instance.pid === ownerPid && instance.host === hostname() && instance.live);
    if (owner !== undefined)
      return { ok: true, detail: `embedded PGlite, owned by process ${ownerPid} (${owner.name ?? 'shipshape'}), whose workers take the dump` };
  } catch (error) {
    return { ok: false, detail: `the embedded database is open in process ${ownerPid}, and its job queue cannot be read (${describeError(error)})`, remedy };
  }
  return { ok: false, detail: `the embedded database is open in process ${ownerPid}, which runs no workers, and only that process can dump it`, remedy };
}

/** Asks the owner for the dump and follows the job to its end. */
export async function dumpThroughOwner(options: {
  readonly pool: Pool;
  readonly ownerPid: number;
  readonly request: OwnerDumpRequest;
  readonly signal?: AbortSignal | undefined;
}): Promise<DumpFacts> {
  const { ownerPid, signal } = options;
  // Callers inside other procedures (a migration's --backup) have no prerequisite for this: a
  // job nobody works would be followed forever.
  const owner = await ownerTakesDumps(options.pool, ownerPid);
  if (!owner.ok) throw new ShipError('SHIP_ERR_PREREQUISITE_FAILED', `The embedded database cannot be dumped: ${owner.detail}. Fix: ${owner.remedy ?? ''}.`);
  const boss = await queueClient(options.pool);
  const name = queueNames.embeddedDump;
  const jobId = await boss.send(name, options.request);
  if (jobId === null) throw new ShipError('SHIP_ERR_INTERNAL', 'The job queue did not accept the dump request; run the backup again.');
  for (;;) {
    if (signal?.aborted) {
      // Not yet taken: it never runs. Already running: the owner finishes a dump no manifest will seal (`db prune` removes it).
      await boss.cancel(name, jobId).catch(() => undefined);
      signal.throwIfAborted();
    }
    const [job] = await boss.findJobs<OwnerDumpRequest>(name, { id: jobId, limit: 1 });
    if (job?.state === 'completed') return dumpFactsSchema.parse(job.output);
    if (job === undefined || job.state === 'failed' || job.state === 'cancelled') {
      throw new ShipError(
        'SHIP_ERR_STEP_FAILED',
        `Process ${ownerPid}, which owns the embedded database, did not take the dump: ${job === undefined ? 'its job is gone' : failureOf(job.output, job.state)}. See its log, then run the backup again.`,
      );
    }
    if (liveness({ pid: ownerPid, host: hostname() }) === 'dead') {
      await boss.cancel(name, jobId).catch(() => undefined);
      throw new ShipError(
        'SHIP_ERR_STEP_FAILED',
        `Process ${ownerPid}, which owns the embedded database, stopped before it finished the dump. Run the backup again (it then dumps in this process, or in the next \`shipshape serve\`).`,
      );
    }
    await sleep(FOLLOW_POLL_MS, undefined, signal === undefined ? undefined : { signal }).catch(() => undefined);
  }
}

/** The owner's side: the dump itself, into the storage the asker named. */
export async function takeOwnerDump(options: {
  readonly config: Config;
  readonly embedded: EmbeddedDatabase;
  readonly profile: AppProfile;
  readonly request: OwnerDumpRequest;
  readonly signal?: AbortSignal | undefined;
}): Promise<DumpFacts> {
  const backupId = checkBackupId(options.request.backupId);
  return withBackupStore({ ...options.config, backupStorageUrl: options.request.storageUrl }, (store) =>
    dumpEmbedded({ embedded: options.embedded, profile: options.profile, store, backupId, objectKey: dumpKey(backupId), signal: options.signal }),
  );
}

function failureOf(output: unknown, state: string): string {
  const message = typeof output === 'object' && output !== null && 'message' in output ? output.message : undefined;
  return typeof message === 'string' ? message : `its job ended ${state}`;
}
