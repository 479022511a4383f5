/**
 * While `serve` prepares — on a fresh STATE_DIR it creates the embedded cluster and applies every
 * migration — it says what it is doing, one line per interval through the normal logger, then a
 * ready line with the time it took. The interval is shortened here so the lines appear however
 * fast this machine is; no test depends on how long anything takes.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../../src/log.ts';
import { startupProgress } from '../../src/runtime/progress.ts';
import { startServeProcess } from '../helpers/cli.ts';
import { eventually } from '../helpers/patience.ts';
import { createStateDir } from '../helpers/postgres.ts';

interface LogLine {
  readonly msg: string;
  readonly stage?: string;
  readonly elapsedSeconds?: number;
  readonly readySeconds?: number;
}

const logLines = (output: string): LogLine[] =>
  output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);

test('first start on a fresh STATE_DIR: progress lines while the embedded database is prepared, then the ready line', async () => {
  const state = await createStateDir();
  try {
    const server = await startServeProcess({ STATE_DIR: state.path, PORT: '0', STARTUP_PROGRESS_INTERVAL_MS: '20' });
    try {
      const health = await fetch(`${server.url}/health`);
      assert.equal(health.status, 200);
      const lines = logLines(server.output());
      const progress = lines.filter((line) => line.stage !== undefined);
      assert.ok(progress.length > 0, `no progress line in:\n${server.output()}`);
      for (const line of progress) assert.match(line.msg, /^preparing .+… \d+ s$/);
      assert.ok(
        progress.some((line) => /creating the cluster/.test(line.msg)),
        'a line says the cluster is being created',
      );
      const ready = lines.find((line) => / listening on http:\/\/[\d.]+:\d+ \(ready in [\d.]+ s\)$/.test(line.msg));
      assert.ok(ready, `no ready line in:\n${server.output()}`);
      assert.equal(typeof ready.readySeconds, 'number');
      // Complete cluster in place, no half-made one beside it.
      assert.ok(existsSync(path.join(state.path, 'db', 'data', 'PG_VERSION')));
      assert.ok(!existsSync(path.join(state.path, 'db', 'data.creating')));
    } finally {
      assert.equal(await server.stop(), 0);
    }
  } finally {
    await state.cleanup();
  }
});

test('a start that is ready before the first interval prints no progress line', async () => {
  let written = '';
  const sink = { write: (chunk: string) => ((written += chunk), true) } as unknown as NodeJS.WritableStream;
  const progress = startupProgress(createLogger('info', sink), 60_000);
  progress.stage('the embedded database');
  progress.stop();
  assert.equal(written, '');
});

test('a slow stage gets a line per interval, naming the stage and the seconds so far', async () => {
  let written = '';
  const sink = { write: (chunk: string) => ((written += chunk), true) } as unknown as NodeJS.WritableStream;
  const progress = startupProgress(createLogger('info', sink), 10);
  progress.stage('the schema: applying migrations 3/13');
  const lines = await eventually('two progress lines', () => {
    const seen = logLines(written);
    return seen.length >= 2 ? seen : undefined;
  });
  progress.stop();
  assert.equal(lines[0]?.stage, 'the schema: applying migrations 3/13');
  assert.match(lines[0]?.msg ?? '', /^preparing the schema: applying migrations 3\/13… \d+ s$/);
});
