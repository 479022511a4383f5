/**
 * What the release procedures share (runbook: Deploy New Version, Rollback Deployment): the
 * lock that keeps them apart, the app repository, the next version, the CI check, the
 * credentials check, and the release a command acts on.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../../config/index.ts';
import type { Queryable } from '../../db/pool.ts';
import { currentRollout, platforms, type Platform, type Release } from '../../domain/releases.ts';
import { describeError, ShipError } from '../../errors.ts';
import { runCommand } from '../release/process.ts';
import { missingCredentials } from '../release/stores.ts';
import type { CheckResult } from '../engine/types.ts';

/** One release procedure at a time: they all move the same stores. */
export const RELEASE_LOCK = 'app:release';

export const platformParam = z.enum(platforms, { error: 'must be ios or android' });

export function appRepoDir(config: Config): string {
  const dir = config.release.appRepoDir;
  if (dir === undefined) throw new ShipError('SHIP_ERR_CONFIG', 'APP_REPO_DIR is not set. Point it at a clone of the mobile app repository.');
  return dir;
}

export async function packageVersion(dir: string): Promise<string> {
  const text = await readFile(path.join(dir, 'package.json'), 'utf8');
  const parsed = z.object({ version: z.string().regex(/^\d+\.\d+\.\d+$/) }).safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new ShipError('SHIP_ERR_PREREQUISITE_FAILED', `${path.join(dir, 'package.json')} has no plain x.y.z "version". Fix it in the app repository.`);
  return parsed.data.version;
}

/** What `npm version <bump>` will make of `version`. */
export function nextVersion(version: string, bump: 'patch' | 'minor' | 'major'): string {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map(Number);
  if (bump === 'major') return `${major + 1}.0.0`;
  if (bump === 'minor') return `${major}.${minor + 1}.0`;
  return `${major}.${minor}.${patch + 1}`;
}

export function notesPath(config: Config, version: string): string {
  return path.resolve(appRepoDir(config), config.release.notesDir, `${version}.md`);
}

/**
 * The CI status of a commit. RELEASE_CI_CHECK_URL (`{sha}` replaced) must answer 200 with
 * `{"state": "success"}` (GitHub's combined-status shape; `pending`, `failure`, `error` are
 * not green); or RELEASE_CI_CHECK_COMMAND (`{sha}` replaced, run by sh in the app repository)
 * must exit 0.
 */
export async function ciCheck(config: Config, sha: string): Promise<CheckResult> {
  const { ciCheckUrl, ciCheckCommand, ciCheckToken } = config.release;
  if (ciCheckUrl !== undefined) {
    const url = ciCheckUrl.replaceAll('{sha}', sha).replaceAll('%7Bsha%7D', sha);
    try {
      const response = await fetch(url, {
        headers: { accept: 'application/json', ...(ciCheckToken === undefined ? {} : { authorization: `Bearer ${ciCheckToken}` }) },
        signal: AbortSignal.timeout(10_000),
      });
      const body = z.object({ state: z.string() }).safeParse(await response.json().catch(() => null));
      if (!response.ok || !body.success)
        return {
          ok: false,
          detail: `the CI check answered HTTP ${response.status}${body.success ? '' : ' without {"state": …}'}`,
          remedy: 'check RELEASE_CI_CHECK_URL answers {"state": "success"} for a green commit',
        };
      return body.data.state === 'success'
        ? { ok: true, detail: `CI is green for ${sha.slice(0, 12)}` }
        : {
            ok: false,
            detail: `CI is ${body.data.state} for ${sha.slice(0, 12)}`,
            remedy: 'wait for CI to pass on this commit (or fix it), then run the deploy again',
          };
    } catch (error) {
      return { ok: false, detail: `the CI check did not answer (${describeError(error)})`, remedy: 'check RELEASE_CI_CHECK_URL and the network' };
    }
  }
  if (ciCheckCommand !== undefined) {
    const result = await runCommand(ciCheckCommand.replaceAll('{sha}', sha), [], { cwd: appRepoDir(config), shell: true });
    return result.code === 0
      ? { ok: true, detail: `RELEASE_CI_CHECK_COMMAND exited 0 for ${sha.slice(0, 12)}` }
      : {
          ok: false,
          detail: `RELEASE_CI_CHECK_COMMAND exited ${result.code ?? 'on a signal'} for ${sha.slice(0, 12)}: ${(result.stderr || result.stdout).trim().slice(0, 200)}`,
          remedy: 'CI is not green for this commit: wait for it or fix it',
        };
  }
  return {
    ok: false,
    detail: 'neither RELEASE_CI_CHECK_URL nor RELEASE_CI_CHECK_COMMAND is set, so CI cannot be checked',
    remedy: 'set RELEASE_CI_CHECK_URL (answering {"state":"success"}) or RELEASE_CI_CHECK_COMMAND (exit 0 when green); `{sha}` is replaced with the commit',
  };
}

/** Store credentials for both platforms: configured, and the key files readable. */
export async function credentialsCheck(config: Config, which: readonly Platform[] = platforms): Promise<CheckResult> {
  const missing = which.flatMap((platform) => missingCredentials(config, platform));
  if (missing.length > 0)
    return {
      ok: false,
      detail: `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set`,
      remedy: 'set them (README, "Deploy and rollback"): the Play service account key and the App Store Connect API key',
    };
  const files = [config.release.play.serviceAccountFile, config.release.appStore.privateKeyFile].filter((f): f is string => f !== undefined);
  for (const file of files) {
    try {
      await readFile(file);
    } catch (error) {
      return { ok: false, detail: `${file} cannot be read (${describeError(error)})`, remedy: 'check the key file path and its permissions' };
    }
  }
  return {
    ok: true,
    detail: `Google Play (${config.release.play.packageName ?? '?'}) and App Store Connect (app ${config.release.appStore.appId ?? '?'}) keys present`,
  };
}

/** The release the halt/resume/complete commands act on: the one rolling out or halted. */
export async function rolloutInHand(db: Queryable): Promise<Release> {
  const release = await currentRollout(db);
  if (release === undefined)
    throw new ShipError('SHIP_ERR_PREREQUISITE_FAILED', 'No release is rolling out or halted. `shipshape release list` shows the releases.');
  return release;
}

export function percent(fraction: number): string {
  return `${Number((fraction * 100).toFixed(2))} %`;
}
