/**
 * Runbook: "Monthly Maintenance Checklist", Pre-Maintenance (T-72 hours) — `shipshape
 * maintenance schedule [--at <time>]`.
 *
 * When: 72 hours (MAINTENANCE_NOTICE) before the window. The scheduler runs it then when the
 * `maintenance-window` schedule is on; `--at` defaults to the next window by
 * MAINTENANCE_WINDOW in MAINTENANCE_TIME_ZONE. Medium risk: it writes to every user.
 *
 *   5. Create the maintenance plan document (first, so the plan exists before anyone is told).
 *   4. Update the in-app banner (served in GET /config until the window ends).
 *   1. Notify users: a push now, and a reminder an hour before (scheduled notifications).
 *   3. Send email to all users: in rate-limited batches from the job queue.
 *   2. Update the status page (STATUS_PAGE_WEBHOOK_URL, when set).
 *
 * Running it again for the same window repeats nothing: the notifications and the notice
 * carry the window in their keys. Rollback takes the banner down, cancels the pushes and the
 * emails not yet sent (those sent cannot be recalled) and tells the status page the window
 * is off.
 */
import { rm } from 'node:fs/promises';
import { z } from 'zod';
import { readAppState, setBanner } from '../../domain/app-state.ts';
import { recordAudit } from '../../domain/audit.ts';
import { cancelMaintenanceNotice, getMaintenanceNotice, recordMaintenanceNotice } from '../../domain/maintenance-notices.ts';
import { cancelScheduledByPurpose, ISO_WITH_OFFSET, scheduleNotification } from '../../domain/scheduled-notifications.ts';
import { ShipError } from '../../errors.ts';
import { announceAppStateChange } from '../../domain/app-state-announce.ts';
import { defineProcedure, outputOf, stepFor, type JsonObject, type RunContext } from '../engine/types.ts';
import { planPath, renderMaintenancePlan, writeMaintenancePlan } from '../maintenance/plan.ts';
import { describeStart, nextWindow, noticeTexts, windowStartingAt, type MaintenanceWindow } from '../maintenance/window.ts';
import { MAINTENANCE_BANNER_SETTER, maintenanceRun } from './maintenance-run.ts';
import { bannerJson, journaledBanner, runSetter, updateStatusPage } from './announcements.ts';

const REMINDER_BEFORE_MS = 3_600_000;

const params = z.object({
  /** When the window starts; default the next window by MAINTENANCE_WINDOW (fixed by the first step, so a resume means the same window). */
  at: z.string().trim().regex(ISO_WITH_OFFSET, 'must be an ISO 8601 time with an offset, e.g. 2026-03-01T02:00:00-08:00').optional(),
});
type Params = z.output<typeof params>;
type Context = RunContext<Params>;

// The step whose output fixes the window for the steps after it (listed in `steps` below with the others).
const step = stepFor<Params>();

const plan = step({
  id: 'plan',
  output: z.object({ file: z.string(), window: z.string() }),
  title: 'Create maintenance plan document',
  describe: (context) => [`write ${planPath(context.config, windowOf(context))} from the steps of \`shipshape maintenance run\``],
  async run(context) {
    const window = windowOf(context);
    const text = renderMaintenancePlan({
      config: context.config,
      profile: context.profile,
      window,
      run: maintenanceRun,
      announce: maintenanceSchedule,
      now: new Date(),
    });
    const file = await writeMaintenancePlan(context.config, window, text);
    context.note(`plan written: ${file}`);
    return { file, window: window.startsAt.toISOString() };
  },
  async undo(_context, output) {
    await rm(output.file, { force: true });
  },
});

