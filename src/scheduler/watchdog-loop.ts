/**
 * Runs the watchdog (src/ops/watchdog) inside the scheduler's workers. Every instance tries a
 * quarter of ALERT_EVALUATION_INTERVAL apart, and the database lets one of them evaluate per
 * interval, so an evaluation happens about every interval however many instances run or stop.
 */
import { hostname } from 'node:os';
import type { Alerter } from '../adapters/alerts/index.ts';
import type { Config } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { evaluateWatchdog } from '../ops/watchdog/evaluate.ts';

export interface WatchdogLoop {
  close(): Promise<void>;
}

export function startWatchdogLoop(options: { config: Config; database: Database; alerts: Alerter; logger: Logger; instanceName: string }): WatchdogLoop {
  const { config, logger } = options;
  const deps = { ...options, evaluator: `${options.instanceName}:${hostname()}:${process.pid}` };
  const attemptMs = Math.max(250, Math.floor(config.alerts.evaluationIntervalMs / 4));
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closed = false;
  let failures = 0;
  const loop = () => {
    if (closed) return;
    running = evaluateWatchdog(deps)
      .then(() => {
        if (failures > 0) logger.info('the watchdog reaches the database again');
        failures = 0;
      })
      .catch((error: unknown) => {
        if (failures++ === 0) logger.warn({ err: describeError(error) }, 'watchdog evaluation failed; retrying');
      })
      .finally(() => {
        running = undefined;
        if (!closed) timer = setTimeout(loop, attemptMs);
      });
  };
  loop();
  return {
    close: async () => {
      closed = true;
      clearTimeout(timer);
      await running;
    },
  };
}
