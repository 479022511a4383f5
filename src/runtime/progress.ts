/**
 * Progress lines while `serve` (or `worker`) prepares: the first start on a fresh STATE_DIR
 * creates the embedded database cluster and applies every migration, which takes seconds to a
 * minute on a small machine, and a silent terminal looks hung. Every interval (2 s by default,
 * STARTUP_PROGRESS_INTERVAL_MS) one line through the normal logger says what it is doing and for
 * how long, e.g. "preparing the embedded database: creating the cluster (first start only)… 4 s".
 * A start that is ready within the interval prints none of them.
 */
import type { Logger } from '../log.ts';

export interface StartupProgress {
  /** What start-up is doing now; the next line names it. */
  stage(what: string): void;
  /** Seconds since start-up began, for the ready line. */
  elapsedSeconds(): number;
  /** No more lines. */
  stop(): void;
}

export function startupProgress(logger: Logger, intervalMs: number): StartupProgress {
  const started = performance.now();
  const elapsedSeconds = () => (performance.now() - started) / 1000;
  let current = 'the server';
  // A timer, not a line per stage: a fast start stays quiet, a slow one never goes quiet for long.
  // A stage that blocks the event loop (PGlite's WASM start) delays the line; it then says so by its seconds.
  const timer = setInterval(() => {
    const seconds = Math.round(elapsedSeconds());
    logger.info({ stage: current, elapsedSeconds: seconds }, `preparing ${current}… ${seconds} s`);
  }, intervalMs);
  timer.unref();
  return {
    stage: (what) => {
      current = what;
    },
    elapsedSeconds,
    stop: () => clearInterval(timer),
  };
}

/** A progress that prints nothing, for callers that start a server in-process (tests, the benchmark). */
export const noProgress: StartupProgress = { stage: () => undefined, elapsedSeconds: () => 0, stop: () => undefined };
