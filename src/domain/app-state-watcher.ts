/**
 * Keeps this instance's copy of the shared app state fresh. The request path reads the
 * copy (no query per request). Changes made anywhere arrive three ways: `nudge()` from a
 * change notification (LISTEN/NOTIFY or Redis pub/sub, milliseconds), the poll every
 * `pollMs` (the safety net, because notifications are lost while a listener is
 * disconnected and never pass through PgBouncer in transaction mode), and `refresh()`
 * after this instance's own writes.
 */
import type { Queryable } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { readAppState, type AppState } from './app-state.ts';
import { describeError } from '../errors.ts';

export type AppStateListener = (state: AppState, previous: AppState) => void;

const INITIAL_STATE: AppState = {
  maintenance: { enabled: false, mode: 'full', message: null, setBy: null, since: null },
  banner: null,
  minimumAppVersion: null,
  cacheEpochs: {},
};

export class AppStateWatcher {
  private state: AppState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<AppStateListener>();
  /** The read in progress, and whether another must follow it (a change arrived meanwhile). */
  private inFlight: Promise<AppState> | undefined;
  private again = false;

  private readonly db: Queryable;
  private readonly logger: Logger;
  private readonly pollMs: number;

  constructor(db: Queryable, logger: Logger, pollMs = 1_000) {
    this.db = db;
    this.logger = logger;
    this.pollMs = pollMs;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => this.nudge(), this.pollMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The last known state. Before the first successful read, maintenance is reported off. */
  get current(): AppState {
    return this.state ?? INITIAL_STATE;
  }

  onChange(listener: AppStateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-read soon, without waiting; failures are logged and the last known state is kept. */
  nudge(): void {
    this.refresh().catch((error: unknown) => this.logger.warn({ err: describeError(error) }, 'could not refresh app state; keeping the last known state'));
  }

  /**
   * Re-reads the state. Calls that arrive while a read is running are folded into one more
   * read after it, so a burst of notifications costs two queries, and a change committed
   * after the running read began is never missed.
   */
  refresh(): Promise<AppState> {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    const run = (async () => {
      try {
        let next: AppState;
        do {
          this.again = false;
          next = await readAppState(this.db);
          this.apply(next);
        } while (this.again);
        return next;
      } finally {
        this.inFlight = undefined;
      }
    })();
    this.inFlight = run;
    return run;
  }

  private apply(next: AppState): void {
    const previous = this.current;
    const changed = JSON.stringify(next) !== JSON.stringify(this.state);
    this.state = next;
    if (!changed) return;
    for (const listener of this.listeners) {
      try {
        listener(next, previous);
      } catch (error) {
        this.logger.error({ err: describeError(error) }, 'an app state listener failed');
      }
    }
  }
}
