/**
 * Runbook: "Deploy New Version" — `shipshape release deploy --bump patch|minor|major`.
 *
 * When: new features, bug fixes; the hotfix path is the same command with `--bump patch`.
 * Medium risk: it ships a binary to users, a few at first.
 *
 * Prerequisites, each really checked: APP_REPO_DIR is a clean clone on the main branch with
 * the remote's main merged; CI is green for that commit (RELEASE_CI_CHECK_URL or _COMMAND);
 * the release notes `RELEASE_NOTES_DIR/<version>.md` exist; the store credentials are set;
 * Sentry is configured (the health gates read it); no other release is rolling out.
 *
 *   1. Update version: `npm version <bump> --no-git-tag-version`, committed as "Release vX".
 *   2. Create release tag: `git tag -a vX -m "Release vX"`, pushed with the commit to main.
 *   3. Record the release (table `releases`; the control version is the last stable release).
 *   4. Build for production: `eas build --platform all --profile production --non-interactive
 *      --json --no-wait`, then `eas build:view <id> --json` until both builds finish; the build
 *      ids are recorded as soon as EAS gives them, so a resumed run follows the same builds.
 *   5. Submit to stores: `eas submit --platform ios|android --id <build>`.
 *   6. Enable staged rollout: Play production track `inProgress` at the first step (5 %),
 *      App Store phased release `ACTIVE` (Apple's 7-day curve).
 *   Verify: each store reports the state and fraction recorded; the gates were read.
 * The scheduler then moves the rollout one step per RELEASE_STEP_INTERVAL while the gates hold
 * (src/ops/release/rollout.ts), and halts it and pages when they do not.
 *
 * Rollback (a later step failed): the rollout is halted in each store it started in, the
 * submissions stay unreleased in the stores, the tag is deleted (locally and on the remote),
 * and the version commit is undone when it was not pushed. (Step 5's "Test builds locally" is
 * for people: the staged rollout at 5 % and its gates are what this code does instead.)
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { recordAudit } from '../../domain/audit.ts';
import {
  createRelease,
  currentRollout,
  getRelease,
  lastStableRelease,
  platforms,
  recordBuild,
  recordRollout,
  recordSubmission,
  scheduleNextStep,
  setReleaseState,
  type Platform,
} from '../../domain/releases.ts';
import { describeError, ShipError } from '../../errors.ts';
import { Eas, EAS_FINAL, platformOf, type EasBuild } from '../release/eas.ts';
import { evaluateGates, gateSettings } from '../release/gates.ts';
import { git, readRepoState, remoteTagExists, tagExists } from '../release/git.ts';
import { runChecked } from '../release/process.ts';
import { setRolloutStatus, readRollout, startRollout, type StoreRollout } from '../release/stores.ts';
import { RELEASE_ISSUE_TYPE } from '../release/rollout.ts';
import { defineProcedure, outputOf, requireOutput, stepFor, type JsonObject, type RunContext } from '../engine/types.ts';
import { appRepoDir, ciCheck, credentialsCheck, nextVersion, notesPath, packageVersion, percent, RELEASE_LOCK } from './release-common.ts';

const params = z.object({
  bump: z.enum(['patch', 'minor', 'major'], { error: 'must be patch, minor or major (a hotfix is patch)' }),
});
type Params = z.output<typeof params>;
type Context = RunContext<Params>;

/** The version this run releases: fixed by step 1, before it from package.json and --bump. */
async function versionOf(context: Context): Promise<string> {
  const done = outputOf(context, bumpVersion)?.version;
  if (done !== undefined) return done;
  return nextVersion(await packageVersion(appRepoDir(context.config)), context.params.bump);
}

function eas(context: Context): Eas {
  return new Eas(context.config.release.easBin, appRepoDir(context.config));
}

/** For plans: what is run, even before APP_REPO_DIR is set. */
function easLine(context: Context, args: string[]): string {
  return new Eas(context.config.release.easBin, context.config.release.appRepoDir ?? '.').line(args);
}

