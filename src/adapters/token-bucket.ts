/**
 * A token bucket: `ratePerSecond` tokens arrive each second, at most `capacity` are held.
 * Takers wait in arrival order, so one large taker is not starved by a stream of small ones.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) => sleep(ms, undefined, signal === undefined ? undefined : { signal }),
};

export interface TokenBucketOptions {
  readonly ratePerSecond: number;
  readonly capacity: number;
  /** The bucket starts full unless told otherwise. */
  readonly initialTokens?: number;
  readonly clock?: Clock;
}

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  private queue: Promise<void> = Promise.resolve();
  private readonly clock: Clock;

  private readonly options: TokenBucketOptions;

  constructor(options: TokenBucketOptions) {
    this.options = options;
    if (!(options.ratePerSecond > 0) || !(options.capacity > 0)) throw new RangeError('a token bucket needs a positive rate and capacity');
    this.clock = options.clock ?? systemClock;
    this.tokens = Math.min(options.capacity, options.initialTokens ?? options.capacity);
    this.updatedAt = this.clock.now();
  }

  /** Resolves once `count` tokens were taken; rejects if `signal` aborts first (nothing is taken then). */
  take(count: number, signal?: AbortSignal): Promise<void> {
    if (count > this.options.capacity) {
      return Promise.reject(new RangeError(`cannot take ${count} tokens from a bucket that holds ${this.options.capacity}`));
    }
    const turn = this.queue.then(() => this.waitFor(count, signal));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async waitFor(count: number, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      this.refill();
      if (this.tokens >= count) {
        this.tokens -= count;
        return;
      }
      const missing = count - this.tokens;
      await this.clock.sleep(Math.ceil((missing / this.options.ratePerSecond) * 1000), signal);
    }
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.updatedAt);
    this.tokens = Math.min(this.options.capacity, this.tokens + (elapsed / 1000) * this.options.ratePerSecond);
    this.updatedAt = now;
  }
}
