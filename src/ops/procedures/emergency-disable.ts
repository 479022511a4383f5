/**
 * Runbook: "Emergency App Disable".
 *
 * When: a critical security vulnerability or a data breach — every user is locked out (high
 * risk, so a second operator approves: `shipshape approve <run-id>`).
 *
 *   1. Enable maintenance mode with the message (in the database, so every API instance
 *      answers 503 with it within a second; the app shows it from GET /config).
 *   2. Verify maintenance mode: GET /health answers 503 with the message.
 *   3. Notify stakeholders: #incidents, and page the Security on-call (PagerDuty, dedup key
 *      `shipshape-emergency-app-disabled`, which `emergency enable` resolves).
 *   4. Update the status page (STATUS_PAGE_WEBHOOK_URL, when set).
 *   5. Send a high-priority push notification to every user.
 *
 * Steps 3-5 are best effort: a provider being down is noted, never a reason to turn the
 * maintenance screen back off. Rollback (when step 2 cannot see the change) puts back the
 * maintenance state that was there before. The way back afterwards is `emergency enable`.
 */
import { z } from 'zod';
import { readAppState } from '../../domain/app-state.ts';
import { announceFrom, switchMaintenance } from '../../domain/maintenance-switch.ts';
import { defineProcedure, type JsonObject, type RunContext } from '../engine/types.ts';
import { procedureOwner, pushToEveryone, runSetter, updateStatusPage } from './announcements.ts';
import { alertAndReport, EMERGENCY_ISSUE_TYPE, EMERGENCY_LOCK, EMERGENCY_PAGE_KEY, healthCheck, verifyHealth } from './emergency-common.ts';

export const DEFAULT_EMERGENCY_MESSAGE = 'Emergency maintenance in progress. We will be back shortly.';
export const EMERGENCY_PUSH_TITLE = 'Temporary Maintenance';

const params = z.object({
  /** What users see on the maintenance screen and in the push. */
  message: z.string().trim().min(1, 'must not be empty').max(500, 'must be at most 500 characters').default(DEFAULT_EMERGENCY_MESSAGE),
});
type Params = z.output<typeof params>;
type Context = RunContext<Params>;

