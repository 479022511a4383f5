/**
 * Runbook: "Rollback Deployment" — `shipshape release rollback`.
 *
 * When: critical bugs, high crash rate in the release rolling out. High risk: a second
 * operator approves (`shipshape approve <run-id>`).
 *
 *   1. Halt current rollout: Play `halted`, App Store phased release `PAUSED`.
 *   2. Identify last stable version: the newest release record that completed and was not
 *      rolled back (a prerequisite names it before anything changes).
 *   3. Re-submit previous version: `eas submit --platform ios|android --id <its build>`.
 *   4. Request expedited review: App Store Connect has no API for it, so the run prints the
 *      exact steps; `shipshape release review-requested <version>` records who did them.
 *   5. Notify users: the in-app notice (GET /config `banner`; `minimumAppVersion` is left alone,
 *      since it would force users onto the bad version's successors, not away from it), a push,
 *      email (rate-limited batches, as maintenance notices), the status page — with the
 *      runbook's message by default; and page the Application on-call.
 *   6. Monitor: the crash-free rate of the previous version is read and compared with the bad
 *      one's; `shipshape release status` keeps watching.
 *
 * Rollback of this run: the halted rollouts resume, the notice comes down and the emails not
 * yet sent are cancelled. Re-submissions stay in the stores unreleased; pushes sent stay sent.
 */
import { z } from 'zod';
import { readAppState, setBanner } from '../../domain/app-state.ts';
import { recordAudit } from '../../domain/audit.ts';
import { cancelMaintenanceNotice, recordMaintenanceNotice } from '../../domain/maintenance-notices.ts';
import {
  currentRollout,
  getRelease,
  lastStableRelease,
  platforms,
  recordRollout,
  setReleaseState,
  type Platform,
  type Release,
} from '../../domain/releases.ts';
import { describeError, ShipError } from '../../errors.ts';
import { announceAppStateChange } from '../../domain/app-state-announce.ts';
import { Eas } from '../release/eas.ts';
import { evaluateGates, gateSettings } from '../release/gates.ts';
import { haltAll, RELEASE_ISSUE_TYPE, sendAlert } from '../release/rollout.ts';
import { setRolloutStatus } from '../release/stores.ts';
import { defineProcedure, outputOf, requireOutput, stepFor, unverified, type JsonObject, type RunContext } from '../engine/types.ts';
import { bannerJson, journaledBanner, pushToEveryone, runSetter, updateStatusPage } from './announcements.ts';
import { appRepoDir, credentialsCheck, percent, RELEASE_LOCK } from './release-common.ts';

/** The runbook's user notification, verbatim. */
export const DEFAULT_ROLLBACK_MESSAGE =
  "We've identified an issue in the latest update. We're rolling back to the previous version while we fix it. You may be asked to update again shortly.";

export const EXPEDITED_REVIEW_STEPS = [
  'App Store: open https://developer.apple.com/contact/app-store/?topic=expedite , choose "Request an expedited app review",',
  '  name the app and the version re-submitted, and give the reason: "critical bug in the current release; rolling back".',
  'Google Play: nothing to request (updates are usually reviewed within hours); watch Play Console > Publishing overview.',
  'Then record it: shipshape release review-requested <version>',
];

const params = z.object({
  message: z.string().trim().min(1, 'must not be empty').max(500, 'must be at most 500 characters').default(DEFAULT_ROLLBACK_MESSAGE),
});
type Params = z.output<typeof params>;
type Context = RunContext<Params>;

async function releases(context: Context): Promise<{ bad: Release; stable: Release }> {
  const { pool } = await context.database();
  const recordedBad = outputOf(context, halt)?.version;
  const bad = recordedBad !== undefined ? await getRelease(pool, recordedBad) : await currentRollout(pool);
  if (bad === undefined)
    throw new ShipError(
      'SHIP_ERR_PREREQUISITE_FAILED',
      'No release is rolling out or halted, so there is nothing to roll back. `shipshape release list` shows the releases.',
    );
  const stable = await lastStableRelease(pool, bad.version);
  if (stable === undefined)
    throw new ShipError(
      'SHIP_ERR_PREREQUISITE_FAILED',
      `No earlier release completed its rollout, so there is no stable version to return to from ${bad.version}. Halt with \`shipshape release halt <platform>\` and ship a fix with \`shipshape release deploy --bump patch\`.`,
    );
  return { bad, stable };
}

// The steps whose outputs later steps and checks read (listed in `steps` below with the others).
const step = stepFor<Params>();

