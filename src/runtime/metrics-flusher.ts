/**
 * Writes this API instance's request counts to the shared `request_metrics` table every
 * METRICS_FLUSH_INTERVAL, and once more on the way out, so the deployment's figures include
 * every instance. A failed flush keeps its counts for the next (RequestMetrics does) and is
 * logged once per outage.
 */
import type { Pool } from '../db/pool.ts';
import { describeError } from '../errors.ts';
import type { RequestMetrics } from '../http/metrics.ts';
import type { Logger } from '../log.ts';

export interface MetricsFlusher {
  close(): Promise<void>;
}

export function startMetricsFlusher(options: { metrics: RequestMetrics; pool: Pool; intervalMs: number; logger: Logger }): MetricsFlusher {
  const { metrics, pool, intervalMs, logger } = options;
  let failures = 0;
  let running: Promise<void> | undefined;
  const flush = async (): Promise<void> => {
    try {
      await metrics.flush(pool);
      if (failures > 0) logger.info('request metrics are written again');
      failures = 0;
    } catch (error) {
      if (failures++ === 0) logger.warn({ err: describeError(error) }, 'request metrics could not be written; they are kept and written with the next flush');
    }
  };
  const timer = setInterval(() => {
    running ??= flush().finally(() => {
      running = undefined;
    });
  }, intervalMs);
  timer.unref();
  return {
    close: async () => {
      clearInterval(timer);
      await running;
      await flush();
    },
  };
}
