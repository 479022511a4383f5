/**
 * Everything the HTTP layer needs, built once by the runtime and handed to `buildApp`.
 */
import type { Alert } from '../adapters/alerts/index.ts';
import type { Mailer } from '../adapters/mailer.ts';
import type { Config } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import type { AppStateWatcher } from '../domain/app-state-watcher.ts';
import type { SessionCache } from '../domain/session-cache.ts';
import type { TaskListCache } from '../domain/task-list-cache.ts';
import type { Logger } from '../log.ts';
import type { RequestMetrics } from './metrics.ts';

/**
 * What the routes use of the server's live operations. The runtime builds them
 * (src/runtime/live-operations.ts) and hands them down; the HTTP layer names only what it
 * calls, so it does not depend on the layer that starts it.
 */
export interface LiveServices {
  readonly cache: TaskListCache;
  /** Signed-in sessions kept briefly in memory; revocations arrive by NOTIFY (domain/session-cache.ts). */
  readonly sessions: SessionCache;
  /** Tells every instance to re-read shared state now; call after committing a change. */
  readonly feeds: { announce(): Promise<void> };
  /** Push delivery: hands a job that is ready to send to this instance's worker. */
  readonly notifications: { submit(jobId: string): void };
}

export interface ApiContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly database: Database;
  readonly appState: AppStateWatcher;
  /** Task-list cache, change feeds between instances, push delivery. */
  readonly live: LiveServices;
  readonly mailer: Mailer;
  readonly metrics: RequestMetrics;
  readonly version: string;
  /** Alerts the API raises itself (the rate limiter falling back from Redis); the log only without it. */
  readonly alerts?: ((alert: Alert) => Promise<unknown>) | undefined;
}
