/**
 * The load generator's process: reads one JSON job per line on stdin, runs it with
 * autocannon's programmatic API and answers one JSON line on stdout. Kept alive for the
 * whole benchmark, so measurements taken in rounds pay no start-up per run.
 *
 * Programmatic rather than the autocannon CLI because bearer tokens rotate across many
 * users per request (`setupRequest`), and because autocannon's own summary has no p95:
 * every response time is recorded here and the percentiles computed exactly.
 */
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { percentiles } from './stats.ts';
import type { LoadJob, LoadResult } from './load-generator.ts';

const tokenLists = new Map<string, readonly string[]>();
/** Where each stream of requests is in its token list, so successive runs move on to further users. */
const rotations = new Map<string, number>();

async function tokensFrom(file: string | undefined): Promise<readonly string[]> {
  if (!file) return [];
  let tokens = tokenLists.get(file);
  if (!tokens) {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    tokens = Array.isArray(parsed) ? parsed.filter((token): token is string => typeof token === 'string') : [];
    tokenLists.set(file, tokens);
  }
  return tokens;
}

async function runJob(job: LoadJob): Promise<LoadResult> {
  const tokens = await tokensFrom(job.tokensFile);
  const stream = `${job.method} ${job.url} ${job.tokensFile ?? ''} ${job.readsPerWrite ?? ''}`;
  let turn = rotations.get(stream) ?? 0;
  let sequence = 0;
  const dynamic = tokens.length > 0 || job.body !== undefined || job.uniqueHeader !== undefined;
  const step: autocannon.RequestStep = { method: job.method, ...(job.headers ? { headers: job.headers } : {}) };
  const mix = job.readsPerWrite;
  if (dynamic) {
    step.setupRequest = (request) => {
      const headers: Record<string, string> = { ...request.headers };
      if (job.uniqueHeader) headers[job.uniqueHeader.name] = `${job.uniqueHeader.prefix}${++sequence}`;
      const pass = Math.floor(turn / Math.max(1, tokens.length));
      const token = tokens[turn++ % tokens.length];
      if (token) headers.authorization = `Bearer ${token}`;
      if (mix !== undefined) {
        if (pass % (mix + 1) !== mix) return { ...request, method: 'GET', headers, body: undefined };
        headers['content-type'] = 'application/json';
        return { ...request, method: 'POST', headers, body: JSON.stringify({ title: `Bench task ${++sequence}` }) };
      }
      if (job.body === 'new-task') {
        headers['content-type'] = 'application/json';
        return { ...request, headers, body: JSON.stringify({ title: `Bench task ${++sequence}` }) };
      }
      return { ...request, headers };
    };
  }

  let latencies = new Float64Array(65_536);
  let completed = 0;
  let ok = 0;
  const statusCounts: Record<string, number> = {};
  const headerCounts: Record<string, number> = {};
  const header = job.countHeader?.toLowerCase();
  const options: autocannon.Options = {
    url: job.url,
    connections: job.connections,
    ...(job.requests === undefined ? { duration: job.durationSeconds } : { amount: job.requests }),
    // autocannon only notices the end of the duration on its sampling tick (1 s by default).
    sampleInt: 100,
    pipelining: 1,
    timeout: 10,
    requests: [step],
  };
  if (header) {
    options.setupClient = (client) => {
      client.on('headers', (info) => {
        for (let index = 0; index + 1 < info.headers.length; index += 2) {
          const value = info.headers[index + 1];
          if (info.headers[index]?.toLowerCase() === header && value !== undefined) headerCounts[value] = (headerCounts[value] ?? 0) + 1;
        }
      });
    };
  }
  const started = performance.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options, (error, outcome) => (error ? reject(error) : resolve(outcome)));
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      if (completed === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[completed] = responseTimeMs;
      completed += 1;
      if (statusCode === job.expectedStatus || (mix !== undefined && (statusCode === 200 || statusCode === 201))) ok += 1;
      statusCounts[statusCode] = (statusCounts[statusCode] ?? 0) + 1;
    });
  });
  const seconds = (performance.now() - started) / 1000;
  // A mix keeps its place in the pass schedule, not only in the list.
  rotations.set(stream, mix === undefined ? turn % Math.max(1, tokens.length) : turn);
  const samples = latencies.subarray(0, completed);
  return {
    completed,
    ok,
    errors: result.errors + (completed - ok),
    statusCounts,
    seconds,
    throughput: ok / seconds,
    latency: percentiles(samples),
    headerCounts,
  };
}

async function main(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const { id, job }: { id: number; job: LoadJob } = JSON.parse(line);
    try {
      process.stdout.write(`${JSON.stringify({ id, result: await runJob(job) })}\n`);
    } catch (error) {
      process.stdout.write(`${JSON.stringify({ id, error: (error as Error).message })}\n`);
    }
  }
}

await main();
