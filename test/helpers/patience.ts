/**
 * How long a test waits for something that must happen before calling it a hang.
 *
 * This is never a claim about speed: CI machines have two cores and may be busy, so a
 * command that takes 3 s on a quiet machine can take a minute there. Tests wait for
 * conditions, bounded only by this guard; how fast things are is measured in bench/.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export const HANG_GUARD_MS = Number(process.env.TEST_HANG_GUARD_MS ?? 10 * 60_000);

/**
 * Polls `check` until it returns a value other than `undefined`, and returns that value.
 * Throws only after `HANG_GUARD_MS`, naming what never happened and, given `lastSeen`, what was
 * observed instead.
 */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  options: { pollMs?: number; lastSeen?: () => string } = {},
): Promise<T> {
  const giveUpAt = Date.now() + HANG_GUARD_MS;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > giveUpAt) {
      const seen = options.lastSeen ? `; last seen: ${options.lastSeen()}` : '';
      throw new Error(`${what} never happened (waited ${HANG_GUARD_MS / 1000} s)${seen}`);
    }
    await sleep(options.pollMs ?? 100);
  }
}

/**
 * Environment for every server a test starts. On a starved CI machine the event loop of a
 * healthy server can stall for over a second, and load shedding would then answer 503
 * "overloaded" to the very requests a test is checking; the tests turn it off.
 */
export const BUSY_MACHINE_ENV: Readonly<Record<string, string>> = { OVERLOAD_EVENT_LOOP_DELAY_MS: '0' };
