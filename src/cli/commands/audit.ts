/**
 * `shipshape audit [--user EMAIL] [--since 24h|2026-01-31] [--action PREFIX.] [--limit N]`:
 * reads the audit trail, newest first.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { queryAudit } from '../../domain/audit-query.ts';
import { cliContext } from '../context.ts';
import { emit, table } from '../output.ts';
import { accountByEmail, withCurrentSchema } from './user.ts';

interface AuditFlags {
  json: boolean;
  user?: string;
  since?: Date;
  action?: string;
  limit: number;
}

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30m`, `24h`, `7d` (ago), or an ISO date/time. */
export function parseSince(value: string, now = new Date()): Date {
  const relative = /^(\d{1,6})([mhd])$/.exec(value.trim());
  if (relative) return new Date(now.getTime() - Number(relative[1]) * (UNITS[relative[2]!] ?? 0));
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim())) {
    const date = new Date(value.trim());
    if (!Number.isNaN(date.getTime())) return date;
  }
  throw new InvalidArgumentError('must be a duration like 30m, 24h or 7d, or a date like 2026-01-31 or 2026-01-31T09:00Z.');
}

const parseLimit = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 10_000) throw new InvalidArgumentError('must be a whole number from 1 to 10000.');
  return Number(value);
};

export function registerAudit(program: Command): void {
  program
    .command('audit')
    .description('the audit trail, newest first: logins, password resets, deletion requests, erasures, sessions revoked, admin actions')
    .option('--user <email>', "only this account's entries")
    .option('--since <when>', 'only entries since then: 30m, 24h, 7d, or a date/time', (value: string) => parseSince(value))
    .option('--action <action>', 'an action (auth.login.failed) or a prefix ending in a dot (gdpr.)')
    .option('--limit <n>', 'at most this many entries', parseLimit, 100)
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (flags: AuditFlags) => {
      const context = cliContext();
      const entries = await withCurrentSchema(context, async ({ pool }) => {
        const userId = flags.user === undefined ? undefined : (await accountByEmail(pool, flags.user)).id;
        return queryAudit(pool, { userId, since: flags.since, action: flags.action, limit: flags.limit });
      });
      emit(flags, { entries }, ({ entries: rows }) =>
        rows.length === 0
          ? 'No audit entries match.'
          : table(
              ['at', 'actor', 'action', 'user', 'ip', 'details'],
              rows.map((e) => [e.at.toISOString(), e.actor, e.action, e.userId, e.ip, Object.keys(e.details).length === 0 ? null : JSON.stringify(e.details)]),
            ),
      );
    });
}
