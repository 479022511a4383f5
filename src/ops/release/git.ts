/**
 * The app repository (APP_REPO_DIR) as the deploy needs it: clean, on the main branch,
 * with the remote's main merged — read with git itself, never assumed.
 */
import { runChecked, runCommand } from './process.ts';

export interface RepoState {
  readonly branch: string;
  readonly head: string;
  /** `git status --porcelain` lines: anything changed, staged or untracked. */
  readonly dirty: string[];
  /** Commits on the remote's main that HEAD does not contain (after a fetch). */
  readonly behind: number;
}

export async function git(dir: string, args: readonly string[]): Promise<string> {
  return (await runChecked('git', args, { cwd: dir })).trim();
}

export async function readRepoState(dir: string, remote: string, mainBranch: string): Promise<RepoState> {
  await git(dir, ['fetch', '--quiet', remote, mainBranch]);
  const branch = await git(dir, ['rev-parse', '--abbrev-ref', 'HEAD']);
  const head = await git(dir, ['rev-parse', 'HEAD']);
  const status = await git(dir, ['status', '--porcelain']);
  const behind = Number(await git(dir, ['rev-list', '--count', `HEAD..${remote}/${mainBranch}`]));
  return { branch, head, dirty: status === '' ? [] : status.split('\n'), behind };
}

export async function tagExists(dir: string, tag: string): Promise<boolean> {
  const result = await runCommand('git', ['rev-parse', '--verify', '--quiet', `refs/tags/${tag}`], { cwd: dir });
  return result.code === 0;
}

export async function remoteTagExists(dir: string, remote: string, tag: string): Promise<boolean> {
  const out = await git(dir, ['ls-remote', '--tags', remote, `refs/tags/${tag}`]);
  return out !== '';
}
