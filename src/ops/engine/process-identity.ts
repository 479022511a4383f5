/**
 * Is the process that wrote a lock file or a journal attempt still alive?
 *
 * A pid alone is not enough: pids are reused, and a SIGKILLed child stays a zombie until
 * its parent reaps it. On Linux the start time from /proc/<pid>/stat tells a reused pid
 * apart, and the state field tells a zombie apart; elsewhere `kill(pid, 0)` is the best
 * available answer.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export interface ProcessIdentity {
  readonly pid: number;
  readonly host: string;
  /** Kernel start time of the process (clock ticks since boot), when the platform says. */
  readonly processStart?: string | undefined;
}

export function currentProcess(): ProcessIdentity {
  return { pid: process.pid, host: hostname(), processStart: procStat(process.pid)?.start };
}

export type Liveness = 'alive' | 'dead' | 'unknown';

/** A recorded runner (a push send, a job) on this host whose process is gone can be taken over at once. */
export const runnerIsGone = (runner: ProcessIdentity): boolean => liveness(runner) === 'dead';

/** `unknown` when the process ran on another host: we cannot look, so callers must assume it lives. */
export function liveness(identity: ProcessIdentity): Liveness {
  if (identity.host !== hostname()) return 'unknown';
  if (identity.pid === process.pid) {
    return identity.processStart === undefined || identity.processStart === procStat(process.pid)?.start ? 'alive' : 'dead';
  }
  try {
    process.kill(identity.pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to another user (another operator's run).
    if (error instanceof Error && 'code' in error && error.code === 'EPERM') return 'alive';
    return 'dead';
  }
  const stat = procStat(identity.pid);
  if (stat === undefined) return 'alive';
  if (stat.state === 'Z' || stat.state === 'X') return 'dead';
  if (identity.processStart !== undefined && stat.start !== identity.processStart) return 'dead';
  return 'alive';
}

function procStat(pid: number): { state: string; start: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or ")".
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const start = fields[19];
  return state === undefined || start === undefined ? undefined : { state, start };
}
