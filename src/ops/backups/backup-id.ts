/**
 * Backup ids: `b-20261127-001530-app` — UTC date and time the backup started, then the
 * database it is of. They sort by time as plain strings (so a storage listing, `db backups`
 * and retention agree without parsing dates), read aloud over a call, and are safe as both
 * object-key segments and file names. A second backup of the same database within the same
 * second gets `-2`, `-3`… appended.
 */
import { ShipError } from '../../errors.ts';

const BACKUP_ID_PATTERN = /^b-(\d{8})-(\d{6})-([a-z0-9_]{1,40})(?:-(\d{1,3}))?$/;

export function backupIdFor(startedAt: Date, databaseName: string, attempt = 1): string {
  const iso = startedAt.toISOString();
  const date = iso.slice(0, 10).replaceAll('-', '');
  const time = iso.slice(11, 19).replaceAll(':', '');
  const base = `b-${date}-${time}-${idSafeName(databaseName)}`;
  return attempt <= 1 ? base : `${base}-${attempt}`;
}

/** Lower case letters, digits and `_`, at most 40 characters. */
export function idSafeName(databaseName: string): string {
  const safe = databaseName
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .slice(0, 40);
  return safe === '' ? 'db' : safe;
}

export function isBackupId(value: string): boolean {
  return BACKUP_ID_PATTERN.test(value);
}

/** When the backup started, read from its id. */
export function backupIdTime(id: string): Date | undefined {
  const match = BACKUP_ID_PATTERN.exec(id);
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  const [d, t] = [match[1], match[2]];
  const time = Date.UTC(
    Number(d.slice(0, 4)),
    Number(d.slice(4, 6)) - 1,
    Number(d.slice(6, 8)),
    Number(t.slice(0, 2)),
    Number(t.slice(2, 4)),
    Number(t.slice(4, 6)),
  );
  return Number.isNaN(time) ? undefined : new Date(time);
}

/** Backup ids become object keys and file names, so anything else is refused before it gets there. */
export function checkBackupId(value: string): string {
  if (!isBackupId(value)) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `"${value.slice(0, 80)}" is not a backup id (they look like b-20261127-001530-app). Run \`shipshape db backups\` to list the backups.`,
    );
  }
  return value;
}