const halt = step({
  id: 'halt',
  title: 'Halt current rollout',
  output: z.object({ version: z.string(), wasInProgress: z.array(z.enum(platforms)) }),
  describe: () => [
    'Google Play: edits.insert → tracks.update production {"status":"halted"} → edits.commit',
    'App Store Connect: PATCH /v1/appStoreVersionPhasedReleases/{id} {"phasedReleaseState":"PAUSED"}',
  ],
  async run(context) {
    const { pool } = await context.database();
    const { bad } = await releases(context);
    const wasInProgress = bad.rollouts.filter((r) => r.status === 'inProgress').map((r) => r.platform);
    const { rollouts, errors } = await haltAll({ config: context.config, db: pool, actor: runSetter(context) }, bad);
    for (const r of rollouts) context.note(`${r.platform}: halted at ${percent(r.fraction)}`);
    if (errors.length > 0)
      throw new ShipError(
        'SHIP_ERR_STEP_FAILED',
        `not every rollout could be halted: ${errors.join('; ')}. ${rollouts.map((r) => `${r.platform} is halted`).join('; ')}`,
      );
    await setReleaseState(pool, bad.version, 'halted');
    return { version: bad.version, wasInProgress };
  },
  async undo(context, output) {
    const { pool } = await context.database();
    const release = await getRelease(pool, output.version);
    for (const platform of platforms.filter((p) => output.wasInProgress.includes(p))) {
      const resumed = await setRolloutStatus(context.config, release, platform, 'inProgress');
      await recordRollout(pool, release.version, { ...resumed, updatedBy: runSetter(context) });
      context.note(`${platform}: rollout resumed at ${percent(resumed.fraction)}`);
    }
    await setReleaseState(pool, release.version, 'rolling-out');
  },
});

/** Step 2, once per platform: the previous (stable) version's build, submitted again. */
function resubmitStep(platform: Platform) {
  return step({
    id: `resubmit-${platform}`,
    title: `Re-submit previous version (${platform})`,
    output: z.object({ version: z.string(), buildId: z.string(), submissionId: z.string().nullable() }),
    describe: (context) => [
      new Eas(context.config.release.easBin, context.config.release.appRepoDir ?? '.').line([
        'submit',
        '--platform',
        platform,
        '--id',
        '$PREVIOUS_BUILD_ID',
        '--profile',
        'production',
        '--non-interactive',
        '--wait',
      ]),
    ],
    async run(context) {
      const { stable } = await releases(context);
      const buildId = stable.builds[platform]?.id;
      if (buildId === undefined) throw new ShipError('SHIP_ERR_STEP_FAILED', `release ${stable.version} has no ${platform} build recorded.`);
      const { submissionId } = await new Eas(context.config.release.easBin, appRepoDir(context.config)).submit(platform, buildId, context.signal);
      context.note(`${platform}: ${stable.version} build ${buildId} re-submitted (submission ${submissionId ?? 'id not printed'})`);
      return { version: stable.version, buildId, submissionId };
    },
    async undo(context) {
      context.note(`the ${platform} re-submission stays in the store; it replaces nothing until it is released`);
    },
  });
}
const resubmit = { ios: resubmitStep('ios'), android: resubmitStep('android') };

