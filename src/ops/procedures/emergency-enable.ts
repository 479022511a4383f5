/**
 * Runbook: "Emergency App Disable" — Re-enable ("after issue resolved").
 *
 * Reverses each step of `emergency disable`:
 *   1. Maintenance mode off (every API instance serves again within a second).
 *   2. Verify: GET /health answers 200 ok.
 *   3. Resolve the page (dedup key `shipshape-emergency-app-disabled`) and tell #incidents.
 *   4. Status page back to operational (STATUS_PAGE_WEBHOOK_URL, when set).
 *   5. Push the all-clear to every user (`--no-push` to skip).
 *
 * Medium risk (it asks for confirmation): re-opening the app is the way out of an emergency,
 * and must not wait for a second person. Works whoever turned maintenance on; when it is
 * already off, the remaining steps still resolve the page and the status page.
 */
import { z } from 'zod';
import { readAppState } from '../../domain/app-state.ts';
import { announceFrom, switchMaintenance } from '../../domain/maintenance-switch.ts';
import { defineProcedure, outputOf, stepFor } from '../engine/types.ts';
import { procedureOwner, pushToEveryone, updateStatusPage } from './announcements.ts';
import { alertAndReport, EMERGENCY_ISSUE_TYPE, EMERGENCY_LOCK, EMERGENCY_PAGE_KEY, healthCheck, verifyHealth } from './emergency-common.ts';

export const ALL_CLEAR_TITLE = 'We are back';
export const ALL_CLEAR_BODY = 'The app is available again. Thank you for your patience.';

const params = z.object({
  /** Send the all-clear push (default); `--no-push` skips it. */
  push: z.boolean().default(true),
});
type Params = z.output<typeof params>;

// The step whose output the status-page undo reads (listed in `steps` below with the others).
const step = stepFor<Params>();

const maintenanceOff = step({
  id: 'maintenance-off',
  title: 'Disable maintenance mode',
  output: z.object({ previousEnabled: z.boolean(), previousMessage: z.string().nullable(), previousSetBy: z.string().nullable() }),
  describe: () => [
    "UPDATE app_state SET maintenance_enabled = false, maintenance_message = NULL, maintenance_set_by = 'operator:<name> (run <id>)'",
    "INSERT INTO audit_log (actor, action, details) VALUES ('operator:<name>', 'admin.maintenance.disabled', {runId})",
  ],
  async run(context) {
    const { pool } = await context.database();
    const { previous } = await switchMaintenance(pool, { enabled: false, owner: procedureOwner(context) }, announceFrom(context.config, context.logger));
    if (previous.enabled) {
      context.note('maintenance OFF: the app serves users again');
    } else context.note('maintenance was already off');
    return { previousEnabled: previous.enabled, previousMessage: previous.message, previousSetBy: previous.setBy };
  },
  async undo(context, output) {
    if (!output.previousEnabled) return;
    const { pool } = await context.database();
    const now = (await readAppState(pool)).maintenance;
    if (now.enabled) {
      context.note(`maintenance was turned on again meanwhile (by ${now.setBy ?? '?'}): left as it is`);
      return;
    }
    const { previousMessage: message, previousSetBy: setBy } = output;
    await switchMaintenance(
      pool,
      { enabled: true, message, owner: procedureOwner(context), restoring: { setBy } },
      announceFrom(context.config, context.logger),
    );
    context.note(`maintenance back ON: "${message ?? ''}"`);
  },
});