// The steps whose outputs later steps read (listed in `steps` below with the others).
const step = stepFor<Params>();

const bumpVersion = step({
  id: 'version',
  title: 'Update version (npm version)',
  output: z.object({ version: z.string(), previousVersion: z.string(), before: z.string(), commit: z.string() }),
  describe: ({ params: p, config }) => [
    `cd ${config.release.appRepoDir ?? '$APP_REPO_DIR'}`,
    `npm version ${p.bump} --no-git-tag-version`,
    'git commit -m "Release v$VERSION" package.json [package-lock.json]',
  ],
  async run(context) {
    const dir = appRepoDir(context.config);
    const before = await git(dir, ['rev-parse', 'HEAD']);
    const current = await packageVersion(dir);
    const version = nextVersion(current, context.params.bump);
    await runChecked('npm', ['version', context.params.bump, '--no-git-tag-version'], { cwd: dir });
    const files = [
      'package.json',
      ...((await stat(path.join(dir, 'package-lock.json')).then(
        () => true,
        () => false,
      ))
        ? ['package-lock.json']
        : []),
    ];
    await git(dir, ['commit', '--quiet', '-m', `Release v${version}`, '--', ...files]);
    const commit = await git(dir, ['rev-parse', 'HEAD']);
    context.note(`${current} → ${version} (commit ${commit.slice(0, 12)})`);
    return { version, previousVersion: current, before, commit };
  },
  async undo(context, output) {
    const dir = appRepoDir(context.config);
    const { remote, mainBranch } = context.config.release;
    await git(dir, ['fetch', '--quiet', remote, mainBranch]);
    const pushed = (await git(dir, ['branch', '-r', '--contains', output.commit])).includes(`${remote}/${mainBranch}`);
    if (pushed) {
      context.note(`the version commit is on ${remote}/${mainBranch} already: left there (harmless; the next deploy bumps from it)`);
      return;
    }
    const head = await git(dir, ['rev-parse', 'HEAD']);
    if (head !== output.commit) {
      context.note(`HEAD moved since (${head.slice(0, 12)}): the version commit is left for a person to undo`);
      return;
    }
    await git(dir, ['reset', '--quiet', '--hard', output.before]);
    context.note(`version commit undone (back to ${output.before.slice(0, 12)})`);
  },
});

const tagRelease = step({
  id: 'tag',
  title: 'Create release tag and push',
  output: z.object({ tag: z.string(), commit: z.string() }),
  describe: ({ config }) => [
    'git tag -a "v$VERSION" -m "Release v$VERSION"',
    `git push --atomic ${config.release.remote} HEAD:${config.release.mainBranch} "v$VERSION"`,
  ],
  async run(context) {
    const dir = appRepoDir(context.config);
    const version = await versionOf(context);
    const tag = `v${version}`;
    if (!(await tagExists(dir, tag))) await git(dir, ['tag', '-a', tag, '-m', `Release ${tag}`]);
    const { remote, mainBranch } = context.config.release;
    await git(dir, ['push', '--quiet', '--atomic', remote, `HEAD:refs/heads/${mainBranch}`, `refs/tags/${tag}`]);
    const commit = await git(dir, ['rev-parse', 'HEAD']);
    context.note(`${tag} pushed to ${remote} with ${mainBranch}`);
    return { tag, commit };
  },
  async undo(context, output) {
    const dir = appRepoDir(context.config);
    const { tag } = output;
    await git(dir, ['push', '--quiet', context.config.release.remote, `:refs/tags/${tag}`]).catch((error: unknown) =>
      context.note(`remote tag ${tag} not deleted: ${describeError(error)}`),
    );
    if (await tagExists(dir, tag)) await git(dir, ['tag', '-d', tag]);
    context.note(`tag ${tag} deleted`);
  },
});

