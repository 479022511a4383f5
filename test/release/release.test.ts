/**
 * Runbook "Deploy New Version" and "Rollback Deployment" (`shipshape release …`) end to end:
 * a real git repository with a local bare remote, a recording eas-cli stand-in on PATH, and
 * loopback Google Play (with its OAuth token endpoint), App Store Connect, Sentry release
 * health, a CI status endpoint and PagerDuty, each checking the documented requests.
 *
 * The tests run in order on one app repository and database: refusals that change nothing,
 * a full deploy (1.4.2 → 1.5.0), the gates holding, advancing and then halting it with a
 * page, a resume, the rollback to 1.4.2, and a store failing mid-rollout of 1.5.1.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readAppState } from '../../src/domain/app-state.ts';
import { createRelease, getRelease, recordBuild, recordRollout, setReleaseState } from '../../src/domain/releases.ts';
import { appVersionOf, readVersionMetrics } from '../../src/domain/version-metrics.ts';
import { RequestMetrics } from '../../src/http/metrics.ts';
import { runProcedure, type EngineDeps } from '../../src/ops/engine/index.ts';
import { releaseComplete } from '../../src/ops/procedures/release-complete.ts';
import { releaseDeploy } from '../../src/ops/procedures/release-deploy.ts';
import { releaseHalt } from '../../src/ops/procedures/release-halt.ts';
import { releaseResume } from '../../src/ops/procedures/release-resume.ts';
import { DEFAULT_ROLLBACK_MESSAGE, releaseRollback } from '../../src/ops/procedures/release-rollback.ts';
import { advanceDueReleases, advanceRelease, gatePageKey } from '../../src/ops/release/rollout.ts';
import { startFakeAppStoreConnect, type FakeAppStoreConnect } from '../fakes/app-store-connect.ts';
import { createFakeEas, type FakeEas } from '../fakes/eas-cli.ts';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { startFakeGooglePlay, type FakeGooglePlay } from '../fakes/google-play.ts';
import { closeServer, listenOnLoopback } from '../fakes/loopback.ts';
import { fakeRoutingKey, startPagerDuty, type FakePagerDuty } from '../fakes/pagerduty.ts';
import { startFakeSentrySessions, type FakeSentrySessions } from '../fakes/sentry-sessions.ts';
import { runCli } from '../helpers/cli.ts';
import { storeEnv } from '../helpers/stores.ts';
import { liveFixture, logger, show, stepOutput, parseJson, type LiveFixture } from '../helpers/live-operations.ts';
import { eventually } from '../helpers/patience.ts';
import { startWorkerApi } from '../helpers/workers.ts';

const ORG = 'acme';
const SENTRY_TOKEN = 'sntrys_release_gates';
const STABLE = { version: '1.4.2', ios: 'aaaaaaaa-0000-4000-8000-000000000142', android: 'bbbbbbbb-0000-4000-8000-000000000142', code: '42' };

let fixture: LiveFixture;
let play: FakeGooglePlay;
let asc: FakeAppStoreConnect;
let sentry: FakeSentrySessions;
let pagerDuty: FakePagerDuty;
let expo: FakeExpo;
let ci: Server;
let ciSeen: string[];
let work: string;
let repo: string;
let remote: string;
let eas: FakeEas;
let env: Record<string, string>;

function sh(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
}

before(async () => {
  fixture = await liveFixture();
  [play, asc, pagerDuty, expo] = await Promise.all([startFakeGooglePlay(), startFakeAppStoreConnect(), startPagerDuty(), startFakeExpo()]);
  sentry = await startFakeSentrySessions({ org: ORG, token: SENTRY_TOKEN });
  ciSeen = [];
  ci = createServer((req, res) => {
    const sha = /\/status\/([0-9a-f]{40})$/.exec(req.url ?? '')?.[1];
    if (sha === undefined) return res.writeHead(404).end();
    ciSeen.push(sha);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ state: 'success', sha, total_count: 3 }));
  });
  const ciUrl = await listenOnLoopback(ci);

  work = await mkdtemp(path.join(tmpdir(), 'shipshape-release-'));
  remote = path.join(work, 'remote.git');
  repo = path.join(work, 'app');
  execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', remote]);
  execFileSync('git', ['clone', '--quiet', remote, repo]);
  sh(repo, 'config', 'user.email', 'release@example.com');
  sh(repo, 'config', 'user.name', 'Release Bot');
  sh(repo, 'checkout', '--quiet', '-b', 'main');
  await writeFile(path.join(repo, 'package.json'), `${JSON.stringify({ name: 'tasks-app', version: STABLE.version, private: true }, null, 2)}\n`);
  await writeFile(path.join(repo, 'eas.json'), JSON.stringify({ build: { production: {} }, submit: { production: {} } }));
  await mkdir(path.join(repo, 'release-notes'));
  await writeFile(path.join(repo, 'release-notes/1.5.0.md'), '# 1.5.0\n\nShared lists.\n');
  await writeFile(path.join(repo, 'release-notes/1.5.1.md'), '# 1.5.1\n\nFix for shared lists.\n');
  sh(repo, 'add', '.');
  sh(repo, 'commit', '--quiet', '-m', 'app');
  sh(repo, 'push', '--quiet', '-u', 'origin', 'main');

  const stores = await storeEnv(work, play, asc);
  eas = await createFakeEas(work, { playUrl: play.url, ascUrl: asc.url });
  // The stand-in is found the way the real one would be: first on PATH.
  process.env.PATH = `${eas.binDir}:${process.env.PATH ?? ''}`;
  Object.assign(process.env, eas.env);
  await eas.seedBuild({ id: STABLE.ios, platform: 'IOS', appVersion: STABLE.version, appBuildVersion: '7' });
  await eas.seedBuild({ id: STABLE.android, platform: 'ANDROID', appVersion: STABLE.version, appBuildVersion: STABLE.code });

  // The last stable release, as a completed deploy would have left it.
  await createRelease(fixture.pool, {
    version: STABLE.version,
    gitTag: `v${STABLE.version}`,
    gitCommit: null,
    bump: 'patch',
    controlVersion: null,
    runId: 'seed',
    createdBy: 'operator:seed',
  });
  await recordBuild(fixture.pool, STABLE.version, 'ios', { id: STABLE.ios, status: 'FINISHED', buildVersion: '7' });
  await recordBuild(fixture.pool, STABLE.version, 'android', { id: STABLE.android, status: 'FINISHED', buildVersion: STABLE.code });
  for (const platform of ['ios', 'android'] as const)
    await recordRollout(fixture.pool, STABLE.version, { platform, status: 'completed', fraction: 1, step: 4, storeRef: null, updatedBy: 'seed' });
  await setReleaseState(fixture.pool, STABLE.version, 'completed');

  env = {
    APP_REPO_DIR: repo,
    RELEASE_CI_CHECK_URL: `${ciUrl}/status/{sha}`,
    EAS_BIN: 'eas',
    EAS_BUILD_POLL_INTERVAL: '100ms',
    ...stores,
    SENTRY_API_URL: sentry.url,
    SENTRY_ORG: ORG,
    SENTRY_TOKEN,
    SENTRY_RELEASE_NAME: 'com.example.tasks@{version}',
    RELEASE_GATE_MIN_SESSIONS: '100',
    RELEASE_GATE_MIN_REQUESTS: '100',
    PAGERDUTY_ROUTING_KEY: fakeRoutingKey(),
    PAGERDUTY_EVENTS_URL: pagerDuty.baseUrl,
    EXPO_PUSH_URL: expo.pushUrl,
    SHIPSHAPE_ALLOW_INLINE_APPROVAL: 'true',
  };
});

after(async () => {
  await Promise.all([play?.close(), asc?.close(), sentry?.close(), pagerDuty?.close(), expo?.close(), ci ? closeServer(ci) : undefined]);
  await fixture?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

function deps(overrides: Record<string, string> = {}): Promise<EngineDeps> {
  return fixture.deps({ ...env, ...overrides });
}

/** Request counts per app version as the API instances flush them. */
async function traffic(version: string, requests: number, errors: number): Promise<void> {
  await fixture.pool.query(
    `INSERT INTO request_metrics_by_version (instance_id, period_end, app_version, requests, errors) VALUES ('test', now(), $1, $2, $3)`,
    [version, requests, errors],
  );
}

