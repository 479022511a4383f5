/**
 * The harness's side of the load generator: one long-lived child process
 * (`load-runner.ts`) that takes jobs one at a time.
 */
import { createInterface } from 'node:readline';
import path from 'node:path';
import { ShipError } from '../../src/errors.ts';
import { benchDir } from './paths.ts';
import { spawnTs, stopChild } from './processes.ts';
import type { Percentiles } from './stats.ts';

export interface LoadJob {
  /** Full URL including the path. */
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly connections: number;
  readonly durationSeconds: number;
  /** Stop after this many requests instead (`durationSeconds` is then ignored). */
  readonly requests?: number | undefined;
  /** A JSON file holding an array of bearer tokens; each request uses the next one. */
  readonly tokensFile?: string | undefined;
  /** `new-task`: a JSON body `{"title": "Bench task <n>"}`. */
  readonly body?: 'new-task' | undefined;
  /** Any other status counts as an error. */
  readonly expectedStatus: number;
  /** Sent with every request (e.g. the Expo Updates protocol's headers). */
  readonly headers?: Record<string, string> | undefined;
  /** Each request carries a different value of this header (`<prefix><n>`), e.g. one EAS-Client-ID per simulated device. */
  readonly uniqueHeader?: { readonly name: string; readonly prefix: string } | undefined;
  /**
   * A read/write mix on one URL: passes over the token list, each user read by GET in this
   * many passes, then written (POST `new-task`) in one; 200 and 201 both count as expected.
   */
  readonly readsPerWrite?: number | undefined;
  /** Count the values of this response header (e.g. `x-cache`: hit / miss). */
  readonly countHeader?: string | undefined;
}

export interface LoadResult {
  /** Responses received, whatever their status. */
  readonly completed: number;
  /** Responses with the expected status. */
  readonly ok: number;
  /** Connection errors, timeouts and responses with another status. */
  readonly errors: number;
  readonly statusCounts: Record<string, number>;
  readonly seconds: number;
  /** Expected-status responses per second. */
  readonly throughput: number;
  /** Over every response received, in milliseconds. */
  readonly latency: Percentiles;
  /** Value → responses carrying it, for `countHeader`. */
  readonly headerCounts: Record<string, number>;
}

export interface LoadGenerator {
  run(job: LoadJob): Promise<LoadResult>;
  close(): Promise<void>;
}

type Reply = { id: number; result: LoadResult } | { id: number; error: string };

export function startLoadGenerator(): LoadGenerator {
  const child = spawnTs(path.join(benchDir, 'lib/load-runner.ts'), [], {});
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
  const waiting = new Map<number, { resolve: (result: LoadResult) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  if (child.stdout) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const reply: Reply = JSON.parse(line);
      const pending = waiting.get(reply.id);
      waiting.delete(reply.id);
      if ('error' in reply) pending?.reject(new ShipError('SHIP_ERR_INTERNAL', `The load generator failed: ${reply.error}`));
      else pending?.resolve(reply.result);
    });
  }
  child.once('exit', (code) => {
    for (const pending of waiting.values()) pending.reject(new ShipError('SHIP_ERR_INTERNAL', `The load generator exited with code ${code}:\n${stderr}`));
    waiting.clear();
  });
  return {
    run: (job) =>
      new Promise<LoadResult>((resolve, reject) => {
        const id = nextId++;
        waiting.set(id, { resolve, reject });
        child.stdin?.write(`${JSON.stringify({ id, job })}\n`);
      }),
    close: async () => {
      child.stdin?.end();
      await stopChild(child);
    },
  };
}
