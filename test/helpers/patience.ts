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
 * Throws only after `HANG_GUARD_MS`, naming what never happened.
 */
export async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, options: { pollMs?: number } = {}): Promise<T> {
  const giveUpAt = Date.now() + HANG_GUARD_MS;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > giveUpAt) throw new Error(`${what} never happened (waited ${HANG_GUARD_MS / 1000} s)`);
    await sleep(options.pollMs ?? 100);
  }
}