export const emergencyEnable = defineProcedure({
  id: 'emergency.enable',
  command: 'emergency enable',
  title: 'Re-enable the app after an emergency disable',
  runbookSection: 'Emergency App Disable',
  whenToUse: 'After the issue that made you disable the app is resolved (or to clear maintenance mode left on).',
  risk: 'medium',
  expectedDuration: '2 minutes',
  issueType: EMERGENCY_ISSUE_TYPE,
  alertChannels: ['#incidents'],
  params,
  locks: () => [EMERGENCY_LOCK],
  prerequisites: [
    {
      name: 'what is shown now',
      run: async (context) => {
        const { pool } = await context.database();
        const { maintenance } = await readAppState(pool);
        return {
          ok: true,
          detail: maintenance.enabled
            ? `maintenance on since ${maintenance.since?.toISOString() ?? '?'}, set by ${maintenance.setBy ?? '?'}: "${maintenance.message ?? ''}"`
            : 'maintenance is already off: the page and the status page are still brought up to date',
        };
      },
    },
  ],
  steps: [
    maintenanceOff,
    {
      id: 'verify-health',
      title: 'Verify the API serves again (GET /health)',
      describe: ({ config }) => [`GET ${new URL('/health', config.apiUrl).toString()}   -- expect 200 {"status":"ok"}, within 5 s`],
      run: (context) => verifyHealth(context, { maintenance: false }, 'The API does not serve again'),
    },
    {
      id: 'resolve-page',
      title: 'Resolve the page and tell #incidents',
      describe: () => [`PagerDuty resolve, dedup_key ${EMERGENCY_PAGE_KEY}`, 'alert (info) "App re-enabled" to #incidents'],
      async run(context) {
        const sent = await alertAndReport(context, {
          issueType: EMERGENCY_ISSUE_TYPE,
          severity: 'warning',
          event: 'emergency.app-enabled',
          title: 'App re-enabled',
          text: `The app is serving users again. Re-enabled by ${context.operator} at ${new Date().toISOString()} (run ${context.runId}).`,
          channelHints: ['#incidents'],
          page: 'resolve',
          dedupKey: EMERGENCY_PAGE_KEY,
          details: { runId: context.runId, operator: context.operator },
        });
        context.note(`page resolved (${sent.summary})`);
        return sent.output;
      },
      async undo(context) {
        const sent = await alertAndReport(context, {
          issueType: EMERGENCY_ISSUE_TYPE,
          severity: 'critical',
          event: 'emergency.app-disabled',
          title: 'EMERGENCY: App disabled again',
          text: `Re-enabling (run ${context.runId}) failed and was rolled back: users see the maintenance screen again.`,
          channelHints: ['#incidents'],
          page: 'trigger',
          dedupKey: EMERGENCY_PAGE_KEY,
          details: { runId: context.runId },
        });
        context.note(`page re-opened (${sent.summary})`);
      },
    },
    {
      id: 'status-page',
      title: 'Update the status page',
      describe: ({ config }) =>
        config.statusPageWebhookUrl
          ? [`POST <STATUS_PAGE_WEBHOOK_URL> {"status":"operational","message":"The app is available again."}`]
          : ['STATUS_PAGE_WEBHOOK_URL is not set: nothing to post (update it by hand)'],
      run: (context) => updateStatusPage(context, 'operational', 'The app is available again.'),
      async undo(context, output) {
        const before = outputOf(context, maintenanceOff);
        if (output.posted === true && before?.previousEnabled === true) {
          await updateStatusPage(context, 'maintenance', before.previousMessage ?? 'Maintenance in progress.');
        }
      },
    },
    {
      id: 'push-users',
      title: 'Tell users the app is back',
      describe: ({ params: p }) =>
        p.push
          ? [`push {"title":"${ALL_CLEAR_TITLE}","body":"${ALL_CLEAR_BODY}","priority":"default"} to every active device with notifications on`]
          : ['--no-push: no push'],
      async run(context) {
        if (!context.params.push) return { skipped: true };
        return pushToEveryone(context, {
          title: ALL_CLEAR_TITLE,
          body: ALL_CLEAR_BODY,
          priority: 'default',
          key: `emergency.enable:${context.runId}`,
          otherwise: 'the app itself shows it is open again',
        });
      },
      async undo(context) {
        context.note('the push that went out cannot be recalled');
      },
    },
  ],
  verification: [
    {
      name: 'maintenance is off',
      run: async (context) => {
        const { pool } = await context.database();
        const { maintenance } = await readAppState(pool);
        return maintenance.enabled
          ? {
              ok: false,
              detail: `maintenance is on again, set by ${maintenance.setBy ?? '?'}`,
              remedy: 'someone turned it on meanwhile: check `shipshape audit --action admin.maintenance.`',
            }
          : { ok: true, detail: 'app_state: maintenance off' };
      },
    },
    {
      name: 'GET /health answers 200 ok',
      run: (context) => healthCheck(context, { maintenance: false }),
    },
  ],
});