const recordRelease = step({
  id: 'record',
  title: 'Record the release',
  output: z.object({ version: z.string(), controlVersion: z.string().nullable() }),
  describe: () => ['INSERT INTO releases (version, git_tag, git_commit, bump, control_version, …)   -- control: the last stable release'],
  async run(context) {
    const { pool } = await context.database();
    const version = await versionOf(context);
    const control = (await lastStableRelease(pool, version))?.version ?? null;
    const commit = outputOf(context, tagRelease)?.commit ?? null;
    await createRelease(pool, {
      version,
      gitTag: `v${version}`,
      gitCommit: commit,
      bump: context.params.bump,
      controlVersion: control,
      runId: context.runId,
      createdBy: `operator:${context.operator}`,
    });
    await recordAudit(pool, { actor: `operator:${context.operator}`, action: 'release.started', details: { version, runId: context.runId, control } });
    context.note(`release ${version} recorded; its gates compare against ${control ?? 'fixed limits (no stable release recorded yet)'}`);
    return { version, controlVersion: control };
  },
  async undo(context, output) {
    const { pool } = await context.database();
    await setReleaseState(pool, output.version, 'failed');
    context.note(`release ${output.version} marked failed`);
  },
});

const buildApps = step({
  id: 'build',
  title: 'Build for production and wait for the builds (EAS)',
  output: z.object({ ios: z.string(), android: z.string(), iosBuildVersion: z.string().nullable(), androidVersionCode: z.string().nullable() }),
  describe: (context) => [
    easLine(context, ['build', '--platform', 'all', '--profile', 'production', '--non-interactive', '--json', '--no-wait']),
    `${easLine(context, ['build:view', '<id>', '--json'])}   -- every ${context.config.release.easPollMs / 1000} s until FINISHED (at most ${context.config.release.easTimeoutMs / 60_000} min)`,
  ],
  async run(context) {
    const { pool } = await context.database();
    const version = await versionOf(context);
    const client = eas(context);
    const recorded = (await getRelease(pool, version)).builds;
    let ids: Partial<Record<Platform, string>> = {};
    if (
      recorded.ios !== undefined &&
      recorded.android !== undefined &&
      ![recorded.ios.status, recorded.android.status].some((s) => s === 'ERRORED' || s === 'CANCELED')
    ) {
      ids = { ios: recorded.ios.id, android: recorded.android.id };
      context.note(`following the builds this run started before: ios ${ids.ios ?? '?'}, android ${ids.android ?? '?'}`);
    } else {
      const started = await client.startBuilds(context.signal);
      for (const build of started) {
        ids[platformOf(build)] = build.id;
        await recordBuild(pool, version, platformOf(build), { id: build.id, status: build.status, buildVersion: build.appBuildVersion ?? null });
      }
      context.note(`EAS builds started: ios ${ids.ios ?? 'none'}, android ${ids.android ?? 'none'}`, {
        ios: ids.ios ?? null,
        android: ids.android ?? null,
      });
    }
    const missing = platforms.filter((p) => ids[p] === undefined);
    if (missing.length > 0)
      throw new ShipError(
        'SHIP_ERR_PROVIDER_FAILED',
        `eas build started no ${missing.join(' or ')} build. Check the production profile in eas.json builds both platforms.`,
      );
    const deadline = Date.now() + context.config.release.easTimeoutMs;
    const last = new Map<Platform, string>();
    const builds = new Map<Platform, EasBuild>();
    for (;;) {
      for (const platform of platforms) {
        if (builds.has(platform) && EAS_FINAL.has(builds.get(platform)!.status)) continue;
        const build = await client.viewBuild(ids[platform]!, context.signal);
        builds.set(platform, build);
        if (last.get(platform) !== build.status) {
          last.set(platform, build.status);
          context.note(`${platform} build ${build.id}: ${build.status}`);
          await recordBuild(pool, version, platform, { id: build.id, status: build.status, buildVersion: build.appBuildVersion ?? null });
        }
      }
      const all = [...builds.values()];
      const bad = all.filter((b) => b.status === 'ERRORED' || b.status === 'CANCELED');
      if (bad.length > 0) {
        throw new ShipError(
          'SHIP_ERR_STEP_FAILED',
          `EAS build ${bad.map((b) => `${platformOf(b)} ${b.id} ${b.status}${b.error?.message ? ` (${b.error.message})` : ''}`).join(', ')}. Look at its logs on expo.dev; nothing was submitted.`,
        );
      }
      if (all.length === platforms.length && all.every((b) => b.status === 'FINISHED')) break;
      if (Date.now() > deadline)
        throw new ShipError(
          'SHIP_ERR_STEP_FAILED',
          `the EAS builds did not finish within EAS_BUILD_TIMEOUT (${all.map((b) => `${platformOf(b)} ${b.status}`).join(', ')}); nothing was submitted. Run \`shipshape runs resume\` to go on following them.`,
        );
      await sleep(context.config.release.easPollMs, context.signal);
    }
    const ios = builds.get('ios')!;
    const android = builds.get('android')!;
    return { ios: ios.id, android: android.id, iosBuildVersion: ios.appBuildVersion ?? null, androidVersionCode: android.appBuildVersion ?? null };
  },
  async undo(context) {
    context.note('the finished builds stay on EAS (artifacts only; no user gets them)');
  },
});

