/**
 * A stand-in for the eas-cli executable, put first on PATH as `eas`: it records every call
 * (argv and working directory, one JSON line in `log`) and answers with eas-cli's documented
 * machine-readable output:
 *
 * - `build --platform all --profile production --non-interactive --json --no-wait` → a JSON
 *   array of two builds (IOS, ANDROID) `{id, platform, status: "NEW", appVersion (from the
 *   project's package.json), appBuildVersion}`; any other flags → exit 1 with eas-cli's message;
 * - `build:view <id> --json` → the build, one status further each call
 *   (NEW → IN_QUEUE → IN_PROGRESS → FINISHED), or ERRORED for a platform named in
 *   `EAS_FAKE_FAIL_BUILD`;
 * - `submit --platform ios|android --id <id> --non-interactive …` → only for a FINISHED build of
 *   that platform (else exit 1); prints the submission page URL, and tells the store fakes the
 *   binary arrived (`EAS_FAKE_PLAY_URL/test/upload/<code>`, `EAS_FAKE_ASC_URL/test/versions/<v>`).
 *   A platform named in `EAS_FAKE_FAIL_SUBMIT` exits 1.
 * Builds made outside the stand-in can be seeded with `seedBuild`.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface EasCall {
  argv: string[];
  cwd: string;
}

export interface FakeEas {
  /** The folder holding `eas`; put it first on PATH. */
  readonly binDir: string;
  /** Environment the stand-in reads (state, log, store side doors). */
  readonly env: Record<string, string>;
  calls(): Promise<EasCall[]>;
  seedBuild(build: { id: string; platform: 'IOS' | 'ANDROID'; appVersion: string; appBuildVersion: string }): Promise<void>;
}

const SCRIPT = String.raw`#!/usr/bin/env node
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const argv = process.argv.slice(2);
fs.appendFileSync(process.env.EAS_FAKE_LOG, JSON.stringify({ argv, cwd: process.cwd() }) + '\n');
const statePath = process.env.EAS_FAKE_STATE;
const state = fs.existsSync(statePath) ? JSON.parse(fs.readFileSync(statePath, 'utf8')) : { builds: {}, nextCode: 100 };
const save = () => fs.writeFileSync(statePath, JSON.stringify(state));
const has = (flag) => argv.includes(flag);
const value = (flag) => { const i = argv.indexOf(flag); return i === -1 ? undefined : argv[i + 1]; };
const fail = (message) => { process.stderr.write(message + '\n'); process.exit(1); };
const ORDER = ['NEW', 'IN_QUEUE', 'IN_PROGRESS', 'FINISHED'];
const post = async (url) => { const r = await fetch(url, { method: 'POST' }); if (!r.ok) fail('store side door answered ' + r.status); };
(async () => {
  const command = argv[0];
  if (command === 'build') {
    if (value('--platform') !== 'all' || value('--profile') !== 'production' || !has('--non-interactive') || !has('--json') || !has('--no-wait')) fail('Unexpected flags for eas build: ' + argv.join(' '));
    const version = JSON.parse(fs.readFileSync(path.join(process.cwd(), 'package.json'), 'utf8')).version;
    const builds = ['IOS', 'ANDROID'].map((platform) => {
      const build = { id: crypto.randomUUID(), platform, status: 'NEW', appVersion: version, appBuildVersion: String(state.nextCode++), distribution: 'STORE', buildProfile: 'production' };
      state.builds[build.id] = build;
      return build;
    });
    save();
    process.stdout.write(JSON.stringify(builds, null, 2));
    return;
  }
  if (command === 'build:view') {
    const build = state.builds[argv[1]];
    if (!build || !has('--json')) fail('Build ' + argv[1] + ' not found');
    const failing = (process.env.EAS_FAKE_FAIL_BUILD || '').split(',').includes(build.platform.toLowerCase());
    if (build.status !== 'FINISHED' && build.status !== 'ERRORED') build.status = failing && build.status === 'IN_PROGRESS' ? 'ERRORED' : ORDER[ORDER.indexOf(build.status) + 1];
    if (build.status === 'ERRORED') build.error = { errorCode: 'EAS_BUILD_UNKNOWN_GRADLE_ERROR', message: 'Gradle build failed with unknown error.' };
    save();
    process.stdout.write(JSON.stringify(build, null, 2));
    return;
  }
  if (command === 'submit') {
    const platform = value('--platform');
    const build = state.builds[value('--id')];
    if (!has('--non-interactive')) fail('Input is required, but stdin is not readable. Use --non-interactive.');
    if (!build || build.platform.toLowerCase() !== platform || build.status !== 'FINISHED') fail('Build ' + value('--id') + ' is not a finished ' + platform + ' build');
    if ((process.env.EAS_FAKE_FAIL_SUBMIT || '').split(',').includes(platform)) fail('Submission failed: the store rejected the upload.');
    if (platform === 'android') await post(process.env.EAS_FAKE_PLAY_URL + '/test/upload/' + build.appBuildVersion);
    else await post(process.env.EAS_FAKE_ASC_URL + '/test/versions/' + build.appVersion);
    const id = crypto.randomUUID();
    process.stdout.write('✔ Submitted your app to ' + (platform === 'ios' ? 'App Store Connect' : 'Google Play Store') + '!\nSubmission details: https://expo.dev/accounts/acme/projects/tasks/submissions/' + id + '\n');
    return;
  }
  fail('eas stand-in: unknown command ' + command);
})();
`;

export async function createFakeEas(dir: string, stores: { playUrl: string; ascUrl: string }): Promise<FakeEas> {
  const binDir = path.join(dir, 'bin');
  await mkdir(binDir, { recursive: true });
  await writeFile(path.join(binDir, 'eas'), SCRIPT);
  await chmod(path.join(binDir, 'eas'), 0o755);
  const env = {
    EAS_FAKE_LOG: path.join(dir, 'eas-calls.jsonl'),
    EAS_FAKE_STATE: path.join(dir, 'eas-state.json'),
    EAS_FAKE_PLAY_URL: stores.playUrl,
    EAS_FAKE_ASC_URL: stores.ascUrl,
  };
  await writeFile(env.EAS_FAKE_LOG, '');
  return {
    binDir,
    env,
    async calls() {
      const text = await readFile(env.EAS_FAKE_LOG, 'utf8');
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as EasCall);
    },
    async seedBuild(build) {
      const state = JSON.parse(await readFile(env.EAS_FAKE_STATE, 'utf8').catch(() => '{"builds":{},"nextCode":100}')) as {
        builds: Record<string, unknown>;
        nextCode: number;
      };
      state.builds[build.id] = { ...build, status: 'FINISHED' };
      await writeFile(env.EAS_FAKE_STATE, JSON.stringify(state));
    },
  };
}
