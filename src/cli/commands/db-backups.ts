/**
 * `shipshape db backups` (list) and `shipshape db verify <backup> [--restore]` — the runbook's
 * "Database Backup" verification, as commands that only read (the backup itself, its
 * retention and the restore are procedures: `db backup`, `db prune`, `db restore`).
 *
 * `db verify` records its outcome beside the backup (`<id>/verification.json`), so a backup
 * found damaged is listed as such and is no longer counted as good by retention or the
 * migration procedure's backup check.
 */
import type { Command } from 'commander';
import { withBackupStore } from '../../ops/backups/backup-store.ts';
import { formatBytes } from '../../bytes.ts';
import { listBackups, type BackupEntry } from '../../ops/backups/catalog.ts';
import { verifyAndRecord } from '../../ops/backups/verify-and-record.ts';
import { cliContext } from '../context.ts';
import { emit, table } from '../output.ts';
import { jsonErrors } from './procedures.ts';

export function registerDbBackups(db: Command): void {
  db.command('backups')
    .description('list backups: id, time, size, verified, schema version, database (runbook: Database Backup)')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { json: boolean }) => {
      await jsonErrors(options.json, async () => {
        const { config } = cliContext();
        const { location, entries } = await withBackupStore(config, async (store) => ({ location: store.location, entries: await listBackups(store) }));
        const backups = entries.map(listing);
        emit(options, { location, backups }, (data) =>
          data.backups.length === 0
            ? `No backups in ${data.location}. Take one with \`shipshape db backup\`.`
            : [
                `Backups in ${data.location} (newest first):`,
                table(
                  ['id', 'taken (UTC)', 'size', 'verified', 'schema', 'database', 'purpose'],
                  data.backups.map((b) => [
                    b.id,
                    b.createdAt.replace('T', ' ').slice(0, 19),
                    b.bytes === null ? null : formatBytes(b.bytes),
                    b.verified,
                    b.schemaVersion,
                    b.database,
                    b.purpose,
                  ]),
                ),
                ...(data.backups.some((b) => b.state !== 'good')
                  ? ['', 'Only backups verified "yes" are offered for restore; `shipshape db prune` removes the others.']
                  : []),
              ].join('\n'),
        );
      });
    });

  db.command('verify <backup>')
    .description('verify a stored backup: size and SHA-256 on re-read, pg_restore --list; with --restore, a scratch restore comparing every row count')
    .option('--restore', "also restore it into a scratch database and compare every table's row count with the manifest", false)
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (backupId: string, options: { restore: boolean; json: boolean }) => {
      await jsonErrors(options.json, async () => {
        const { config } = cliContext();
        const record = await verifyAndRecord(config, backupId, { restoreTest: options.restore });
        emit(options, record, (r) => [`Backup ${r.backupId} verifies:`, ...r.checks.map((check) => `  ✓ ${check}`)].join('\n'));
      });
    });
}

function listing(entry: BackupEntry) {
  const manifest = entry.manifest;
  return {
    id: entry.id,
    state: entry.state,
    createdAt: entry.createdAt.toISOString(),
    bytes: manifest?.dump.bytes ?? entry.objects.find((object) => object.key.endsWith('/dump'))?.bytes ?? null,
    verified: verifiedText(entry),
    schemaVersion: manifest?.schemaVersion.version ?? null,
    database: manifest?.database.name ?? null,
    purpose: manifest?.purpose ?? null,
    format: manifest?.dump.format ?? null,
    problem: entry.problem ?? null,
  };
}

function verifiedText(entry: BackupEntry): string {
  switch (entry.state) {
    case 'incomplete':
      return 'no (incomplete)';
    case 'damaged':
      return 'no (damaged)';
    case 'failed-verification':
      return `FAILED ${entry.lastVerification?.at.slice(0, 10) ?? ''}`.trim();
    case 'good': {
      const last = entry.lastVerification;
      const restoreTested = entry.manifest?.verification.restoreTested === true || last?.restoreTested === true;
      return `yes${restoreTested ? ' (restore-tested)' : ''}${last === undefined ? '' : `, re-checked ${last.at.slice(0, 10)}`}`;
    }
  }
}