export const maintenanceSchedule = defineProcedure({
  id: 'maintenance.schedule',
  command: 'maintenance schedule',
  title: 'Announce a maintenance window (T-72 hours)',
  runbookSection: 'Monthly Maintenance Checklist',
  whenToUse: '72 hours before the monthly window: users get a push, an email and an in-app banner; the plan document is written.',
  risk: 'medium',
  expectedDuration: '1 minute (emails go out in the background)',
  issueType: 'infrastructure',
  params,
  locks: () => ['app:maintenance-notice'],
  prerequisites: [
    {
      name: 'the window is in the future',
      run: async (context) => {
        const window = windowOf(context);
        const lead = window.startsAt.getTime() - Date.now();
        const short = lead < context.config.maintenance.noticeMs;
        if (lead <= 0)
          return { ok: false, detail: `${describeStart(window)} (${window.startsAt.toISOString()}) has passed`, remedy: 'give --at a time in the future' };
        return {
          ok: true,
          detail: `${describeStart(window)} (${window.startsAt.toISOString()}), in ${Math.round(lead / 3_600_000)} h${short ? ` — less than the ${context.config.maintenance.noticeMs / 3_600_000} h notice users are promised` : ''}`,
        };
      },
    },
  ],
  steps: [
    plan,
    {
      id: 'banner',
      title: 'Update in-app banner',
      describe: (context) => {
        const window = windowOf(context);
        return [
          `UPDATE app_state SET banner_message = '${noticeTexts(window).banner}', banner_until = '${window.endsAt.toISOString()}'   -- served in GET /config`,
        ];
      },
      async run(context): Promise<JsonObject> {
        const window = windowOf(context);
        const { pool } = await context.database();
        const before = (await readAppState(pool)).banner;
        const message = noticeTexts(window).banner;
        await setBanner(pool, { message, until: window.endsAt, setBy: `${MAINTENANCE_BANNER_SETTER}${window.startsAt.toISOString()}` });
        await announceAppStateChange(context.config, context.logger);
        context.note(`banner up until ${window.endsAt.toISOString()}: "${message}"`);
        return { previous: bannerJson(before) };
      },
      async undo(context, output) {
        const { pool } = await context.database();
        const previous = journaledBanner(output.previous);
        await setBanner(pool, previous ? { ...previous, setBy: previous.setBy ?? 'restored' } : { message: null, until: null, setBy: 'restored' });
        await announceAppStateChange(context.config, context.logger);
      },
    },
    {
      id: 'push',
      title: 'Notify users (push now, reminder an hour before)',
      describe: (context) => {
        const window = windowOf(context);
        const texts = noticeTexts(window);
        return [
          `INSERT INTO scheduled_notifications: "${texts.title}" / "${texts.body}" for now`,
          `INSERT INTO scheduled_notifications: "${texts.title}" / "${texts.reminder}" for ${new Date(window.startsAt.getTime() - REMINDER_BEFORE_MS).toISOString()}`,
          'sent by the workers to every device with notifications on (Expo), each exactly once',
        ];
      },
      async run(context): Promise<JsonObject> {
        const window = windowOf(context);
        const texts = noticeTexts(window);
        const { pool } = await context.database();
        const purpose = purposeOf(window);
        const now = new Date();
        const announcement = await scheduleNotification(pool, {
          scheduledFor: now,
          title: texts.title,
          body: texts.body,
          priority: 'normal',
          requestedBy: runSetter(context),
          purpose: `${purpose}:announcement`,
        });
        const reminderAt = new Date(window.startsAt.getTime() - REMINDER_BEFORE_MS);
        const reminder =
          reminderAt.getTime() > now.getTime()
            ? await scheduleNotification(pool, {
                scheduledFor: reminderAt,
                title: texts.title,
                body: texts.reminder,
                priority: 'normal',
                requestedBy: runSetter(context),
                purpose: `${purpose}:reminder`,
              })
            : undefined;
        context.note(
          `push scheduled: announcement ${announcement.notification.id} (now)${reminder ? `, reminder ${reminder.notification.id} at ${reminderAt.toISOString()}` : ''}${announcement.created ? '' : ' (scheduled before for this window)'}`,
        );
        return { announcement: announcement.notification.id, reminder: reminder?.notification.id ?? null };
      },
      async undo(context) {
        const { pool } = await context.database();
        const cancelled = await cancelScheduledByPurpose(pool, purposeOf(windowOf(context)), `run:${context.runId}`);
        context.note(`${cancelled} scheduled push(es) cancelled; any already sent cannot be recalled`);
      },
      async undoInterrupted(context) {
        const { pool } = await context.database();
        await cancelScheduledByPurpose(pool, purposeOf(windowOf(context)), `run:${context.runId}`);
      },
    },
    {
      id: 'email',
      title: 'Send email to all users',
      describe: (context) => [
        `INSERT INTO maintenance_notices (window ${windowOf(context).startsAt.toISOString()}): "${noticeTexts(windowOf(context)).emailSubject}"`,
        `the workers email every user in batches of 100 at ${context.config.maintenance.emailRatePerSecond} per second (${context.config.smtpUrl === undefined ? 'SMTP_URL is not set: to the log' : 'SMTP_URL'}), each user at most once`,
      ],
      async run(context): Promise<JsonObject> {
        const window = windowOf(context);
        const texts = noticeTexts(window);
        const { pool } = await context.database();
        const { notice, created } = await recordMaintenanceNotice(pool, {
          windowStartsAt: window.startsAt,
          windowEndsAt: window.endsAt,
          subject: texts.emailSubject,
          body: texts.emailBody,
          createdBy: runSetter(context),
        });
        await recordAudit(pool, {
          actor: `operator:${context.operator}`,
          action: 'maintenance.announced',
          details: { window: window.startsAt.toISOString(), runId: context.runId },
        });
        context.note(
          created
            ? 'emails queued: the workers send them in batches'
            : `emails for this window were queued before (${notice.status}, ${notice.emailsSent} sent)`,
        );
        return { window: window.startsAt.toISOString(), created };
      },
      async undo(context) {
        const { pool } = await context.database();
        const window = windowOf(context);
        const stopped = await cancelMaintenanceNotice(pool, window.startsAt);
        const notice = await getMaintenanceNotice(pool, window.startsAt);
        context.note(`${stopped ? 'emails stopped' : 'no emails were still to go'}; ${notice?.emailsSent ?? 0} already sent cannot be recalled`);
      },
      async undoInterrupted(context) {
        const { pool } = await context.database();
        await cancelMaintenanceNotice(pool, windowOf(context).startsAt);
      },
    },
    {
      id: 'status-page',
      title: 'Update status page',
      describe: (context) =>
        context.config.statusPageWebhookUrl === undefined
          ? ['STATUS_PAGE_WEBHOOK_URL is not set: update the status page by hand']
          : [`POST STATUS_PAGE_WEBHOOK_URL {"status":"operational","message":"${noticeTexts(windowOf(context)).statusPage}"}`],
      async run(context): Promise<JsonObject> {
        return updateStatusPage(context, 'operational', noticeTexts(windowOf(context)).statusPage);
      },
      async undo(context) {
        await updateStatusPage(context, 'operational', `The scheduled maintenance on ${describeStart(windowOf(context))} is cancelled.`);
      },
    },
  ],
  verification: [
    {
      name: 'the banner is up',
      run: async (context) => {
        const { pool } = await context.database();
        const { banner } = await readAppState(pool);
        return banner?.setBy === `${MAINTENANCE_BANNER_SETTER}${windowOf(context).startsAt.toISOString()}`
          ? { ok: true, detail: `"${banner.message}" until ${banner.until?.toISOString() ?? 'cleared'}` }
          : { ok: false, detail: banner ? `another banner is up: "${banner.message}"` : 'no banner is up' };
      },
    },
    {
      name: 'the emails are queued',
      run: async (context) => {
        const { pool } = await context.database();
        const notice = await getMaintenanceNotice(pool, windowOf(context).startsAt);
        return notice && notice.status !== 'cancelled'
          ? { ok: true, detail: `${notice.status}, ${notice.emailsSent} sent so far` }
          : { ok: false, detail: 'no notice recorded for this window' };
      },
    },
  ],
});

/**
 * The window this run announces: `--at`, else the one the first step fixed (so a resume or a
 * rollback days later means the same window), else the next by MAINTENANCE_WINDOW.
 */
function windowOf(context: Context): MaintenanceWindow {
  const fixed = context.params.at ?? outputOf(context, plan)?.window;
  if (fixed === undefined) return nextWindow(context.config, new Date());
  const at = new Date(fixed);
  if (Number.isNaN(at.getTime())) throw new ShipError('SHIP_ERR_VALIDATION', `--at: "${fixed}" is not a real date and time.`);
  return windowStartingAt(context.config, at);
}

function purposeOf(window: MaintenanceWindow): string {
  return `maintenance:${window.startsAt.toISOString()}`;
}