/** The scheduler's clock, a step interval further each call (so the next step is always due). */
let clockDays = 0;
function later(): Date {
  clockDays += 2;
  return new Date(Date.now() + clockDays * 86_400_000);
}

describe('release deploy, gates and rollback through the store fakes', () => {
  test('bad input and unmet prerequisites change nothing: unknown platform or bump (exit 2), dirty repository or missing store credentials (exit 3)', async () => {
    const platform = await runProcedure(releaseHalt, { platform: 'windows' }, { yes: true }, await deps());
    assert.equal(platform.exitCode, 2, show(platform));
    assert.match(platform.error?.message ?? '', /ios or android/);
    const bump = await runProcedure(releaseDeploy, { bump: 'huge' }, { yes: true }, await deps());
    assert.equal(bump.exitCode, 2, show(bump));
    assert.match(bump.error?.message ?? '', /patch, minor or major/);

    await writeFile(path.join(repo, 'scratch.txt'), 'not committed');
    const dirty = await runProcedure(releaseDeploy, { bump: 'minor' }, { yes: true }, await deps());
    await rm(path.join(repo, 'scratch.txt'));
    assert.equal(dirty.exitCode, 3, show(dirty));
    assert.match(JSON.stringify(dirty.prerequisites), /uncommitted changes: \?\? scratch\.txt/);

    const noKeys = await runProcedure(releaseDeploy, { bump: 'minor' }, { yes: true }, await deps({ GOOGLE_PLAY_SERVICE_ACCOUNT_FILE: '', ASC_KEY_ID: '' }));
    assert.equal(noKeys.exitCode, 3, show(noKeys));
    assert.match(JSON.stringify(noKeys.prerequisites), /ASC_KEY_ID, GOOGLE_PLAY_SERVICE_ACCOUNT_FILE|GOOGLE_PLAY_SERVICE_ACCOUNT_FILE, ASC_KEY_ID/);

    assert.deepEqual(await eas.calls(), [], 'eas-cli was never run');
    assert.equal(sh(repo, 'tag', '--list'), '');
    assert.equal(JSON.parse(await readFile(path.join(repo, 'package.json'), 'utf8')).version, STABLE.version);
    assert.equal(play.requests.length + asc.requests.length, 0, 'no store was called');
  });

  test('a deploy goes through version, annotated tag and push, EAS builds, submissions and the staged rollout on both stores', async () => {
    const report = await runProcedure(releaseDeploy, { bump: 'minor' }, { yes: true }, await deps());
    assert.equal(report.exitCode, 0, show(report));

    // 1-2: npm version, annotated tag, pushed with main.
    assert.equal(sh(remote, 'cat-file', '-t', 'v1.5.0'), 'tag', 'an annotated tag on the remote');
    assert.equal(JSON.parse(sh(remote, 'show', 'main:package.json')).version, '1.5.0');
    assert.match(sh(remote, 'tag', '-n1', '-l', 'v1.5.0'), /Release v1\.5\.0/);
    assert.equal(ciSeen.length > 0, true, 'CI was asked about the commit');

    // 3-4: builds and submissions, exactly as eas-cli documents them.
    const calls = (await eas.calls()).map((c) => c.argv.join(' '));
    assert.equal(calls[0], 'build --platform all --profile production --non-interactive --json --no-wait');
    const build = stepOutput(report, 'build');
    assert.ok(calls.includes(`build:view ${String(build.ios)} --json`));
    assert.ok(calls.includes(`submit --platform ios --id ${String(build.ios)} --profile production --non-interactive --wait`));
    assert.ok(calls.includes(`submit --platform android --id ${String(build.android)} --profile production --non-interactive --wait`));
    assert.ok(
      (await eas.calls()).every((c) => c.cwd === repo),
      'eas runs in the app repository',
    );

    // 5: Play — OAuth, then insert → tracks.update → commit, each with the bearer token.
    const playCalls = play.requests.filter((r) => !r.path.startsWith('/test/')).map((r) => `${r.method} ${r.path.replace(/edits\/[^/:]+/, 'edits/{id}')}`);
    assert.deepEqual(playCalls.slice(0, 4), [
      'POST /token',
      'POST /androidpublisher/v3/applications/com.example.tasks/edits',
      'PUT /androidpublisher/v3/applications/com.example.tasks/edits/{id}/tracks/production',
      'POST /androidpublisher/v3/applications/com.example.tasks/edits/{id}:commit',
    ]);
    assert.ok(play.requests.every((r) => r.path === '/token' || r.path.startsWith('/test/') || r.authorization?.startsWith('Bearer ya29.fake-')));
    assert.deepEqual(play.track(), [{ versionCodes: [String(build.androidVersionCode)], status: 'inProgress', userFraction: 0.05 }]);
    // App Store: the phased release was created ACTIVE for 1.5.0.
    assert.equal(asc.phasedRelease('1.5.0')?.state, 'ACTIVE');
    const create = asc.requests.find((r) => r.method === 'POST' && r.path === '/v1/appStoreVersionPhasedReleases');
    assert.equal(create?.status, 201);

    const release = await getRelease(fixture.pool, '1.5.0');
    assert.equal(release.state, 'rolling-out');
    assert.equal(release.controlVersion, STABLE.version);
    assert.equal(release.builds.ios?.id, build.ios);
    assert.ok(release.submissions.android?.submissionId);
    assert.deepEqual(
      release.rollouts.map((r) => [r.platform, r.status, r.fraction]),
      [
        ['android', 'inProgress', 0.05],
        ['ios', 'inProgress', 0.01],
      ],
    );
    assert.ok(release.nextStepAt && release.nextStepAt.getTime() > Date.now());
  });

  test('the gates hold the rollout while the sample is small, and the scheduler moves Play one step when they hold', async () => {
    await traffic('1.5.0', 20, 0);
    const held = await advanceRelease({ config: (await deps()).config, logger, db: fixture.pool, actor: 'scheduler' }, '1.5.0');
    assert.equal(held.verdict, 'wait', held.summary);
    assert.equal(play.track()[0]?.userFraction, 0.05, 'nothing moved');

    sentry.setRelease('com.example.tasks@1.5.0', { sessions: 1_000, crashFreeRate: 0.996 });
    sentry.setRelease('com.example.tasks@1.4.2', { sessions: 8_000, crashFreeRate: 0.997 });
    await traffic('1.5.0', 2_000, 4);
    await traffic('1.4.2', 6_000, 12);
    const [moved] = await advanceDueReleases({ config: (await deps()).config, logger, db: fixture.pool, actor: 'scheduler', now: later });
    assert.equal(moved?.verdict, 'pass', moved?.summary);
    assert.deepEqual(play.track(), [{ versionCodes: [play.track()[0]!.versionCodes[0]!], status: 'inProgress', userFraction: 0.1 }]);
    const query = sentry.requests.at(-1)?.query;
    assert.deepEqual(query?.getAll('field'), ['sum(session)', 'crash_free_rate(session)']);
    assert.equal(query?.get('query'), 'release:"com.example.tasks@1.5.0" OR release:"com.example.tasks@1.4.2"');
    const release = await getRelease(fixture.pool, '1.5.0');
    assert.equal(release.rollouts.find((r) => r.platform === 'android')?.fraction, 0.1);
    assert.equal(release.gates?.verdict, 'pass');
  });

  test('a store refusing the daily step is reported and retried after RELEASE_GATE_RECHECK, the rollout left where it was', async () => {
    play.failNext(/^PUT .*\/tracks\/production$/, 503);
    const clock = later();
    const [outcome] = await advanceDueReleases({ config: (await deps()).config, logger, db: fixture.pool, actor: 'scheduler', now: () => clock });
    assert.equal(outcome?.verdict, 'pass', outcome?.summary);
    assert.match(outcome?.errors.join('\n') ?? '', /android: Google Play Developer API answered HTTP 503 .* \(still inProgress at 10 %\)/);
    assert.equal(play.track()[0]?.userFraction, 0.1);
    const release = await getRelease(fixture.pool, '1.5.0');
    assert.equal(release.state, 'rolling-out');
    assert.equal(release.nextStepAt?.getTime(), clock.getTime() + 3_600_000, 'tried again an hour later');
  });

  test('a gate breach halts both platforms and pages the Application on-call', async () => {
    sentry.setRelease('com.example.tasks@1.5.0', { sessions: 1_500, crashFreeRate: 0.97 });
    const [outcome] = await advanceDueReleases({ config: (await deps()).config, logger, db: fixture.pool, actor: 'scheduler', now: later });
    assert.equal(outcome?.verdict, 'breach', outcome?.summary);
    assert.equal(play.track()[0]?.status, 'halted');
    assert.equal(play.track()[0]?.userFraction, 0.1);
    assert.equal(asc.phasedRelease('1.5.0')?.state, 'PAUSED');
    const patch = asc.requests.find((r) => r.method === 'PATCH');
    assert.deepEqual((patch?.body as { data: { attributes: unknown } }).data.attributes, { phasedReleaseState: 'PAUSED' });
    const incident = pagerDuty.incidents.get(gatePageKey('1.5.0'));
    assert.equal(incident?.status, 'triggered');
    assert.match(incident?.summary ?? '', /health gate breached/);
    assert.equal(outcome?.paged, true);
    assert.equal((await getRelease(fixture.pool, '1.5.0')).state, 'halted');
    // A halted release is not advanced again by the scheduler.
    assert.deepEqual(await advanceDueReleases({ config: (await deps()).config, logger, db: fixture.pool, actor: 'scheduler', now: later }), []);
  });

  test('release resume|halt <platform> move a Play rollout between halted and in progress at its fraction; resuming what runs is refused', async () => {
    const resumed = await runProcedure(releaseResume, { platform: 'android' }, { yes: true }, await deps());
    assert.equal(resumed.exitCode, 0, show(resumed));
    assert.deepEqual(play.track()[0] && { status: play.track()[0]!.status, userFraction: play.track()[0]!.userFraction }, {
      status: 'inProgress',
      userFraction: 0.1,
    });
    const halted = await runProcedure(releaseHalt, { platform: 'android' }, { yes: true }, await deps());
    assert.equal(halted.exitCode, 0, show(halted));
    assert.equal(play.track()[0]?.status, 'halted');
    assert.equal((await getRelease(fixture.pool, '1.5.0')).state, 'halted');
    assert.equal((await runProcedure(releaseResume, { platform: 'android' }, { yes: true }, await deps())).exitCode, 0);
    assert.equal(play.track()[0]?.status, 'inProgress');
    const again = await runProcedure(releaseResume, { platform: 'android' }, { yes: true }, await deps());
    assert.equal(again.exitCode, 3, 'resuming what is in progress is refused');
    const dry = await runProcedure(releaseComplete, { platform: 'ios' }, { dryRun: true }, await deps());
    assert.equal(dry.exitCode, 0, show(dry));
  });

  test('rollback waits for a second operator, then halts, re-submits the last stable builds, tells users and pages', async () => {
    const waiting = await runProcedure(releaseRollback, {}, { yes: true }, await deps());
    assert.equal(waiting.exitCode, 3, show(waiting));
    assert.equal(waiting.state, 'awaiting-approval');
    const submitsBefore = (await eas.calls()).filter((c) => c.argv[0] === 'submit').length;

    const report = await runProcedure(releaseRollback, {}, { yes: true, approvedBy: 'bob' }, await deps());
    assert.ok(report.exitCode === 0 || report.exitCode === 5, show(report));
    const submits = (await eas.calls())
      .filter((c) => c.argv[0] === 'submit')
      .slice(submitsBefore)
      .map((c) => c.argv.join(' '));
    assert.deepEqual(submits, [
      `submit --platform ios --id ${STABLE.ios} --profile production --non-interactive --wait`,
      `submit --platform android --id ${STABLE.android} --profile production --non-interactive --wait`,
    ]);
    assert.equal(play.track()[0]?.status, 'halted');
    assert.equal(asc.phasedRelease('1.5.0')?.state, 'PAUSED');
    assert.equal((await readAppState(fixture.pool)).banner?.message, DEFAULT_ROLLBACK_MESSAGE);
    assert.equal(pagerDuty.incidents.get('shipshape-release-1.5.0-rollback')?.status, 'triggered');
    assert.match(JSON.stringify(report.steps.find((s) => s.id === 'expedited-review')), /review-requested 1\.4\.2/);
    const bad = await getRelease(fixture.pool, '1.5.0');
    assert.equal(bad.state, 'rolled-back');
    assert.equal(bad.rolledBackBy, 'operator:alice');
    const { rows } = await fixture.pool.query<{ subject: string }>('SELECT subject FROM maintenance_notices');
    assert.deepEqual(
      rows.map((r) => r.subject),
      ['We are rolling back the latest app update'],
      'emails queued for the rate-limited workers',
    );
  });

  test('a store API error mid-rollout halts what had started and rolls the deploy back, reporting the exact state', async () => {
    play.failNext(/^PUT .*\/tracks\/production$/, 500);
    const report = await runProcedure(releaseDeploy, { bump: 'patch' }, { yes: true }, await deps());
    assert.notEqual(report.exitCode, 0, show(report));
    assert.equal(report.state, 'rolled-back', show(report));
    assert.match(report.error?.message ?? '', /Google Play Developer API answered HTTP 500/);
    assert.match(report.error?.message ?? '', /ios halted at 1 %/);
    assert.equal(asc.phasedRelease('1.5.1')?.state, 'PAUSED', 'the App Store rollout that had started is paused');
    assert.equal((await getRelease(fixture.pool, '1.5.1')).state, 'failed');
    assert.throws(() => sh(remote, 'rev-parse', '--verify', '--quiet', 'refs/tags/v1.5.1'), 'the tag is gone from the remote');
  });

  test('`shipshape procedures` lists both runbook sections; `release list`, `status` and `show` read the records', async () => {
    const listed = await runCli(['procedures'], await fixture.cliEnv(env));
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /Deploy New Version/);
    assert.match(listed.stdout, /Rollback Deployment/);
    const releases = await runCli(['release', 'list', '--json'], await fixture.cliEnv(env));
    assert.equal(releases.code, 0, releases.stderr);
    const body = parseJson(releases.stdout);
    assert.deepEqual(
      (body.releases as Array<{ version: string; state: string }>).map((r) => [r.version, r.state]),
      [
        ['1.5.1', 'failed'],
        ['1.5.0', 'rolled-back'],
        ['1.4.2', 'completed'],
      ],
    );
    const status = await runCli(['release', 'status', '--json'], await fixture.cliEnv(env));
    assert.equal(status.code, 0, status.stderr);
    const shown = parseJson(status.stdout);
    assert.equal((shown.release as { version: string }).version, '1.5.1');
    assert.match(JSON.stringify(shown.gates), /crash-free|sessions/);
    const human = await runCli(['release', 'show', '1.5.0'], await fixture.cliEnv(env));
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /Release 1\.5\.0 \(v1\.5\.0 at [0-9a-f]{12}\): rolled-back/);
    assert.match(human.stdout, /android: build .*rollout halted at 10 %/);
    const reviewed = await runCli(['release', 'review-requested', '1.4.2'], await fixture.cliEnv({ ...env, SHIPSHAPE_OPERATOR: 'carol' }));
    assert.equal(reviewed.code, 0, reviewed.stderr);
    const { rows } = await fixture.pool.query<{ actor: string }>(`SELECT actor FROM audit_log WHERE action = 'release.expedited-review.requested'`);
    assert.deepEqual(
      rows.map((r) => r.actor),
      ['operator:carol'],
    );
  });

  test('the scheduler of a running server reads the gates of a release whose step is due', async () => {
    await createRelease(fixture.pool, {
      version: '2.0.0',
      gitTag: 'v2.0.0',
      gitCommit: null,
      bump: 'major',
      controlVersion: STABLE.version,
      runId: 'sched',
      createdBy: 'operator:seed',
    });
    await setReleaseState(fixture.pool, '2.0.0', 'rolling-out');
    await fixture.pool.query(`UPDATE releases SET next_step_at = now() - interval '1 second' WHERE version = '2.0.0'`);
    const api = await startWorkerApi({ database: fixture.database, env: { ...env, STATE_DIR: (await fixture.deps()).config.stateDir } });
    try {
      const release = await eventually('the scheduler reads the gates of 2.0.0', async () => {
        const r = await getRelease(fixture.pool, '2.0.0');
        return r.gates?.verdict === 'wait' ? r : undefined;
      });
      assert.match(String(release.gates?.summary), /0 of 100 sessions needed for 2\.0\.0/);
      assert.ok(release.nextStepAt && release.nextStepAt.getTime() > Date.now() + 30 * 60_000, 'read again after RELEASE_GATE_RECHECK');
      // The rollback's emails go out through the same workers, in rate-limited batches.
      await eventually('the rollback notice emails are sent', async () => {
        const { rows } = await fixture.pool.query<{ status: string }>(
          `SELECT status FROM maintenance_notices WHERE subject = 'We are rolling back the latest app update'`,
        );
        return rows[0]?.status === 'done' ? true : undefined;
      });
    } finally {
      await api.close();
    }
  });

  test('API requests are counted per X-App-Version for the gates; anything that is not a version counts as unknown', async () => {
    assert.equal(appVersionOf('2.4.1'), '2.4.1');
    assert.equal(appVersionOf('<script>'), 'unknown');
    const metrics = new RequestMetrics('version-test');
    metrics.record(200, 3, '9.9.9');
    metrics.record(503, 3, '9.9.9');
    metrics.record(200, 3);
    await metrics.flush(fixture.pool);
    const rows = await readVersionMetrics(fixture.pool, 60_000, ['9.9.9', 'unknown']);
    assert.deepEqual(
      rows.find((r) => r.version === '9.9.9'),
      { version: '9.9.9', requests: 2, errors: 1, errorRate: 0.5 },
    );
    assert.equal(rows.find((r) => r.version === 'unknown')?.requests, 1);
  });
});
