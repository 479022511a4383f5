/**
 * Runbook: "Database Backup" (retention) — `shipshape db prune [--keep-daily N] [--keep-weekly N] [--keep-monthly N]`.
 *
 * When: after the daily backup, or when backup storage fills up. The runbook uploads a
 * backup a day and never deletes one; this keeps a grandfather-father-son set instead:
 * the newest good backup of each of the last BACKUP_KEEP_DAILY days, BACKUP_KEEP_WEEKLY
 * ISO weeks and BACKUP_KEEP_MONTHLY months — and always the newest good backup. Incomplete
 * backups (a dump without a manifest) older than a day, and backups that failed their
 * latest verification, are removed too. Only this database's backups are considered.
 *
 * It also drops the copies `db restore` kept of the databases it replaced
 * (`<db>__pre_restore_<run>`, or `db/data.pre-restore-<run>` beside the embedded database)
 * except the newest `--keep-pre-restore N` (default 1), and says how much disk they held:
 * each is a full copy of the data, and the way back for its run (`runs rollback`).
 *
 * Medium risk, and the delete steps cannot be undone: `--dry-run` lists what would go
 * (under the "retention plan" prerequisites) without deleting anything.
 */
import { z } from 'zod';
import type { ObjectStore } from '../../adapters/storage/index.ts';
import type { Config } from '../../config/index.ts';
import { describeError } from '../../errors.ts';
import { idSafeName } from '../backups/backup-id.ts';
import { withBackupStore } from '../backups/backup-store.ts';
import { formatBytes } from '../../bytes.ts';
import { listBackups, type BackupEntry } from '../backups/catalog.ts';
import { applicationDatabaseName, databaseLockResource } from '../backups/database-target.ts';
import { dropKeptCopy, listKeptCopies, type KeptCopy } from '../backups/pre-restore.ts';
import { planRetention, type RetentionDecision, type RetentionPolicy } from '../backups/retention.ts';
import { defineProcedure, requireOutput, stepFor, type JsonObject, type RunContext } from '../engine/types.ts';

const keep = z.coerce.number().int().min(0).max(10_000).optional();
const params = z.object({ keepDaily: keep, keepWeekly: keep, keepMonthly: keep, keepPreRestore: keep });
type Params = z.output<typeof params>;
type Context = RunContext<Params>;

// The step whose output the check read (listed in `steps` below with the others).
const step = stepFor<Params>();

const deleteBackups = step({
  id: 'delete',
  output: z.object({ deleted: z.array(z.string()), kept: z.array(z.string()) }),
  title: 'Delete the backups the retention policy does not keep',
  describe: ({ config, params: p }) => [
    `for each backup of ${applicationDatabaseName(config)} in ${config.backupStorageUrl} not kept by ${policyText(policyOf(config, p))}: DELETE <id>/dump, <id>/manifest.json, <id>/verification.json`,
    'the list is the "retention plan" above, recomputed just before deleting',
  ],
  irreversible: 'deleted backups are gone; nothing can bring them back',
  async run(context) {
    const { decisions } = await planFor(context);
    const going = decisions.filter((decision) => !decision.keep);
    const deleted: string[] = [];
    await withBackupStore(context.config, async (store) => {
      for (const decision of going) {
        context.signal.throwIfAborted();
        await deleteBackup(store, decision.id);
        deleted.push(decision.id);
        context.note(`deleted ${decision.id}: ${decision.reasons.join(', ')}`);
      }
    });
    context.note(deleted.length === 0 ? 'nothing to delete' : `deleted ${deleted.length} backup(s)`);
    return { deleted, kept: decisions.filter((decision) => decision.keep).map((decision) => decision.id) };
  },
});

