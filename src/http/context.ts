/**
 * Everything the HTTP layer needs, built once by the runtime and handed to `buildApp`.
 */
import type { Alert } from '../adapters/alerts/index.ts';
import type { Mailer } from '../adapters/mailer.ts';
import type { Config } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import type { AppStateWatcher } from '../domain/app-state-watcher.ts';
import type { Logger } from '../log.ts';
import type { LiveOperations } from '../runtime/live-operations.ts';
import type { RequestMetrics } from './metrics.ts';

export interface ApiContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly database: Database;
  readonly appState: AppStateWatcher;
  /** Task-list cache, change feeds between instances, push delivery. */
  readonly live: LiveOperations;
  readonly mailer: Mailer;
  readonly metrics: RequestMetrics;
  readonly version: string;
  /** Alerts the API raises itself (the rate limiter falling back from Redis); the log only without it. */
  readonly alerts?: ((alert: Alert) => Promise<unknown>) | undefined;
}
