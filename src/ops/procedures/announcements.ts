/**
 * How procedures tell people what they do to the app: the in-app banner, a push to every
 * user, the status page, and the name a change is recorded under.
 *
 * Pushes and the status page are best effort: a provider being down is noted in the run,
 * never a reason to undo the change they announce.
 */
import { z } from 'zod';
import { ExpoPushClient } from '../../adapters/expo-push.ts';
import { postStatusPage, type StatusPageState } from '../../adapters/status-page.ts';
import type { Banner } from '../../domain/app-state.ts';
import { ownerLabel, type MaintenanceOwner } from '../../domain/maintenance-switch.ts';
import { createNotificationJob, newRunner, runNotificationJob, type Priority } from '../../domain/notifications.ts';
import { describeError } from '../../errors.ts';
import { currentProcess, liveness } from '../engine/process-identity.ts';
import type { JsonObject, JsonValue, RunContext } from '../engine/types.ts';

/** A run as the owner of a maintenance switch (src/domain/maintenance-switch.ts). */
export function procedureOwner(context: RunContext<unknown>, procedure?: string): MaintenanceOwner {
  return { kind: 'procedure', name: context.operator, runId: context.runId, procedure };
}

/** Who app_state and notification jobs record a run's change as coming from; unique per run. */
export function runSetter(context: RunContext<unknown>): string {
  return ownerLabel(procedureOwner(context));
}

/** A banner as a step's output records it, so that undo can put it back. */
export function bannerJson(banner: Banner | null): z.input<typeof journaledBannerSchema> {
  return banner ? { message: banner.message, until: banner.until?.toISOString() ?? null, setBy: banner.setBy } : null;
}

/** A banner as `bannerJson` journals it (null: there was none). */
export const journaledBannerSchema = z.object({ message: z.string(), until: z.string().nullable(), setBy: z.string().nullable() }).nullable();

/** The banner recorded with `bannerJson`; null when there was none (or the output cannot be read). */
export function journaledBanner(value: JsonValue | undefined): Banner | null {
  const parsed = journaledBannerSchema.safeParse(value ?? null);
  if (!parsed.success || parsed.data === null) return null;
  const { message, until, setBy } = parsed.data;
  return { message, until: until === null ? null : new Date(until), setBy };
}

/**
 * A push to every user with notifications on, recorded as a job keyed by `key` (so a resumed
 * run never sends twice) and sent from this process. `otherwise` says what still tells users
 * when the push cannot go out.
 */
export async function pushToEveryone(
  context: RunContext<unknown>,
  push: { title: string; body: string; priority?: Priority; key: string; otherwise: string },
): Promise<JsonObject> {
  try {
    const { pool } = await context.database();
    const { job } = await createNotificationJob(pool, {
      title: push.title,
      body: push.body,
      priority: push.priority,
      requestedBy: runSetter(context),
      idempotencyKey: push.key,
    });
    const sender = new ExpoPushClient({ pushUrl: context.config.push.expoPushUrl, accessToken: context.config.push.expoAccessToken });
    const done =
      job.status === 'sending'
        ? await runNotificationJob(pool, sender, job.id, {
            runner: newRunner(currentProcess()),
            isGone: (runner) => liveness(runner) === 'dead',
            signal: context.signal,
            logger: context.logger,
          })
        : job;
    context.note(`push ${done.id}: ${done.status}, ${done.recipients} device(s), ${done.chunks.sent}/${done.chunks.total} chunk(s) sent`);
    return { jobId: done.id, status: done.status, recipients: done.recipients, sentChunks: done.chunks.sent, failedChunks: done.chunks.failed };
  } catch (error) {
    const reason = describeError(error);
    context.note(`push NOT sent (${reason}); ${push.otherwise}`);
    return { error: reason };
  }
}

/** Posts to the status page when STATUS_PAGE_WEBHOOK_URL is set. Never throws. */
export async function updateStatusPage(context: RunContext<unknown>, status: StatusPageState, message: string): Promise<JsonObject> {
  const webhookUrl = context.config.statusPageWebhookUrl;
  if (webhookUrl === undefined) {
    context.note('STATUS_PAGE_WEBHOOK_URL is not set: update the status page by hand');
    return { posted: false, reason: 'STATUS_PAGE_WEBHOOK_URL is not set' };
  }
  try {
    await postStatusPage({ webhookUrl }, { status, message });
    context.note(`status page set to ${status}`);
    return { posted: true, status };
  } catch (error) {
    const reason = describeError(error);
    context.note(`status page NOT updated: ${reason} — update it by hand`);
    return { posted: false, status, error: reason };
  }
}
