/**
 * How old the newest verified backup of the application database is, read from backup
 * storage through the backup catalog (`src/ops/backups/catalog.ts`): a backup counts once its
 * manifest exists (written only after its stored copy verified) and no later `db verify`
 * failed it.
 */
import type { Config } from '../../config/index.ts';
import { describeError } from '../../errors.ts';
import { withBackupStore } from '../backups/backup-store.ts';
import { listBackups } from '../backups/catalog.ts';
import { applicationDatabaseName } from '../backups/database-target.ts';
import { thresholds } from './thresholds.ts';

export type BackupFreshness =
  | { readonly state: 'fresh' | 'stale'; readonly id: string; readonly createdAt: string; readonly ageMs: number }
  | { readonly state: 'none'; readonly detail: string }
  | { readonly state: 'unreadable'; readonly detail: string };

export async function backupFreshness(config: Config, now: Date = new Date(), staleAfterMs: number = thresholds.backupMaxAgeMs): Promise<BackupFreshness> {
  const name = applicationDatabaseName(config);
  try {
    const entries = await withBackupStore(config, listBackups);
    const newest = entries.find((entry) => entry.state === 'good' && entry.manifest?.database.name === name);
    if (newest === undefined) {
      const others = entries.filter((entry) => entry.state !== 'good').length;
      return { state: 'none', detail: `no verified backup of ${name} in backup storage${others > 0 ? ` (${others} incomplete or failed)` : ''}` };
    }
    const ageMs = Math.max(0, now.getTime() - newest.createdAt.getTime());
    return { state: ageMs > staleAfterMs ? 'stale' : 'fresh', id: newest.id, createdAt: newest.createdAt.toISOString(), ageMs };
  } catch (error) {
    return { state: 'unreadable', detail: `backup storage could not be read: ${describeError(error)}` };
  }
}