export const releaseRollback = defineProcedure({
  id: 'release.rollback',
  command: 'release rollback',
  title: 'Roll back a release: halt its rollout, re-submit the last stable builds, tell users, page',
  runbookSection: 'Rollback Deployment',
  whenToUse: 'Critical bugs, high crash rate in the release rolling out.',
  risk: 'high',
  expectedDuration: '15-30 minutes',
  issueType: RELEASE_ISSUE_TYPE,
  params,
  locks: () => [RELEASE_LOCK],
  prerequisites: [
    {
      name: 'a release is rolling out and an earlier one is stable',
      run: async (context) => {
        const { bad, stable } = await releases(context);
        const builds = platforms.map((p) => `${p} ${stable.builds[p]?.id ?? 'NONE'}`).join(', ');
        const missing = platforms.filter((p) => stable.builds[p] === undefined);
        if (missing.length > 0)
          return {
            ok: false,
            detail: `stable release ${stable.version} has no ${missing.join('/')} build recorded`,
            remedy: 'find the build on expo.dev (`eas build:list`) and submit it by hand with `eas submit --id`',
          };
        return { ok: true, detail: `rolling back ${bad.version} (${bad.state}) to ${stable.version} (builds ${builds})` };
      },
    },
    { name: 'store credentials are present', run: ({ config }) => credentialsCheck(config) },
    {
      name: 'eas-cli can run in the app repository',
      run: async ({ config }) =>
        config.release.appRepoDir === undefined
          ? { ok: false, detail: 'APP_REPO_DIR is not set', remedy: 'set APP_REPO_DIR (eas submit runs in the app project)' }
          : { ok: true, detail: `${config.release.easBin} in ${config.release.appRepoDir}` },
    },
  ],
  steps: [
    halt,
    ...platforms.map((platform) => resubmit[platform]),
    {
      id: 'expedited-review',
      title: 'Request expedited review (by a person: no API)',
      describe: () => EXPEDITED_REVIEW_STEPS,
      async run(context): Promise<JsonObject> {
        const { stable } = await releases(context);
        for (const line of EXPEDITED_REVIEW_STEPS) context.note(line.replace('<version>', stable.version));
        const { pool } = await context.database();
        await recordAudit(pool, {
          actor: runSetter(context),
          action: 'release.expedited-review.pending',
          details: { version: stable.version, runId: context.runId },
        });
        return { version: stable.version, requested: false, recordWith: `shipshape release review-requested ${stable.version}` };
      },
      async undo(context) {
        context.note('if an expedited review was requested, withdraw it in App Store Connect');
      },
    },
    {
      id: 'notice',
      title: 'Notify users: in-app notice (GET /config banner)',
      describe: ({ params: p }) => [`UPDATE app_state SET banner_message = '${p.message}', banner_until = now() + 7 days   -- served in GET /config`],
      async run(context): Promise<JsonObject> {
        const { pool } = await context.database();
        const { previous } = await setBanner(pool, {
          message: context.params.message,
          until: new Date(Date.now() + 7 * 86_400_000),
          setBy: runSetter(context),
        });
        await announceAppStateChange(context.config, context.logger);
        context.note('in-app notice up (GET /config banner)');
        return { previousBanner: bannerJson(previous) };
      },
      async undo(context, output) {
        const { pool } = await context.database();
        const now = (await readAppState(pool)).banner;
        if (now?.setBy !== runSetter(context)) return context.note('the banner was changed since: left as it is');
        const previous = journaledBanner(output.previousBanner);
        await setBanner(
          pool,
          previous
            ? { message: previous.message, until: previous.until, setBy: previous.setBy ?? runSetter(context) }
            : { message: null, until: null, setBy: runSetter(context) },
        );
        await announceAppStateChange(context.config, context.logger);
        context.note('in-app notice taken down');
      },
    },
    {
      id: 'push',
      title: 'Notify users: push',
      describe: ({ params: p }) => [`push {"title":"We're rolling back the latest update","body":"${p.message}"} to every device with notifications on`],
      run: (context) =>
        pushToEveryone(context, {
          title: "We're rolling back the latest update",
          body: context.params.message,
          key: `release.rollback:${context.runId}`,
          otherwise: 'the in-app notice still tells users',
        }),
      async undo(context) {
        context.note('the push that went out cannot be recalled');
      },
    },
    {
      id: 'email',
      title: 'Notify users: email (rate-limited batches)',
      describe: ({ config }) => [
        `INSERT INTO maintenance_notices (window_starts_at = now(), subject, body)   -- the workers email every user at ${config.maintenance.emailRatePerSecond}/s (MAINTENANCE_EMAIL_RATE)`,
      ],
      async run(context): Promise<JsonObject> {
        const { pool } = await context.database();
        const startsAt = new Date();
        startsAt.setMilliseconds(0);
        const { notice } = await recordMaintenanceNotice(pool, {
          windowStartsAt: startsAt,
          windowEndsAt: new Date(startsAt.getTime() + 3_600_000),
          subject: 'We are rolling back the latest app update',
          body: context.params.message,
          createdBy: runSetter(context),
        });
        context.note(`emails queued (notice ${notice.windowStartsAt.toISOString()}): the workers send them in rate-limited batches`);
        return { noticeAt: notice.windowStartsAt.toISOString() };
      },
      async undo(context, output) {
        const { pool } = await context.database();
        const cancelled = await cancelMaintenanceNotice(pool, new Date(String(output.noticeAt)));
        context.note(cancelled ? 'emails not yet sent are cancelled' : 'the emails had all gone out');
      },
    },
    {
      id: 'status-page',
      title: 'Notify users: status page',
      describe: ({ config }) =>
        config.statusPageWebhookUrl
          ? ['POST <STATUS_PAGE_WEBHOOK_URL> {"status":"operational","message":"<the message>"}']
          : ['STATUS_PAGE_WEBHOOK_URL is not set: nothing to post'],
      // The API keeps serving: the status is operational, the message says what is happening to the app.
      run: (context) => updateStatusPage(context, 'operational', context.params.message),
      async undo(context, output) {
        if (output.posted === true) await updateStatusPage(context, 'operational', 'The rollback was called off; the current app version stays available.');
      },
    },
    {
      id: 'page',
      title: 'Page the Application on-call',
      describe: () => ['alert (critical, application) "Release rolled back", PagerDuty trigger'],
      async run(context): Promise<JsonObject> {
        const { bad, stable } = await releases(context);
        const sent = await sendAlert(context.config, context.logger, {
          issueType: RELEASE_ISSUE_TYPE,
          severity: 'critical',
          event: 'release.rolled-back',
          title: `Release ${bad.version} rolled back to ${stable.version}`,
          text: `Run ${context.runId} by ${context.operator}: rollouts halted, ${stable.version} re-submitted. Expedited review: ${EXPEDITED_REVIEW_STEPS[0] ?? ''}`,
          page: 'trigger',
          dedupKey: `shipshape-release-${bad.version}-rollback`,
          details: { runId: context.runId, bad: bad.version, stable: stable.version },
        });
        context.note(sent.paged ? `paged (${sent.summary})` : `NOT paged: ${sent.summary} — call the on-call`);
        return { paged: sent.paged, summary: sent.summary, version: bad.version };
      },
      async undo(context, output) {
        const version = String(output.version);
        const sent = await sendAlert(context.config, context.logger, {
          issueType: RELEASE_ISSUE_TYPE,
          severity: 'warning',
          event: 'release.rollback-rolled-back',
          title: `Rollback of ${version} called off`,
          text: `Run ${context.runId} could not complete and was undone: the rollout of ${version} is as it was before the rollback.`,
          page: 'resolve',
          dedupKey: `shipshape-release-${version}-rollback`,
        });
        context.note(`page resolved (${sent.summary})`);
      },
    },
    {
      id: 'mark',
      title: 'Record the rollback',
      describe: () => ["UPDATE releases SET state = 'rolled-back' WHERE version = <bad>"],
      async run(context): Promise<JsonObject> {
        const { pool } = await context.database();
        const { bad, stable } = await releases(context);
        await setReleaseState(pool, bad.version, 'rolled-back', { rolledBackBy: `operator:${context.operator}` });
        await recordAudit(pool, {
          actor: `operator:${context.operator}`,
          action: 'release.rolled-back',
          details: { version: bad.version, to: stable.version, runId: context.runId },
        });
        return { version: bad.version, to: stable.version };
      },
      async undo(context, output) {
        const { pool } = await context.database();
        await setReleaseState(pool, String(output.version), 'halted');
      },
    },
  ],
  verification: [
    {
      name: 'the rollouts are halted in the stores',
      run: async (context) => {
        const { pool } = await context.database();
        const bad = await getRelease(pool, requireOutput(context, halt).version);
        const still = bad.rollouts.filter((r) => r.status === 'inProgress');
        return still.length === 0
          ? { ok: true, detail: bad.rollouts.map((r) => `${r.platform} ${r.status} at ${percent(r.fraction)}`).join('; ') }
          : { ok: false, detail: `${still.map((r) => r.platform).join(', ')} still in progress`, remedy: '`shipshape release halt <platform>`' };
      },
    },
    {
      name: 'the crash rate returns to the previous version’s level',
      unverifiedIsSafe: 'the crash rate takes hours to settle; `shipshape release status` keeps comparing it',
      run: async (context) => {
        const { pool } = await context.database();
        const bad = requireOutput(context, halt).version;
        const stable = requireOutput(context, resubmit.ios).version;
        try {
          const gate = await evaluateGates({ candidate: stable, control: bad, db: pool, ...gateSettings(context.config) });
          if (gate.crashFree.candidate === null)
            return unverified(`crash-free rate not read: ${gate.crashFree.detail}`, 'watch `shipshape release status` and Sentry release health');
          return { ok: true, detail: `${gate.crashFree.detail}; keep watching with \`shipshape release status\`` };
        } catch (error) {
          return unverified(`not read: ${describeError(error)}`, 'watch `shipshape release status` and Sentry release health');
        }
      },
    },
  ],
});
