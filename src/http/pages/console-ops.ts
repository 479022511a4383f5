/**
 * What the operator console (console.ts) runs, in one module it loads on first use: the engine,
 * the backup catalogue and verification, the diagnostics and the restore procedure.
 */
export { withBackupStore } from '../../ops/backups/backup-store.ts';
export { listBackups } from '../../ops/backups/catalog.ts';
export { verifyAndRecord } from '../../ops/backups/verify-and-record.ts';
export { runDoctor } from '../../ops/diagnostics/doctor.ts';
export { gatherHealth } from '../../ops/diagnostics/health.ts';
export { approveRun, configuredAlerter, listRuns, loadRun, refuseRun, runProcedure } from '../../ops/engine/index.ts';
export { dbRestore } from '../../ops/procedures/db-restore.ts';
