/**
 * Keeps this instance's copy of the shared app state fresh. The request path reads the
 * copy (no query per request); changes made anywhere arrive within one poll interval,
 * and changes made through this instance are applied at once via `refresh()`.
 */
import type { Queryable } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { readAppState, type AppState } from './app-state.ts';

export class AppStateWatcher {
  private state: AppState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(state: AppState) => void>();

  constructor(
    private readonly db: Queryable,
    private readonly logger: Logger,
    private readonly pollMs = 1_000,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((error: unknown) => this.logger.warn({ err: (error as Error).message }, 'could not refresh app state; keeping the last known state'));
    }, this.pollMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The last known state. Before the first successful read, maintenance is reported off. */
  get current(): AppState {
    return this.state ?? { maintenance: { enabled: false, message: null, setBy: null, since: null }, minimumAppVersion: null, cacheEpochs: {} };
  }

  onChange(listener: (state: AppState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async refresh(): Promise<AppState> {
    const next = await readAppState(this.db);
    const changed = JSON.stringify(next) !== JSON.stringify(this.state);
    this.state = next;
    if (changed) for (const listener of this.listeners) listener(next);
    return next;
  }
}
