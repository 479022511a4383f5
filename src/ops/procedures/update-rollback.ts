/**
 * Runbook: "Rollback Deployment" — for an over-the-air update rather than a store build.
 *
 * When: an update shipped over the air causes critical bugs or a high crash rate. The runbook's
 * "1. Halt current rollout … 3. Re-submit previous version" is one database change here, and
 * it takes effect at every device's next update check (apps check at launch), with no store
 * review:
 *   - an update still rolling out (active or halted): its rollout ends `rolled-back`, and every
 *     device is served the control again (what the channel served before), or — when there was
 *     none — the `rollBackToEmbedded` directive, which returns devices to the update built
 *     into the app;
 *   - an update released to every device: its release is withdrawn, so the channel serves the
 *     release before it (or `rollBackToEmbedded`).
 * Risk high: it changes what every device on the channel runs; a second operator approves.
 *
 * Undo: puts the rollout's status (or the release) back as it was: the update is served again.
 */
import { z } from 'zod';
import { choose, readChannelState, requireUpdate } from '../../domain/updates.ts';
import { planRollback, rollbackUpdate } from '../../domain/update-rollouts.ts';
import { defineProcedure, type JsonObject } from '../engine/types.ts';

const params = z.object({
  update: z.uuid({ message: 'must be an update id (see `shipshape update list`)' }),
  reason: z.string().trim().min(1).max(500).default('rolled back by an operator'),
});

export const updateRollback = defineProcedure({
  id: 'update.rollback',
  command: 'update rollback',
  title: 'Stop serving an over-the-air update: the control, the previous release or the embedded update is served again',
  runbookSection: 'Rollback Deployment',
  whenToUse: 'An update shipped with `shipshape update publish` causes critical bugs or a high crash rate.',
  risk: 'high',
  expectedDuration: 'Immediate; devices switch at their next update check (app launch)',
  issueType: 'application',
  params,
  locks: () => ['updates'],
  prerequisites: [
    {
      name: 'the update is being served',
      run: async (context) => {
        const { pool } = await context.database();
        const plan = await planRollback(pool, context.params.update);
        if (plan.kind === 'nothing') return { ok: false, detail: plan.reason, remedy: '`shipshape update list` shows what each channel serves' };
        return {
          ok: true,
          detail:
            plan.kind === 'rollout'
              ? `rolling out at ${plan.rollout.percent} % (${plan.rollout.status}); afterwards: ${plan.serves}`
              : `released to every device; afterwards: ${plan.serves}`,
        };
      },
    },
  ],
  steps: [
    {
      id: 'stop-serving',
      title: 'Halt the rollout and serve the previous version',
      describe: ({ params: p }) => [
        `UPDATE ota_rollouts SET status = 'rolled-back' WHERE update_id = '${p.update}' AND status IN ('active', 'halted')`,
        `  or, for a released update: UPDATE ota_releases SET rolled_back_at = now() WHERE update_id = '${p.update}' AND rolled_back_at IS NULL`,
        "INSERT INTO audit_log (actor, action, details) VALUES ('operator:<name>', 'update.rolled-back', …)",
        'every API instance serves the change within a second (GET /updates/manifest)',
      ],
      async run(context): Promise<JsonObject> {
        const { pool } = await context.database();
        const plan = await rollbackUpdate(pool, context.params.update, `operator:${context.operator}`, context.params.reason);
        context.note(`now serving ${plan.kind === 'nothing' ? 'as before' : plan.serves}`);
        if (plan.kind === 'rollout') return { kind: 'rollout', rollout: plan.rollout.id, previousStatus: plan.rollout.status };
        return { kind: plan.kind };
      },
      async undo(context, output) {
        const { pool } = await context.database();
        if (output.kind === 'rollout') {
          await pool.query(
            "UPDATE ota_rollouts SET status = $2::text, status_reason = NULL, updated_at = now() WHERE id = $1::uuid AND status = 'rolled-back'",
            [String(output.rollout), String(output.previousStatus)],
          );
        } else {
          await pool.query(
            'UPDATE ota_releases SET rolled_back_at = NULL, rolled_back_by = NULL WHERE id = (SELECT id FROM ota_releases WHERE update_id = $1::uuid AND rolled_back_at IS NOT NULL ORDER BY rolled_back_at DESC LIMIT 1)',
            [context.params.update],
          );
        }
        context.note(`update ${context.params.update} is served again`);
      },
    },
  ],
  verification: [
    {
      name: 'no device is served the update any more',
      run: async (context) => {
        const { pool } = await context.database();
        const update = await requireUpdate(pool, context.params.update);
        const state = await readChannelState(pool, update.channel, update.runtimeVersion);
        const served = choose(state, undefined);
        if (state.rollout?.updateId === update.id || state.headUpdateId === update.id) {
          return {
            ok: false,
            detail: `${update.channel} (runtime ${update.runtimeVersion}) still serves ${update.id}`,
            remedy: '`shipshape update show <id>` shows its rollouts; run the rollback again',
          };
        }
        return {
          ok: true,
          detail: `${update.channel} (runtime ${update.runtimeVersion}) serves ${served.kind === 'update' ? `update ${served.updateId}` : served.kind === 'rollBackToEmbedded' ? 'rollBackToEmbedded' : 'nothing (noUpdateAvailable)'}`,
        };
      },
    },
  ],
});