export const dbPrune = defineProcedure({
  id: 'db.prune',
  command: 'db prune',
  title: 'Prune old backups (grandfather-father-son retention)',
  runbookSection: 'Database Backup',
  whenToUse: 'After the daily backup, or when backup storage fills up. Try --dry-run first.',
  risk: 'medium',
  expectedDuration: '1 minute',
  issueType: 'database',
  alertChannels: ['#ops-backups'],
  params,
  locks: (_params, config) => [databaseLockResource(config)],

  prerequisites: [
    {
      name: 'retention plan',
      run: async (context) => {
        const plan = await planFor(context);
        const going = plan.decisions.filter((decision) => !decision.keep);
        return {
          ok: true,
          detail:
            `${policyText(plan.policy)}: ${plan.decisions.length - going.length} of ${plan.decisions.length} backup(s) of ${applicationDatabaseName(context.config)} kept` +
            (going.length === 0
              ? '; nothing to delete'
              : `; would delete ${going.map((decision) => `${decision.id} (${decision.reasons.join(', ')})`).join(', ')}`),
        };
      },
    },
    {
      name: 'retention plan for the databases restores kept',
      run: async (context) => {
        const { going, kept, problem } = await preRestorePlan(context);
        if (problem !== undefined)
          return { ok: true, detail: `unverified: the kept pre-restore databases could not be listed (${problem}); none will be dropped` };
        const held = going.reduce((sum, copy) => sum + copy.bytes, 0);
        return {
          ok: true,
          detail:
            `keep the newest ${keepPreRestore(context.params)}: ${kept.length} kept${kept.length > 0 ? ` (${kept.map((copy) => `${copy.name}, ${formatBytes(copy.bytes)}`).join('; ')})` : ''}` +
            (going.length === 0
              ? '; nothing to drop'
              : `; would drop ${going.map((copy) => `${copy.name} (${formatBytes(copy.bytes)})`).join(', ')}, ${formatBytes(held)} in all`),
        };
      },
    },
  ],

  steps: [
    deleteBackups,
    {
      id: 'drop-pre-restore',
      title: 'Drop the old copies restores kept of the databases they replaced',
      describe: ({ params: p }) => [
        `DROP DATABASE <db>__pre_restore_<run> WITH (FORCE)   -- (embedded: rm -r db/data.pre-restore-<run>) for all but the newest ${keepPreRestore(p)}`,
        'the list is the plan above, recomputed just before dropping',
      ],
      irreversible: 'a dropped pre-restore copy is gone; the run that kept it can no longer be rolled back',
      async run(context): Promise<JsonObject> {
        const { going, problem } = await preRestorePlan(context);
        if (problem !== undefined) context.note(`the kept pre-restore databases could not be listed (${problem}): none dropped`);
        let freed = 0;
        const dropped: string[] = [];
        for (const copy of going) {
          context.signal.throwIfAborted();
          await dropKeptCopy(context.config, copy);
          dropped.push(copy.name);
          freed += copy.bytes;
          context.note(`dropped ${copy.name}, kept by run ${copy.runId}: ${formatBytes(copy.bytes)} freed`);
        }
        context.note(
          dropped.length === 0
            ? 'no old pre-restore copy to drop'
            : `dropped ${dropped.length} pre-restore cop${dropped.length === 1 ? 'y' : 'ies'}, ${formatBytes(freed)} freed`,
        );
        return { dropped, freedBytes: freed };
      },
    },
  ],

  verification: [
    {
      name: 'the kept backups are still there and the deleted ones are gone',
      run: async (context) => {
        const output = requireOutput(context, deleteBackups);
        const present = new Set((await withBackupStore(context.config, (store) => listBackups(store))).map((entry) => entry.id));
        const lost = output.kept.filter((id) => !present.has(id));
        const left = output.deleted.filter((id) => present.has(id));
        if (lost.length > 0 || left.length > 0) {
          return {
            ok: false,
            detail:
              `${lost.length > 0 ? `missing kept backup(s) ${lost.join(', ')}` : ''}${left.length > 0 ? ` still present: ${left.join(', ')}` : ''}`.trim(),
          };
        }
        return { ok: true, detail: `${output.kept.length} kept, ${output.deleted.length} deleted` };
      },
    },
  ],
});

function keepPreRestore(p: Params): number {
  return p.keepPreRestore ?? 1;
}

/** Which kept copies go. One that cannot be listed (no access to the server's `postgres` database) is not a reason to stop the backup retention. */
async function preRestorePlan(context: Context): Promise<{ kept: KeptCopy[]; going: KeptCopy[]; problem?: string }> {
  let copies: KeptCopy[];
  try {
    copies = await listKeptCopies(context.config);
  } catch (error) {
    return { kept: [], going: [], problem: describeError(error) };
  }
  const keep = keepPreRestore(context.params);
  return { kept: copies.slice(0, keep), going: copies.slice(keep) };
}

function policyOf(config: Config, p: Params): RetentionPolicy {
  return {
    daily: p.keepDaily ?? config.backups.keep.daily,
    weekly: p.keepWeekly ?? config.backups.keep.weekly,
    monthly: p.keepMonthly ?? config.backups.keep.monthly,
  };
}

function policyText(policy: RetentionPolicy): string {
  return `keep ${policy.daily} daily, ${policy.weekly} weekly, ${policy.monthly} monthly`;
}

async function planFor(context: Context): Promise<{ policy: RetentionPolicy; decisions: RetentionDecision[] }> {
  const policy = policyOf(context.config, context.params);
  const entries = await withBackupStore(context.config, (store) => listBackups(store));
  const ours = entries.filter((entry) => isOfDatabase(entry, applicationDatabaseName(context.config)));
  return { policy, decisions: planRetention(ours, policy, new Date()) };
}

/** A backup is this database's by its manifest, or — when it has none — by its id. */
function isOfDatabase(entry: BackupEntry, databaseName: string): boolean {
  if (entry.manifest !== undefined) return entry.manifest.database.name === databaseName;
  const suffix = `-${idSafeName(databaseName)}`;
  return entry.id.endsWith(suffix) || new RegExp(`${suffix}-\\d+$`).test(entry.id);
}

/** The manifest goes first: a backup without one is already "incomplete", never offered for restore. */
async function deleteBackup(store: ObjectStore, id: string): Promise<void> {
  const objects = await store.list(`${id}/`);
  const order = (key: string) => (key.endsWith('/manifest.json') ? 0 : 1);
  for (const object of [...objects].sort((a, b) => order(a.key) - order(b.key))) await store.delete(object.key);
}
