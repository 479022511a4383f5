/**
 * `shipshape db verify <id>` and the console's Verify button: verify a stored backup
 * and record the outcome beside it (what `db backups` shows as "last verified", and what the
 * restore gate reads). Only a definite finding is recorded; an unreachable store or a missing
 * tool says nothing about the backup and is thrown as is.
 */
import type { Config } from '../../config/index.ts';
import { isShipError } from '../../errors.ts';
import { withBackupStore } from './backup-store.ts';
import { readManifest } from './catalog.ts';
import { verificationKey, type VerificationRecord } from './manifest.ts';
import { verifyBackup } from './take-backup.ts';

export async function verifyAndRecord(config: Config, backupId: string, options: { restoreTest: boolean }): Promise<VerificationRecord> {
  return withBackupStore(config, async (store) => {
    const manifest = await readManifest(store, backupId);
    const at = () => new Date().toISOString();
    try {
      const checks = await verifyBackup({ config, store, facts: manifest, restoreTest: options.restoreTest });
      const ok: VerificationRecord = { backupId, at: at(), ok: true, restoreTested: options.restoreTest, checks, problem: null };
      await store.putJson(verificationKey(backupId), ok);
      return ok;
    } catch (error) {
      if (isShipError(error) && error.code === 'SHIP_ERR_BACKUP_NOT_VERIFIED') {
        const failed: VerificationRecord = { backupId, at: at(), ok: false, restoreTested: options.restoreTest, checks: [], problem: error.message };
        await store.putJson(verificationKey(backupId), failed).catch(() => undefined);
      }
      throw error;
    }
  });
}
