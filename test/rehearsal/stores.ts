/**
 * What the `release *` and `update *` procedures talk to in the rehearsal's deployment, each a
 * loopback fake holding the client to the documented contract: Google Play (with its OAuth token
 * endpoint), App Store Connect, Sentry release health, a CI status endpoint, the eas-cli
 * stand-in (first on the operator's EAS_BIN), and the mobile app's repository (a clone of a
 * local bare remote, at 1.4.2 with the notes of the next releases).
 *
 * `env` is what every Shipshape process reads — the scheduler of each `serve` and the `worker`
 * moves the store rollouts and reads the gates — and `operatorEnv` what only the operator's
 * CLI needs (the app repository, CI, EAS): the same variables production reads, nothing else.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFakeAppStoreConnect, type FakeAppStoreConnect } from '../fakes/app-store-connect.ts';
import { createFakeEas, type FakeEas } from '../fakes/eas-cli.ts';
import { startFakeGooglePlay, type FakeGooglePlay } from '../fakes/google-play.ts';
import { closeServer, listenOnLoopback } from '../fakes/loopback.ts';
import { startFakeSentrySessions, type FakeSentrySessions } from '../fakes/sentry-sessions.ts';
import { storeEnv } from '../helpers/stores.ts';

export const SENTRY_ORG = 'acme';
const SENTRY_TOKEN = 'sntrys_rehearsal';
/** The app version users run before the rehearsal's first deploy (the repository's package.json). */
export const FIRST_APP_VERSION = '1.4.2';
/** The Expo runtime version the rehearsal's OTA updates are published for. */
export const RUNTIME_VERSION = '1.0.0';
/** Sentry release names, as the app reports them (SENTRY_RELEASE_NAME, UPDATES_SENTRY_RELEASE). */
export const sentryReleaseOf = (version: string) => `com.example.tasks@${version}`;
export const sentryUpdateReleaseOf = (updateId: string) => `com.example.tasks@${RUNTIME_VERSION}+${updateId}`;

export interface ReleaseWorld {
  readonly play: FakeGooglePlay;
  readonly asc: FakeAppStoreConnect;
  readonly sentry: FakeSentrySessions;
  readonly eas: FakeEas;
  /** The operator's clone of the app repository and its remote (a bare repository). */
  readonly repo: string;
  readonly remote: string;
  /** Commits CI was asked about. */
  readonly ciSeen: string[];
  readonly env: Record<string, string>;
  readonly operatorEnv: Record<string, string>;
  close(): Promise<void>;
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
}

export async function startReleaseWorld(options: { stepInterval: string }): Promise<ReleaseWorld> {
  const [play, asc, sentry] = await Promise.all([
    startFakeGooglePlay(),
    startFakeAppStoreConnect(),
    startFakeSentrySessions({ org: SENTRY_ORG, token: SENTRY_TOKEN }),
  ]);
  const ciSeen: string[] = [];
  const ci = createServer((req, res) => {
    const sha = /\/status\/([0-9a-f]{40})$/.exec(req.url ?? '')?.[1];
    if (sha === undefined) return res.writeHead(404).end();
    ciSeen.push(sha);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ state: 'success', sha, total_count: 3 }));
  });
  const ciUrl = await listenOnLoopback(ci);

  const work = await mkdtemp(path.join(tmpdir(), 'shipshape-rehearsal-release-'));
  const remote = path.join(work, 'remote.git');
  const repo = path.join(work, 'app');
  execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', remote]);
  execFileSync('git', ['clone', '--quiet', remote, repo], { stdio: 'ignore' });
  git(repo, 'config', 'user.email', 'release@example.com');
  git(repo, 'config', 'user.name', 'Release Bot');
  git(repo, 'checkout', '--quiet', '-b', 'main');
  await writeFile(path.join(repo, 'package.json'), `${JSON.stringify({ name: 'tasks-app', version: FIRST_APP_VERSION, private: true }, null, 2)}\n`);
  await writeFile(path.join(repo, 'eas.json'), JSON.stringify({ build: { production: {} }, submit: { production: {} } }));
  await mkdir(path.join(repo, 'release-notes'));
  // The rehearsal deploys minor versions: 1.5.0 (rolled out to completion), then 1.6.0 (rolled back).
  for (const version of ['1.5.0', '1.6.0']) await writeFile(path.join(repo, `release-notes/${version}.md`), `# ${version}\n\nRehearsal release.\n`);
  git(repo, 'add', '.');
  git(repo, 'commit', '--quiet', '-m', 'app');
  git(repo, 'push', '--quiet', '-u', 'origin', 'main');
  const stores = await storeEnv(work, play, asc);
  const eas = await createFakeEas(work, { playUrl: play.url, ascUrl: asc.url });

  const env: Record<string, string> = {
    ...stores,
    SENTRY_API_URL: sentry.url,
    SENTRY_ORG,
    SENTRY_TOKEN,
    SENTRY_RELEASE_NAME: sentryReleaseOf('{version}'),
    UPDATES_SENTRY_RELEASE: `com.example.tasks@{runtimeVersion}+{updateId}`,
    // A rehearsal's day is a few seconds: each step is due at once, and the sample the gates
    // need is what the traffic sends in that time (X-App-Version, x-update-id) plus Sentry's.
    RELEASE_ROLLOUT_STEPS: '5,25,100',
    RELEASE_STEP_INTERVAL: options.stepInterval,
    RELEASE_GATE_RECHECK: options.stepInterval,
    RELEASE_GATE_WINDOW: '1h',
    RELEASE_GATE_MIN_SESSIONS: '100',
    RELEASE_GATE_MIN_REQUESTS: '10',
    UPDATES_GATE_MIN_SAMPLE: '10',
    // The API instances flush per-version request counts this often (the gates read them).
    METRICS_FLUSH_INTERVAL: '1s',
  };
  const operatorEnv: Record<string, string> = {
    APP_REPO_DIR: repo,
    RELEASE_CI_CHECK_URL: `${ciUrl}/status/{sha}`,
    EAS_BIN: path.join(eas.binDir, 'eas'),
    EAS_BUILD_POLL_INTERVAL: '100ms',
    ...eas.env,
  };
  return {
    play,
    asc,
    sentry,
    eas,
    repo,
    remote,
    ciSeen,
    env,
    operatorEnv,
    close: async () => {
      await Promise.all([play.close(), asc.close(), sentry.close(), closeServer(ci)]);
      await rm(work, { recursive: true, force: true });
    },
  };
}
