/**
 * Increasing delay for repeated failed logins on one account, on top of the HTTP rate limits:
 * the first few mistakes cost nothing, then each further failure doubles the wait before the
 * next attempt is even checked. State is kept per lower-cased email (hashed), whether or not
 * an account exists, so the delay itself cannot reveal who has an account.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queryable } from '../db/pool.ts';

export interface ThrottlePolicy {
  /** Failures allowed without any delay. */
  readonly freeFailures: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Failures older than this are forgotten. */
  readonly windowMinutes: number;
}

export const defaultThrottlePolicy: ThrottlePolicy = { freeFailures: 3, baseDelayMs: 500, maxDelayMs: 10_000, windowMinutes: 15 };

/** 0 for the first `freeFailures`, then base, 2×base, 4×base… up to the maximum. */
export function delayAfterFailures(failures: number, policy: ThrottlePolicy = defaultThrottlePolicy): number {
  if (failures < policy.freeFailures) return 0;
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failures - policy.freeFailures));
}

export function accountHash(email: string): Buffer {
  return createHash('sha256').update(email.trim().toLowerCase(), 'utf8').digest();
}

/** Recent consecutive failures for this email and the delay they impose on the next attempt. */
export async function loginDelay(db: Queryable, email: string, policy: ThrottlePolicy = defaultThrottlePolicy): Promise<{ failures: number; delayMs: number }> {
  const { rows } = await db.query<{ failures: number }>(
    'SELECT failures FROM login_throttle WHERE account_hash = $1::bytea AND last_failure_at > now() - make_interval(mins => $2::int)',
    [accountHash(email), policy.windowMinutes],
  );
  const failures = rows[0]?.failures ?? 0;
  return { failures, delayMs: delayAfterFailures(failures, policy) };
}

/** Sleeps for the delay the account's recent failures impose. */
export async function waitOutLoginDelay(db: Queryable, email: string, policy: ThrottlePolicy = defaultThrottlePolicy): Promise<void> {
  const { delayMs } = await loginDelay(db, email, policy);
  if (delayMs > 0) await sleep(delayMs);
}

/** Counts one more failure (starting over when the last one is older than the window); returns the count. */
export async function recordLoginFailure(db: Queryable, email: string, policy: ThrottlePolicy = defaultThrottlePolicy): Promise<number> {
  await db.query('DELETE FROM login_throttle WHERE last_failure_at < now() - make_interval(mins => $1::int)', [policy.windowMinutes]);
  const { rows } = await db.query<{ failures: number }>(
    `INSERT INTO login_throttle (account_hash, failures, last_failure_at) VALUES ($1::bytea, 1, now())
     ON CONFLICT (account_hash) DO UPDATE SET
       failures = CASE WHEN login_throttle.last_failure_at < now() - make_interval(mins => $2::int) THEN 1 ELSE login_throttle.failures + 1 END,
       last_failure_at = now()
     RETURNING failures`,
    [accountHash(email), policy.windowMinutes],
  );
  return rows[0]?.failures ?? 1;
}

export async function clearLoginFailures(db: Queryable, email: string): Promise<void> {
  await db.query('DELETE FROM login_throttle WHERE account_hash = $1::bytea', [accountHash(email)]);
}
