/**
 * Runbook: "Deploy New Version", Rollback "Option 1: Halt rollout" — and its way back:
 * `shipshape release halt|resume|complete <platform>` on the release rolling out (or halted).
 *
 *   1. Set the store's rollout: Play `halted` / `inProgress` at the recorded fraction /
 *      `completed`; App Store phased release `PAUSED` / `ACTIVE` / `COMPLETE`.
 *   2. Record it (release_rollouts; the release is `halted` while any platform is, and
 *      `completed` once both are). Resuming puts the next gated step a step interval away.
 *   Verify: the store reports the new state.
 * Undo puts the store back to the state it had.
 */
import { z } from 'zod';
import { recordAudit } from '../../domain/audit.ts';
import { getRelease, recordRollout, scheduleNextStep, setReleaseState, type RolloutStatus } from '../../domain/releases.ts';
import { ShipError } from '../../errors.ts';
import { RELEASE_ISSUE_TYPE } from '../release/rollout.ts';
import { readRollout, setRolloutStatus } from '../release/stores.ts';
import { defineProcedure, requireOutput, stepFor, type Procedure, type RunContext } from '../engine/types.ts';
import { credentialsCheck, percent, platformParam, RELEASE_LOCK, rolloutInHand } from './release-common.ts';

const params = z.object({ platform: platformParam });
type Params = z.output<typeof params>;
type Context = RunContext<Params>;

const words: Record<RolloutStatus, { verb: string; play: string; apple: string }> = {
  halted: { verb: 'halt', play: 'halted', apple: 'PAUSED' },
  inProgress: { verb: 'resume', play: 'inProgress', apple: 'ACTIVE' },
  completed: { verb: 'complete', play: 'completed', apple: 'COMPLETE' },
};

async function setAndRecord(context: Context, version: string, status: RolloutStatus): Promise<{ fraction: number }> {
  const { pool } = await context.database();
  const release = await getRelease(pool, version);
  const result = await setRolloutStatus(context.config, release, context.params.platform, status);
  await recordRollout(pool, version, { ...result, updatedBy: `operator:${context.operator}` });
  const after = await getRelease(pool, version);
  const state = after.rollouts.every((r) => r.status === 'completed')
    ? 'completed'
    : after.rollouts.some((r) => r.status === 'halted')
      ? 'halted'
      : 'rolling-out';
  await setReleaseState(pool, version, state);
  if (state === 'rolling-out') await scheduleNextStep(pool, version, new Date(Date.now() + context.config.release.stepIntervalMs));
  return { fraction: result.fraction };
}

export function rolloutControl(status: RolloutStatus, extra: { title: string; whenToUse: string; risk: 'low' | 'medium' }): Procedure<typeof params> {
  const { verb, play, apple } = words[status];
  // The step whose output the check reads (listed in `steps` below).
  const set = stepFor<Params>()({
    id: 'set',
    output: z.object({ version: z.string(), previousStatus: z.string() }),
    title: `${verb[0]!.toUpperCase()}${verb.slice(1)} the rollout in the store`,
    describe: ({ params: p }) => [
      p.platform === 'android'
        ? `Google Play: edits.insert → PUT edits/{id}/tracks/production {"status":"${play}"} → edits.commit`
        : `App Store Connect: PATCH /v1/appStoreVersionPhasedReleases/{id} {"phasedReleaseState":"${apple}"}`,
    ],
    async run(context) {
      const { pool } = await context.database();
      const release = await rolloutInHand(pool);
      const before = release.rollouts.find((r) => r.platform === context.params.platform);
      if (before === undefined) throw new ShipError('SHIP_ERR_STEP_FAILED', `release ${release.version} has no ${context.params.platform} rollout.`);
      const { fraction } = await setAndRecord(context, release.version, status);
      await recordAudit(pool, {
        actor: `operator:${context.operator}`,
        action: `release.${verb}`,
        details: { version: release.version, platform: context.params.platform, runId: context.runId },
      });
      context.note(`${context.params.platform}: ${status} at ${percent(fraction)}`);
      return { version: release.version, previousStatus: before.status };
    },
    async undo(context, output) {
      await setAndRecord(context, output.version, output.previousStatus === 'halted' ? 'halted' : 'inProgress');
      context.note(`${context.params.platform}: back to ${output.previousStatus}`);
    },
  });
  return defineProcedure({
    id: `release.${verb}`,
    command: `release ${verb}`,
    title: extra.title,
    runbookSection: 'Deploy New Version',
    whenToUse: extra.whenToUse,
    risk: extra.risk,
    expectedDuration: '1 minute',
    issueType: RELEASE_ISSUE_TYPE,
    params,
    locks: () => [RELEASE_LOCK],
    prerequisites: [
      {
        name: `the platform's rollout can be ${status === 'inProgress' ? 'resumed' : status === 'halted' ? 'halted' : 'completed'}`,
        run: async (context) => {
          const { pool } = await context.database();
          const release = await rolloutInHand(pool);
          const rollout = release.rollouts.find((r) => r.platform === context.params.platform);
          if (rollout === undefined)
            return {
              ok: false,
              detail: `release ${release.version} has no ${context.params.platform} rollout`,
              remedy: '`shipshape release status` shows the rollouts',
            };
          if (rollout.status === status)
            return {
              ok: false,
              detail: `${context.params.platform} is already ${status} at ${percent(rollout.fraction)} (${release.version})`,
              remedy: 'nothing to do',
            };
          if (rollout.status === 'completed')
            return {
              ok: false,
              detail: `${context.params.platform} already completed (${release.version})`,
              remedy: 'a completed rollout cannot be changed; `shipshape release rollback` if it must be replaced',
            };
          return { ok: true, detail: `${release.version} ${context.params.platform}: ${rollout.status} at ${percent(rollout.fraction)} → ${status}` };
        },
      },
      { name: 'store credentials are present', run: ({ config, params: p }) => credentialsCheck(config, [p.platform]) },
    ],
    steps: [set],
    verification: [
      {
        name: 'the store reports the new state',
        run: async (context) => {
          const { pool } = await context.database();
          const release = await getRelease(pool, requireOutput(context, set).version);
          const seen = await readRollout(context.config, release, context.params.platform);
          return seen.status === status
            ? { ok: true, detail: `${seen.status} at ${percent(seen.fraction)}` }
            : { ok: false, detail: `the store reports ${seen.status}`, remedy: 'look at the rollout in the store console' };
        },
      },
    ],
  });
}
