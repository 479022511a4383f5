/**
 * The swap at the end of a restore, and the swap back that rolls it back.
 *
 *   swap in:   terminate sessions on <name>, ALTER DATABASE <name> RENAME TO <name>__pre_restore_<run>,
 *              ALTER DATABASE <name>__incoming_<run> RENAME TO <name>
 *   swap back: ALTER DATABASE <name> RENAME TO <name>__incoming_<run>,
 *              ALTER DATABASE <name>__pre_restore_<run> RENAME TO <name>
 *
 * Both look at which of the three databases exist before each rename, so either can be
 * repeated after a crash at any point between its renames (resume and rollback of a run
 * killed mid-swap). The live database is renamed only after its sessions are terminated,
 * retried while the application's pools race back in (connections.ts). Between the two
 * renames a client connecting by the usual name is refused ("database does not exist"),
 * which the API answers as 503: that gap is the only time the service is fully unavailable
 * besides the maintenance window around it.
 */
import type pg from 'pg';
import { quoteIdent } from '../../db/pool.ts';
import { databaseExists, renameExclusively, withClient, type Backend } from './connections.ts';
import { layoutOf, type Layout, type PostgresTarget } from './restore-target.ts';

export interface SwapResult {
  readonly disconnected: Backend[];
  /** Whether there was a live database to keep (false when the restore created the target). */
  readonly keptPreRestore: boolean;
  readonly notes: string[];
}

/** Puts the incoming database in place of the live one, keeping the live one as pre-restore. */
export async function swapIn(
  target: PostgresTarget,
  options: { signal?: AbortSignal | undefined; whileOffline?: (() => Promise<void>) | undefined } = {},
): Promise<SwapResult> {
  const notes: string[] = [];
  const disconnected: Backend[] = [];
  let layout = await layoutOf(target);
  if (layout.live && layout.preRestore && !layout.incoming) return { disconnected, keptPreRestore: true, notes: ['already swapped: nothing to do'] };
  if (!layout.incoming) throw new Error(`${target.incoming} does not exist, so there is nothing to swap in`);
  await withClient(target.adminUrl, async (client) => {
    if (layout.live && !layout.preRestore) {
      disconnected.push(...(await renameExclusively(client, target.name, target.preRestore, options.signal)));
      notes.push(`${target.name} renamed to ${target.preRestore}; ${disconnected.length} session(s) disconnected`);
    } else if (layout.live) {
      throw new Error(`both ${target.name} and ${target.preRestore} exist beside ${target.incoming}; inspect them and drop the wrong one`);
    }
  });
  layout = await layoutOf(target);
  if (options.whileOffline) await options.whileOffline();
  await withClient(target.adminUrl, async (client) => {
    await renameExclusively(client, target.incoming, target.name, options.signal);
    await allowConnections(client, target.name);
  });
  notes.push(`${target.incoming} renamed to ${target.name}: the restored database is live`);
  return { disconnected, keptPreRestore: layout.preRestore, notes };
}

/**
 * Undoes `swapIn`, or whatever part of it happened: the pre-restore database goes back under the
 * live name, the restored one back to the incoming name. `hadLive` says whether the target existed
 * before the run (when it did not, there is no pre-restore database and the restored one just
 * leaves the live name). Returns a sentence for the journal.
 */
export async function swapBack(target: PostgresTarget, hadLive: boolean): Promise<string> {
  const layout = await layoutOf(target);
  return withClient(target.adminUrl, async (client) => {
    const sentence = await swapBackWith(client, target, layout, hadLive);
    // A run killed while the door was shut leaves ALLOW_CONNECTIONS false behind.
    for (const name of [target.name, target.incoming]) await allowConnections(client, name);
    return sentence;
  });
}

async function swapBackWith(client: pg.Client, target: PostgresTarget, layout: Layout, hadLive: boolean): Promise<string> {
  {
    if (layout.preRestore) {
      if (layout.live) {
        if (layout.incoming)
          throw new Error(`${target.name}, ${target.incoming} and ${target.preRestore} all exist; inspect them and drop the wrong one, then roll back again`);
        const disconnected = await renameExclusively(client, target.name, target.incoming);
        await renameExclusively(client, target.preRestore, target.name);
        return `${target.preRestore} renamed back to ${target.name} (the restored database is ${target.incoming} again); ${disconnected.length} session(s) disconnected`;
      }
      await renameExclusively(client, target.preRestore, target.name);
      return `${target.preRestore} renamed back to ${target.name}`;
    }
    if (!hadLive && layout.live && !layout.incoming) {
      const disconnected = await renameExclusively(client, target.name, target.incoming);
      return `${target.name} did not exist before this run: the restored database is ${target.incoming} again; ${disconnected.length} session(s) disconnected`;
    }
    return 'the swap had not happened: nothing to swap back';
  }
}

/** ALLOW_CONNECTIONS true on `name`, if it exists. */
async function allowConnections(client: pg.Client, name: string): Promise<void> {
  if (await databaseExists(client, name)) await client.query(`ALTER DATABASE ${quoteIdent(name)} WITH ALLOW_CONNECTIONS true`);
}
