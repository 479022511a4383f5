/**
 * `shipshape notify schedule|list|cancel`: scheduled push notifications from the terminal,
 * the same as POST /admin/notifications/schedule, GET /admin/notifications and
 * DELETE /admin/notifications/:id. A worker (`serve` or `worker`) sends them when due.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { recordAudit } from '../../domain/audit.ts';
import { priorities, type Priority } from '../../domain/notifications.ts';
import {
  cancelScheduledNotification,
  listNotifications,
  listStatuses,
  parseScheduledFor,
  scheduleNotification,
  type ListStatus,
  type NotificationListItem,
} from '../../domain/scheduled-notifications.ts';
import { cliContext, withDatabase } from '../context.ts';
import { emit, table } from '../output.ts';

const priorityArgument = (value: string): Priority => {
  const match = priorities.find((priority) => priority === value);
  if (!match) throw new InvalidArgumentError('must be default, normal or high.');
  return match;
};

const statusArgument = (value: string): ListStatus => {
  const match = listStatuses.find((status) => status === value);
  if (!match) throw new InvalidArgumentError(`must be ${listStatuses.join(', ')}.`);
  return match;
};

const limitArgument = (value: string): number => {
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new InvalidArgumentError('must be a whole number from 1 to 500.');
  return limit;
};

export function registerNotifySchedule(program: Command): void {
  const notify =
    program.commands.find((command) => command.name() === 'notify') ??
    program.command('notify').description('push notifications to the app’s users (Expo push)');

  notify
    .command('schedule')
    .description('schedule a push notification to every user with notifications enabled (sent by the workers when due)')
    .requiredOption('--at <time>', 'when to send it: ISO 8601 with an offset, e.g. 2026-03-01T01:00:00-08:00')
    .requiredOption('--title <text>', 'notification title')
    .requiredOption('--body <text>', 'notification text')
    .option('--priority <priority>', 'default, normal or high', priorityArgument, 'default')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { at: string; title: string; body: string; priority: Priority; json: boolean }) => {
      const context = cliContext();
      const actor = `operator:${context.config.operator}`;
      const scheduledFor = parseScheduledFor(options.at, new Date(), '--at');
      const notification = await withDatabase(context, async ({ pool }) => {
        const { notification: created } = await scheduleNotification(pool, {
          scheduledFor,
          title: options.title,
          body: options.body,
          priority: options.priority,
          requestedBy: actor,
        });
        await recordAudit(pool, {
          actor,
          action: 'admin.notifications.scheduled',
          details: { notification: created.id, scheduledFor: created.scheduledFor.toISOString() },
        });
        return created;
      });
      emit(
        options,
        { notification },
        ({ notification: shown }) =>
          `Scheduled notification ${shown.id} for ${shown.scheduledFor.toISOString()}. Cancel it before then with \`shipshape notify cancel ${shown.id}\`.`,
      );
    });

  notify
    .command('list')
    .description('scheduled notifications (pending ones first) and every other send, newest first')
    .option('--status <status>', listStatuses.join(', '), statusArgument, 'all')
    .option('--limit <n>', 'at most this many (1-500)', limitArgument, 50)
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { status: ListStatus; limit: number; json: boolean }) => {
      const context = cliContext();
      const notifications = await withDatabase(context, ({ pool }) => listNotifications(pool, options));
      emit(options, { notifications }, ({ notifications: rows }) => describeList(rows));
    });

  notify
    .command('cancel <id>')
    .description('cancel a scheduled notification that has not gone out yet')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (id: string, options: { json: boolean }) => {
      const context = cliContext();
      const actor = `operator:${context.config.operator}`;
      const notification = await withDatabase(context, async ({ pool }) => {
        const cancelled = await cancelScheduledNotification(pool, id, actor);
        await recordAudit(pool, { actor, action: 'admin.notifications.cancelled', details: { notification: id } });
        return cancelled;
      });
      emit(options, { notification }, ({ notification: shown }) => `Cancelled notification ${shown.id} (it was due at ${shown.scheduledFor.toISOString()}).`);
    });
}

function describeList(rows: readonly NotificationListItem[]): string {
  if (rows.length === 0) return 'No notifications.';
  const listed = table(
    ['id', 'kind', 'status', 'when', 'devices', 'title'],
    rows.map((row) => [row.id, row.kind, row.status, (row.sentAt ?? row.scheduledFor ?? row.createdAt).toISOString(), row.recipients, row.title.slice(0, 60)]),
  );
  // Why each send that did not reach everyone did not: the cause, not only the status.
  const why = rows
    .filter((row) => (row.status === 'failed' || row.status === 'partial') && row.error !== null)
    .map((row) => `  ${row.id} ${row.status}: ${row.error ?? ''}`);
  return why.length === 0 ? listed : `${listed}\n\nWhy:\n${why.join('\n')}`;
}