export const releaseDeploy = defineProcedure({
  id: 'release.deploy',
  command: 'release deploy',
  title: 'Deploy a new app version: version, tag, EAS builds, store submissions, staged rollout under health gates',
  runbookSection: 'Deploy New Version',
  whenToUse: 'New features, bug fixes; a hotfix is `--bump patch`.',
  risk: 'medium',
  expectedDuration: '30-45 minutes (then the rollout runs for days under the gates)',
  issueType: RELEASE_ISSUE_TYPE,
  params,
  locks: () => [RELEASE_LOCK],
  prerequisites: [
    {
      name: 'the app repository is clean, on its main branch, with the remote main merged',
      run: async ({ config }) => {
        const dir = config.release.appRepoDir;
        if (dir === undefined) return { ok: false, detail: 'APP_REPO_DIR is not set', remedy: 'set APP_REPO_DIR to a clone of the mobile app repository' };
        let state;
        try {
          state = await readRepoState(dir, config.release.remote, config.release.mainBranch);
        } catch (error) {
          return {
            ok: false,
            detail: `${dir}: ${describeError(error)}`,
            remedy: `APP_REPO_DIR must be a git clone with a remote "${config.release.remote}" that has branch ${config.release.mainBranch}`,
          };
        }
        const { mainBranch, remote } = config.release;
        if (state.branch !== mainBranch)
          return { ok: false, detail: `${dir} is on ${state.branch}, not ${mainBranch}`, remedy: `git -C ${dir} checkout ${mainBranch}` };
        if (state.dirty.length > 0)
          return {
            ok: false,
            detail: `${dir} has uncommitted changes: ${state.dirty.slice(0, 5).join(', ')}`,
            remedy: 'commit or discard them (git status), then run the deploy again',
          };
        if (state.behind > 0)
          return {
            ok: false,
            detail: `${mainBranch} is ${state.behind} commit(s) behind ${remote}/${mainBranch}`,
            remedy: `git -C ${dir} pull --ff-only ${remote} ${mainBranch}`,
          };
        return { ok: true, detail: `${dir} at ${state.head.slice(0, 12)} on ${mainBranch}, up to date with ${remote}` };
      },
    },
    {
      name: 'CI is green for that commit',
      run: async ({ config }) => ciCheck(config, await git(appRepoDir(config), ['rev-parse', 'HEAD'])),
    },
    {
      name: 'the release notes exist and the tag is free',
      run: async (context) => {
        const version = await versionOf(context);
        const file = notesPath(context.config, version);
        const size = await stat(file).then(
          (s) => s.size,
          () => -1,
        );
        if (size <= 0)
          return {
            ok: false,
            detail: `${file} ${size === 0 ? 'is empty' : 'does not exist'}`,
            remedy: `write the release notes for ${version} in ${path.relative(appRepoDir(context.config), file)} and commit them`,
          };
        const dir = appRepoDir(context.config);
        if (
          outputOf(context, bumpVersion) === undefined &&
          ((await tagExists(dir, `v${version}`)) || (await remoteTagExists(dir, context.config.release.remote, `v${version}`)))
        ) {
          return {
            ok: false,
            detail: `tag v${version} already exists`,
            remedy: 'that version was released already: pick the next with --bump, or look at `shipshape release list`',
          };
        }
        return { ok: true, detail: `v${version} (${context.params.bump}); notes ${path.relative(dir, file)} (${size} bytes)` };
      },
    },
    { name: 'store credentials are present', run: ({ config }) => credentialsCheck(config) },
    {
      name: 'the health gates can be read (Sentry)',
      run: async ({ config }) =>
        config.sentry.org !== undefined && config.sentry.token !== undefined
          ? { ok: true, detail: `Sentry ${config.sentry.org}, releases named ${config.release.gates.sentryReleaseName}` }
          : {
              ok: false,
              detail: 'SENTRY_ORG and SENTRY_TOKEN are not set: the gates could never pass, so the rollout would never advance',
              remedy: 'set SENTRY_ORG and SENTRY_TOKEN (org:read), and SENTRY_RELEASE_NAME to how the app names its releases',
            },
    },
    {
      name: 'no other release is rolling out',
      run: async (context) => {
        const { pool } = await context.database();
        const current = await currentRollout(pool);
        const version = await versionOf(context);
        if (current === undefined || current.version === version) return { ok: true, detail: 'none in progress' };
        if (current.state === 'halted') return { ok: true, detail: `${current.version} is halted; this release supersedes it` };
        return {
          ok: false,
          detail: `${current.version} is ${current.state}`,
          remedy: `wait for it to complete, or \`shipshape release halt ios\` and \`… android\` first (a hotfix supersedes a halted release)`,
        };
      },
    },
  ],
  steps: [
    bumpVersion,
    tagRelease,
    recordRelease,
    buildApps,
    ...platforms.map((platform) => ({
      id: `submit-${platform}`,
      title: `Submit to the ${platform === 'ios' ? 'App Store' : 'Play Store'} (eas submit)`,
      describe: (context: Context) => [
        easLine(context, ['submit', '--platform', platform, '--id', `<${platform} build>`, '--profile', 'production', '--non-interactive', '--wait']),
      ],
      async run(context: Context): Promise<JsonObject> {
        const { pool } = await context.database();
        const version = await versionOf(context);
        const buildId = requireOutput(context, buildApps)[platform];
        const already = (await getRelease(pool, version)).submissions[platform];
        if (already?.buildId === buildId) {
          context.note(`${platform} build ${buildId} was submitted before (submission ${already.submissionId ?? '?'})`);
          return { buildId, submissionId: already.submissionId };
        }
        const { submissionId } = await eas(context).submit(platform, buildId, context.signal);
        await recordSubmission(pool, version, platform, { buildId, submissionId, submittedAt: new Date().toISOString() });
        context.note(`${platform} build ${buildId} submitted (submission ${submissionId ?? 'id not printed'})`);
        return { buildId, submissionId };
      },
      async undo(context: Context) {
        context.note(`the ${platform} submission stays in the store unreleased: no rollout reaches users after this rollback`);
      },
    })),
    {
      id: 'rollout',
      title: 'Enable staged rollout (Play 5 %, App Store phased release)',
      describe: ({ config }) => [
        `Google Play: POST edits → PUT edits/{id}/tracks/production {"releases":[{"versionCodes":["<code>"],"status":"inProgress","userFraction":${(config.release.rolloutSteps[0] ?? 100) / 100}}]} → POST edits/{id}:commit`,
        'App Store Connect: POST /v1/appStoreVersionPhasedReleases {"phasedReleaseState":"ACTIVE"} for the version',
        `then the scheduler moves Play through ${config.release.rolloutSteps.join(' → ')} % every ${config.release.stepIntervalMs / 3_600_000} h while the gates hold`,
      ],
      async run(context): Promise<JsonObject> {
        const { pool } = await context.database();
        const version = await versionOf(context);
        const release = await getRelease(pool, version);
        const started: StoreRollout[] = [];
        try {
          for (const platform of platforms) {
            const rollout = await startRollout(context.config, release, platform);
            await recordRollout(pool, version, { ...rollout, updatedBy: `operator:${context.operator}` });
            started.push(rollout);
            context.note(`${platform}: ${rollout.status} at ${percent(rollout.fraction)}`);
          }
        } catch (error) {
          // The failing store changed nothing; halt what the other one started, so no user gets a release this run gives up.
          const halted: string[] = [];
          for (const rollout of started) {
            try {
              const h = await setRolloutStatus(context.config, await getRelease(pool, version), rollout.platform, 'halted');
              await recordRollout(pool, version, { ...h, updatedBy: `operator:${context.operator}` });
              halted.push(`${rollout.platform} halted at ${percent(h.fraction)}`);
            } catch (haltError) {
              halted.push(`${rollout.platform} NOT halted (${describeError(haltError)}) — halt it in its console`);
            }
          }
          throw new ShipError('SHIP_ERR_STEP_FAILED', `${describeError(error)} State: ${halted.length > 0 ? halted.join('; ') : 'no rollout had started'}.`);
        }
        await setReleaseState(pool, version, 'rolling-out');
        await scheduleNextStep(pool, version, new Date(Date.now() + context.config.release.stepIntervalMs));
        return { rollouts: started.map((r) => ({ platform: r.platform, status: r.status, fraction: r.fraction, storeRef: r.storeRef })) };
      },
      async undo(context) {
        const { pool } = await context.database();
        const version = await versionOf(context);
        const release = await getRelease(pool, version);
        for (const rollout of release.rollouts.filter((r) => r.status === 'inProgress')) {
          const halted = await setRolloutStatus(context.config, release, rollout.platform, 'halted');
          await recordRollout(pool, version, { ...halted, updatedBy: `operator:${context.operator}` });
          context.note(`${rollout.platform} rollout halted at ${percent(halted.fraction)}`);
        }
        await scheduleNextStep(pool, version, null);
      },
    },
  ],
  verification: [
    {
      name: 'the stores report the expected state and fraction',
      run: async (context) => {
        const { pool } = await context.database();
        const release = await getRelease(pool, await versionOf(context));
        const lines: string[] = [];
        let ok = true;
        for (const recorded of release.rollouts) {
          const seen = await readRollout(context.config, release, recorded.platform);
          const same = seen.status === recorded.status && Math.abs(seen.fraction - recorded.fraction) < 1e-9;
          ok &&= same;
          lines.push(
            `${recorded.platform}: ${seen.status} at ${percent(seen.fraction)}${same ? '' : ` (expected ${recorded.status} at ${percent(recorded.fraction)})`}`,
          );
        }
        return ok && release.rollouts.length === platforms.length
          ? { ok: true, detail: lines.join('; ') }
          : {
              ok: false,
              detail: lines.join('; ') || 'no rollout recorded',
              remedy: 'look at the rollout in Play Console and App Store Connect; `shipshape release status` shows what Shipshape recorded',
            };
      },
    },
    {
      name: 'the health gates were read',
      run: async (context) => {
        const { pool } = await context.database();
        const release = await getRelease(pool, await versionOf(context));
        const gate = await evaluateGates({ candidate: release.version, control: release.controlVersion, db: pool, ...gateSettings(context.config) });
        const unread = [gate.crashFree, gate.errorRate].filter((s) => s.detail.startsWith('not read'));
        return unread.length === 0
          ? { ok: true, detail: `${gate.verdict}: ${gate.summary}` }
          : {
              ok: false,
              detail: gate.summary,
              remedy: 'check SENTRY_API_URL, SENTRY_ORG and SENTRY_TOKEN; the rollout will not advance until the gates can be read',
            };
      },
    },
  ],
});

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(new ShipError('SHIP_ERR_STEP_FAILED', 'interrupted while waiting for the EAS builds'));
      },
      { once: true },
    );
  });
}
