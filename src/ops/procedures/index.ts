/**
 * Every runbook procedure the CLI exposes, in runbook order.
 *
 * To add one: write `src/ops/procedures/<name>.ts` exporting a `defineProcedure({...})`,
 * then add one line here mapping its CLI arguments and options onto its params, e.g.
 *
 *   procedureEntry(userDelete, { arguments: [{ name: 'email', description: 'the account to erase' }] }),
 *
 * The command (`shipshape user delete <email>`), its --dry-run/--json/--yes/... flags, the
 * `shipshape procedures` listing, and resume/rollback support all follow from that entry.
 * See docs/engine.md.
 */
import { procedureEntry, type ProcedureEntry } from '../engine/registry.ts';
import { cacheClear } from './cache-clear.ts';
import { dbBackupEntry } from './db-backup.ts';
import { dbPrune } from './db-prune.ts';
import { dbRestore } from './db-restore.ts';
import { dbKillConnections } from './db-kill-connections.ts';
import { cdnPurge } from './cdn-purge.ts';
import { dbIndex } from './db-index.ts';
import { dbKill } from './db-kill.ts';
import { emergencyDisable } from './emergency-disable.ts';
import { emergencyEnable } from './emergency-enable.ts';
import { dbMigrate } from './db-migrate.ts';
import { maintenanceRun } from './maintenance-run.ts';
import { maintenanceSchedule } from './maintenance-schedule.ts';
import { releaseComplete } from './release-complete.ts';
import { releaseDeploy } from './release-deploy.ts';
import { releaseHalt } from './release-halt.ts';
import { releaseResume } from './release-resume.ts';
import { releaseRollback } from './release-rollback.ts';
import { userDelete } from './user-delete.ts';
import { userExport } from './user-export.ts';
import { userPurgeDue } from './user-purge-due.ts';
import { userRequestDeletion } from './user-request-deletion.ts';
import { userResetPassword } from './user-reset-password.ts';
import { updateRollback } from './update-rollback.ts';

const email = { name: 'email', description: "the account's email address" };
const platform = { name: 'platform', description: 'ios or android' };
const ticket = { flags: '--ticket <ref>', description: 'the support or GDPR ticket this is done under' };

export const procedures: readonly ProcedureEntry[] = [
  dbBackupEntry,
  procedureEntry(dbPrune, {
    options: [
      { flags: '--keep-daily <n>', description: 'newest backup of each of the last N days (default BACKUP_KEEP_DAILY, 7)' },
      { flags: '--keep-weekly <n>', description: 'newest backup of each of the last N ISO weeks (default BACKUP_KEEP_WEEKLY, 4)' },
      { flags: '--keep-monthly <n>', description: 'newest backup of each of the last N months (default BACKUP_KEEP_MONTHLY, 6)' },
      {
        flags: '--keep-pre-restore <n>',
        description: 'keep the newest N copies `db restore` kept of the databases it replaced (default 1); older ones are dropped',
      },
    ],
  }),
  procedureEntry(dbRestore, {
    arguments: [{ name: 'backup', description: 'the backup id (see `shipshape db backups`)' }],
    options: [
      { flags: '--target <database>', description: "restore into this database on the same server (created if absent) instead of the application's" },
      { flags: '--jobs <n>', description: 'parallel pg_restore jobs (default BACKUP_RESTORE_JOBS, 2)' },
    ],
  }),
  procedureEntry(dbMigrate, {
    options: [
      { flags: '--backup', description: 'take and verify a backup first, instead of requiring one younger than MIGRATE_BACKUP_MAX_AGE' },
      { flags: '--to <version>', description: 'apply pending migrations only up to this one' },
    ],
  }),
  procedureEntry(releaseDeploy, { options: [{ flags: '--bump <level>', description: 'patch, minor or major (a hotfix is patch)' }] }),
  procedureEntry(releaseHalt, { arguments: [platform] }),
  procedureEntry(releaseResume, { arguments: [platform] }),
  procedureEntry(releaseComplete, { arguments: [platform] }),
  procedureEntry(releaseRollback, { options: [{ flags: '--message <text>', description: "what users are told (default: the runbook's rollback notice)" }] }),
  procedureEntry(userResetPassword, { arguments: [email], options: [ticket] }),
  procedureEntry(userExport, { arguments: [email], options: [ticket] }),
  procedureEntry(userRequestDeletion, {
    arguments: [email],
    options: [ticket, { flags: '--identity-ref <ref>', description: "how the requester's identity was verified" }],
  }),
  procedureEntry(userDelete, {
    arguments: [email],
    options: [ticket, { flags: '--skip-grace', description: 'erase before the grace period ends (needs a second approval)' }],
  }),
  procedureEntry(userPurgeDue),
  procedureEntry(cacheClear, { options: [{ flags: '--scope <scope>', description: 'all, tasks, preferences or user:<email>' }] }),
  procedureEntry(cdnPurge, {
    options: [
      { flags: '--all', description: 'purge everything in the zone' },
      { flags: '--files <url...>', description: 'purge these URLs (full URLs, or /paths resolved against CDN_BASE_URL)' },
    ],
  }),
  procedureEntry(dbIndex, {
    arguments: [
      { name: 'table', description: 'the table (or schema.table)' },
      { name: 'columns', description: 'the column(s) to index, in order', variadic: true },
    ],
  }),
  procedureEntry(dbKill, {
    arguments: [{ name: 'pid', description: 'the session’s process id (see `shipshape db diagnose`)' }],
    options: [{ flags: '--force', description: 'terminate the session when cancelling its statement does not end it (or it is idle in a transaction)' }],
  }),
  procedureEntry(emergencyDisable, {
    options: [{ flags: '--message <text>', description: 'what users see (default "Emergency maintenance in progress. We will be back shortly.")' }],
  }),
  procedureEntry(emergencyEnable, { options: [{ flags: '--no-push', description: 'do not push the all-clear to users' }] }),
  procedureEntry(dbKillConnections, { options: [{ flags: '--warn <duration>', description: 'warn users this long first (banner and push), e.g. 5m' }] }),
  procedureEntry(maintenanceSchedule, {
    options: [{ flags: '--at <time>', description: 'when the window starts, ISO 8601 with an offset (default: the next MAINTENANCE_WINDOW)' }],
  }),
  procedureEntry(maintenanceRun),
  procedureEntry(updateRollback, {
    arguments: [{ name: 'update', description: 'the update id (see `shipshape update list`)' }],
    options: [{ flags: '--reason <text>', description: 'why, for the audit log and the alert' }],
  }),
];