export const emergencyDisable = defineProcedure({
  id: 'emergency.disable',
  command: 'emergency disable',
  title: 'Emergency app disable: maintenance on, stakeholders paged, users told',
  runbookSection: 'Emergency App Disable',
  whenToUse: 'Critical security vulnerability, data breach: lock every user out now.',
  risk: 'high',
  expectedDuration: '5 minutes',
  issueType: EMERGENCY_ISSUE_TYPE,
  alertChannels: ['#incidents'],
  params,
  locks: () => [EMERGENCY_LOCK],
  prerequisites: [
    {
      name: 'the maintenance state can be read',
      run: async (context) => {
        const { pool } = await context.database();
        const { maintenance } = await readAppState(pool);
        return {
          ok: true,
          detail: maintenance.enabled
            ? `maintenance is already on ("${maintenance.message ?? ''}", set by ${maintenance.setBy ?? '?'}): the message is replaced, and put back if this run rolls back`
            : 'maintenance is off: the app is serving users',
        };
      },
    },
    {
      name: 'who will hear about it',
      run: async ({ config }) => ({
        ok: true,
        detail: [
          config.alerts.pagerDutyRoutingKey || config.alerts.routingFile
            ? 'PagerDuty page per the routing'
            : 'no PAGERDUTY_ROUTING_KEY or routing file: the page goes to the log only',
          config.alerts.slackWebhookUrl || config.alerts.routingFile ? '#incidents on Slack' : 'no Slack webhook: #incidents gets it in the log only',
          config.statusPageWebhookUrl ? 'status page webhook' : 'no STATUS_PAGE_WEBHOOK_URL: update the status page by hand',
        ].join('; '),
      }),
    },
  ],
  steps: [
    {
      id: 'maintenance-on',
      title: 'Enable maintenance mode',
      describe: ({ params: p }) => [
        `UPDATE app_state SET maintenance_enabled = true, maintenance_message = '${p.message}', maintenance_set_by = 'operator:<name> (run <id>)'`,
        "INSERT INTO audit_log (actor, action, details) VALUES ('operator:<name>', 'admin.maintenance.enabled', {message, runId})",
        'the app_state trigger NOTIFYs every API instance (and Redis pub/sub when REDIS_URL is set): all answer 503 within a second',
      ],
      async run(context): Promise<JsonObject> {
        const { pool } = await context.database();
        const message = context.params.message;
        const before = (await readAppState(pool)).maintenance;
        // A resumed run finds its own change: what was there before it is not known any more, and was almost certainly "off".
        const ours = before.enabled && before.setBy === runSetter(context);
        const { previous } = await switchMaintenance(
          pool,
          { enabled: true, message, owner: procedureOwner(context), details: { emergency: true } },
          announceFrom(context.config, context.logger),
        );
        context.note(`maintenance ON: "${message}"`);
        return ours
          ? { previousEnabled: false, previousMessage: null, previousSetBy: null, resumed: true }
          : { previousEnabled: previous.enabled, previousMessage: previous.message, previousSetBy: previous.setBy };
      },
      async undo(context, output) {
        await putBackMaintenance(context, output);
      },
      async undoInterrupted(context) {
        await putBackMaintenance(context, { previousEnabled: false, previousMessage: null, previousSetBy: null });
      },
    },
    {
      id: 'verify-health',
      title: 'Verify maintenance mode (GET /health)',
      describe: ({ config, params: p }) => [
        `GET ${new URL('/health', config.apiUrl).toString()}   -- expect 503 {"status":"maintenance","message":"${p.message}"}, within 5 s`,
      ],
      // Reads only.
      run: (context) => verifyHealth(context, { maintenance: true, message: context.params.message }, 'The API does not show maintenance mode'),
    },
    {
      id: 'notify-incidents',
      title: 'Notify stakeholders: #incidents and page the on-call',
      describe: () => [
        `alert (critical, ${EMERGENCY_ISSUE_TYPE}) "EMERGENCY: App disabled" to #incidents and the issue type's channels`,
        `PagerDuty trigger, dedup_key ${EMERGENCY_PAGE_KEY} (resolved by \`shipshape emergency enable\`)`,
      ],
      async run(context) {
        const { params: p, operator, runId } = context;
        const sent = await alertAndReport(context, {
          issueType: EMERGENCY_ISSUE_TYPE,
          severity: 'critical',
          event: 'emergency.app-disabled',
          title: 'EMERGENCY: App disabled',
          text: `Every user now sees: "${p.message}"\nDisabled by ${operator} at ${new Date().toISOString()} (run ${runId}).\nTo re-enable: shipshape emergency enable`,
          channelHints: ['#incidents'],
          page: 'trigger',
          dedupKey: EMERGENCY_PAGE_KEY,
          details: { runId, operator },
        });
        context.note(
          sent.paged
            ? `paged the on-call (${sent.summary})`
            : `the on-call was NOT paged: ${sent.output.pagerDutyConfigured ? 'PagerDuty refused' : 'no PagerDuty routing key configured'} — call them (${sent.summary})`,
        );
        return sent.output;
      },
      async undo(context) {
        const sent = await alertAndReport(context, {
          issueType: EMERGENCY_ISSUE_TYPE,
          severity: 'warning',
          event: 'emergency.app-disable-rolled-back',
          title: 'Emergency app disable rolled back',
          text: `Run ${context.runId} could not complete and was rolled back; the app is serving users again. The page is resolved.`,
          channelHints: ['#incidents'],
          page: 'resolve',
          dedupKey: EMERGENCY_PAGE_KEY,
          details: { runId: context.runId },
        });
        context.note(`page resolved (${sent.summary})`);
      },
    },
    {
      id: 'status-page',
      title: 'Update the status page',
      describe: ({ config, params: p }) =>
        config.statusPageWebhookUrl
          ? [`POST <STATUS_PAGE_WEBHOOK_URL> {"status":"maintenance","message":"${p.message}"}`]
          : ['STATUS_PAGE_WEBHOOK_URL is not set: nothing to post (update it by hand)'],
      run: (context) => updateStatusPage(context, 'maintenance', context.params.message),
      async undo(context, output) {
        if (output.posted === true) await updateStatusPage(context, 'operational', 'The app is available again.');
      },
    },
    {
      id: 'push-users',
      title: 'Send a push notification to users',
      describe: ({ config, params: p }) => [
        `push {"title":"${EMERGENCY_PUSH_TITLE}","body":"${p.message}","priority":"high"} to every active device with notifications on (notification_jobs; Expo at ${new URL(config.push.expoPushUrl).origin})`,
      ],
      run: (context) =>
        pushToEveryone(context, {
          title: EMERGENCY_PUSH_TITLE,
          body: context.params.message,
          priority: 'high',
          key: `emergency.disable:${context.runId}`,
          otherwise: 'the in-app maintenance screen still tells users',
        }),
      // A push that went out cannot be recalled; `emergency enable` sends the all-clear.
      async undo(context) {
        context.note('the push that went out cannot be recalled');
      },
    },
  ],
  verification: [
    {
      name: 'maintenance is on with the message',
      run: async (context) => {
        const { pool } = await context.database();
        const { maintenance } = await readAppState(pool);
        return maintenance.enabled && maintenance.message === context.params.message
          ? { ok: true, detail: `app_state: maintenance on since ${maintenance.since?.toISOString() ?? '?'}` }
          : {
              ok: false,
              detail: `app_state: maintenance ${maintenance.enabled ? `on with "${maintenance.message ?? ''}"` : 'off'}`,
              remedy: 'someone changed it meanwhile: check `shipshape audit --action admin.maintenance.`',
            };
      },
    },
    {
      name: 'GET /health answers 503 with the message',
      run: (context) => healthCheck(context, { maintenance: true, message: context.params.message }),
    },
  ],
});

/** Puts back the maintenance state from before the run, unless someone has changed it since. */
async function putBackMaintenance(context: Context, output: JsonObject): Promise<void> {
  const { pool } = await context.database();
  const now = (await readAppState(pool)).maintenance;
  if (!now.enabled || now.setBy !== runSetter(context)) {
    context.note(`maintenance was changed since (${now.enabled ? `on, set by ${now.setBy ?? '?'}` : 'off'}): left as it is`);
    return;
  }
  const previousMessage = typeof output.previousMessage === 'string' ? output.previousMessage : null;
  const owner = procedureOwner(context);
  const announce = announceFrom(context.config, context.logger);
  if (output.previousEnabled === true) {
    const setBy = typeof output.previousSetBy === 'string' ? output.previousSetBy : null;
    await switchMaintenance(pool, { enabled: true, message: previousMessage, owner, restoring: { setBy } }, announce);
    context.note(`maintenance message put back: "${previousMessage ?? ''}"`);
  } else {
    await switchMaintenance(pool, { enabled: false, owner, restoring: { setBy: null } }, announce);
    context.note('maintenance OFF again');
  }
}
