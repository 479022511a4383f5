/**
 * What operators read: the report rendering and its exit code, the live and plain
 * terminal displays, and which field names count as secret.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { RunReport } from '../../src/ops/engine/index.ts';
import { createTerminalObserver } from '../../src/cli/terminal.ts';
import { presentReport } from '../../src/ops/present/present.ts';
import { prerequisitesMessage, sentence } from '../../src/ops/engine/messages.ts';
import { isSecretName } from '../../src/ops/engine/redact.ts';

class Capture extends Writable {
  text = '';
  columns = 80;
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const report: RunReport = {
  runId: 'r-20261127-001530-ab12',
  mode: 'run',
  procedure: { id: 'db.restore', command: 'db restore', title: 'Restore database', risk: 'critical', runbookSection: 'Restore Database' },
  operator: 'alice',
  requestedBy: 'alice',
  state: 'needs-attention',
  startedAt: '2026-11-27T00:15:30.000Z',
  endedAt: '2026-11-27T00:16:30.000Z',
  durationMs: 60_000,
  params: { backup: 'b-1' },
  locks: ['database:app'],
  prerequisites: [],
  steps: [
    {
      id: 'maintenance-on',
      title: 'Enable maintenance',
      status: 'done',
      durationMs: 12,
      describe: [],
      irreversible: null,
      interrupted: false,
      error: null,
      undo: { status: 'failed', error: { code: 'SHIP_ERR_PROVIDER_FAILED', message: 'API down' } },
      output: null,
      notAsked: null,
      unverified: null,
    },
    {
      id: 'restore',
      title: 'Restore',
      status: 'undone',
      durationMs: 900,
      describe: [],
      irreversible: null,
      interrupted: false,
      error: null,
      undo: { status: 'undone', how: 'undo', durationMs: 40 },
      output: null,
      notAsked: null,
      unverified: null,
    },
    {
      id: 'verify',
      title: 'Verify',
      status: 'failed',
      durationMs: 5,
      describe: [],
      irreversible: null,
      interrupted: false,
      error: 'row counts differ',
      undo: null,
      output: null,
      notAsked: null,
      unverified: null,
    },
  ],
  verification: [],
  plannedVerification: [],
  approval: { by: 'bob', expiresAt: '2026-11-27T01:00:00.000Z', how: 'command' },
  error: { code: 'SHIP_ERR_ROLLBACK_FAILED', message: 'Rollback stopped.' },
  next: 'shipshape runs rollback r-20261127-001530-ab12',
  exitCode: 4,
};

test('a report renders as one JSON document with --json, with the error line on stderr and its exit code', () => {
  const presented = presentReport(report, { json: true, color: false });
  assert.deepEqual(JSON.parse(presented.stdout), JSON.parse(JSON.stringify(report)));
  assert.equal(presented.exitCode, 4);
  assert.equal(presented.stderr, 'error[SHIP_ERR_ROLLBACK_FAILED]: Rollback stopped.\n');
});

test('a report renders for people with a marker per step, undo outcomes and the next command, without colour when asked', () => {
  const presented = presentReport(report, { json: false, color: false });
  assert.doesNotMatch(presented.stdout, /\x1b\[/);
  assert.match(presented.stdout, /✓ maintenance-on .*undo FAILED: API down/);
  assert.match(presented.stdout, /↺ restore .*undone 40 ms/);
  assert.match(presented.stdout, /✗ verify .*row counts differ/);
  assert.match(presented.stdout, /Next: shipshape runs rollback r-20261127-001530-ab12/);
  assert.match(presentReport(report, { json: false, color: true }).stdout, /\x1b\[32m✓/);
});

function feed(live: boolean, color: boolean): string {
  const stream = new Capture();
  const observer = createTerminalObserver({ stream, live, color });
  observer.begin({
    runId: 'r-1',
    mode: 'run',
    command: 'db backup',
    title: 'Backup',
    steps: [{ id: 'dump', title: 'Dump the database', status: 'pending', durationMs: undefined }],
  });
  observer.event({ type: 'step.started', step: 'dump', title: 'Dump the database', describe: [], seq: 1, at: '' });
  observer.progress('dump', { bytes: 5_000_000, totalBytes: 10_000_000, label: 'dump' });
  observer.event({ type: 'note', step: 'dump', message: 'uploaded 5 MB', seq: 2, at: '' });
  observer.event({ type: 'step.done', step: 'dump', durationMs: 1500, output: {}, seq: 3, at: '' });
  observer.end();
  return stream.text;
}

test('on a terminal the step list is redrawn in place with markers, elapsed time and a progress bar with throughput', () => {
  const text = feed(true, false);
  assert.match(text, /\x1b\[\d+A\x1b\[0J/, 'redraws in place');
  assert.match(text, /\[█{10}░{10}\] 50% 5\.0 MB\/10\.0 MB .*\/s/);
  assert.match(text, /✓ Dump the database 1\.5 s/);
  assert.match(text, /dump: uploaded 5 MB/);
  assert.doesNotMatch(text, /\x1b\[\d+m/, 'no colour when colour is off (NO_COLOR)');
});

test('off a terminal the display is plain lines', () => {
  const text = feed(false, false);
  assert.doesNotMatch(text, /\x1b\[/);
  assert.match(text, /▸ dump: Dump the database\n/);
  assert.match(text, /dump: dump \[█{10}░{10}\] 50%/);
  assert.match(text, /✓ dump \(1\.5 s\)\n/);
});

test('secret-looking field names are recognised, and ordinary ones are not', () => {
  for (const name of ['password', 'newPassword', 'apiToken', 'API_KEY', 'secretAccessKey', 'slackWebhookUrl', 'authorization', 'privateKey', 'key', 'dsn']) {
    assert.equal(isSecretName(name), true, name);
  }
  for (const name of ['table', 'objectKey', 'dedupKey', 'backup', 'bytes', 'passed', 'keyspace']) {
    assert.equal(isSecretName(name), false, name);
  }
});

test("messages that wrap a procedure's own sentence end it with one full stop, never two", () => {
  const message = prerequisitesMessage('db migrate up', [
    { name: 'recent backup', ok: false, detail: 'none in the last 24 hours', remedy: 'Take one with `shipshape db backup`.' },
  ]);
  assert.match(message, /Take one with `shipshape db backup`\. Fix them, then run `shipshape db migrate up` again\.$/);
  assert.doesNotMatch(message, /\.\./);
  assert.equal(sentence('Run it again.'), 'Run it again.');
  assert.equal(sentence('run it again'), 'run it again.');
});
