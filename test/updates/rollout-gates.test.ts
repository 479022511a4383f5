/**
 * Health-gated rollouts, driven by the real scheduler: the server's workers advance a rollout
 * while the candidate's crash-free rate and API error rate hold against the control, and on a
 * breach halt it and alert (Slack, through the alerting adapters) — and with --auto-rollback
 * serve the control again. The gate's arithmetic is checked on its own first.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openObjectStore } from '../../src/adapters/storage/index.ts';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { evaluateUpdateGate, recordUpdateHealth, DEFAULT_GATE_THRESHOLDS } from '../../src/domain/update-health.ts';
import { startRollout, type Rollout } from '../../src/domain/update-rollouts.ts';
import { inRollout, publishUpdate } from '../../src/domain/updates.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type RunningServer } from '../../src/runtime/server.ts';
import { startSlackWebhook, type FakeSlackWebhook } from '../fakes/slack.ts';
import { BUSY_MACHINE_ENV, eventually } from '../helpers/patience.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { fetchManifest, makeExport, partNamed } from '../helpers/updates.ts';

describe('the rollout gate', () => {
  const thresholds = { ...DEFAULT_GATE_THRESHOLDS, minSample: 100 };
  const control = { sessions: 10_000, crashedSessions: 20, requests: 50_000, errors: 100 };

  test('waits without judging until the candidate has the minimum sample', () => {
    const verdict = evaluateUpdateGate({ sessions: 99, crashedSessions: 50, requests: 99, errors: 99 }, control, thresholds);
    assert.equal(verdict.status, 'wait');
  });

  test('passes a candidate as healthy as the control, breaches on crash-free sessions or API errors', () => {
    assert.equal(evaluateUpdateGate({ sessions: 1_000, crashedSessions: 3, requests: 1_000, errors: 5 }, control, thresholds).status, 'pass');
    const crashing = evaluateUpdateGate({ sessions: 1_000, crashedSessions: 10, requests: 1_000, errors: 5 }, control, thresholds);
    assert.equal(crashing.status, 'breach');
    assert.match(crashing.summary, /crash-free sessions: the update 99\.00 % crash-free over 1000 sessions < 99\.30 %, against the control at 99\.80 %/);
    const erroring = evaluateUpdateGate({ sessions: 1_000, crashedSessions: 0, requests: 1_000, errors: 40 }, control, thresholds);
    assert.equal(erroring.status, 'breach');
    assert.match(erroring.summary, /API error rate: the update 4\.00 % API errors over 1000 requests > 1\.20 %/);
  });

  test('without a control with enough sample, holds the candidate to the absolute floors', () => {
    assert.equal(evaluateUpdateGate({ sessions: 1_000, crashedSessions: 5, requests: 1_000, errors: 10 }, undefined, thresholds).status, 'pass');
    assert.equal(
      evaluateUpdateGate({ sessions: 1_000, crashedSessions: 50, requests: 1_000, errors: 10 }, { ...control, sessions: 10 }, thresholds).status,
      'breach',
    );
  });
});

describe('rollouts advanced by the scheduler', () => {
  let server: RunningServer;
  let database: TestDatabase;
  let state: Awaited<ReturnType<typeof createStateDir>>;
  let slack: FakeSlackWebhook;
  let config: Config;
  const cleanups: Array<() => Promise<void>> = [];

  before(async () => {
    slack = await startSlackWebhook();
    state = await createStateDir();
    database = await createTestDatabase();
    config = loadConfig({
      PORT: '0',
      STATE_DIR: state.path,
      DATABASE_URL: database.url,
      LOG_LEVEL: 'silent',
      SLACK_WEBHOOK_URL: slack.url,
      SCHEDULER_POLL_MS: '200',
      METRICS_FLUSH_INTERVAL: '1s',
      ...BUSY_MACHINE_ENV,
    });
    server = await startServer(config, createLogger('silent'), { migrate: true, workers: true });
  });
  after(async () => {
    await server?.close();
    for (const cleanup of cleanups) await cleanup();
    await database?.drop();
    await state?.cleanup();
    await slack?.close();
  });

  async function publish(label: string, channel: string, staged: boolean): Promise<string> {
    const exported = await makeExport(label);
    cleanups.push(exported.cleanup);
    const store = openObjectStore(config.updates.storageUrl);
    const { update } = await publishUpdate(server.database.pool, store, { distDir: exported.dir, channel, runtimeVersion: '2.0.0', actor: 'test', staged });
    return update.id;
  }
  const rolloutRow = async (id: string) =>
    (
      await server.database.pool.query<{ status: string; percent: string; status_reason: string | null }>(
        'SELECT status, percent::text, status_reason FROM ota_rollouts WHERE id = $1::uuid',
        [id],
      )
    ).rows[0]!;
  const servedTo = async (channel: string, clientId: string) => {
    const response = await fetchManifest(server.url, { platform: 'ios', runtimeVersion: '2.0.0', channel, clientId });
    const manifest = partNamed(response, 'manifest');
    return manifest ? (JSON.parse(manifest.body) as { id: string }).id : JSON.parse(partNamed(response, 'directive')!.body).type;
  };
  /** Time passing, without waiting for it: the step (and the next gate check) is due now. The workers do the rest. */
  const timePasses = async (id: string, what: 'step' | 'check') => {
    await server.database.pool.query(`UPDATE ota_rollouts SET next_check_at = now()${what === 'step' ? ', next_step_at = now()' : ''} WHERE id = $1::uuid`, [
      id,
    ]);
  };
  const deviceIn = (rollout: Rollout, percent: number) => {
    for (let index = 0; ; index++) if (inRollout(`device-${index}`, rollout.updateId, percent)) return `device-${index}`;
  };

  test('steps up while the gates hold; a crash-rate breach halts it, pages, and with --auto-rollback serves the control again', async () => {
    const controlId = await publish('control', 'production', false);
    const candidateId = await publish('candidate', 'production', true);
    const rollout = await startRollout(server.database.pool, {
      updateId: candidateId,
      schedule: [10, 50, 100],
      everyMs: 6 * 3_600_000,
      autoRollback: true,
      minSample: 100,
      actor: 'test',
    });
    assert.equal(rollout.controlUpdateId, controlId);
    const early = deviceIn(rollout, 10);
    assert.equal(await eventually('the first step served', async () => ((await servedTo('production', early)) === candidateId ? true : undefined)), true);

    // Healthy: as good as the control on both signals.
    await recordUpdateHealth(server.database.pool, controlId, { sessions: 5_000, crashedSessions: 10, requests: 20_000, errors: 40 });
    await recordUpdateHealth(server.database.pool, candidateId, { sessions: 500, crashedSessions: 1, requests: 2_000, errors: 4 });
    await timePasses(rollout.id, 'step');
    await eventually('the step to 50 %', async () => ((await rolloutRow(rollout.id)).percent === '50.00' ? true : undefined), {
      lastSeen: () => JSON.stringify(slack.messages.map((m) => m.payload.text)),
    });
    const later = deviceIn(rollout, 50);
    assert.equal(await eventually('50 % served', async () => ((await servedTo('production', later)) === candidateId ? true : undefined)), true);

    // The candidate starts crashing: 10 % of its new sessions.
    await recordUpdateHealth(server.database.pool, candidateId, { sessions: 1_000, crashedSessions: 100 });
    await timePasses(rollout.id, 'check');
    const row = await eventually('the automatic rollback', async () => {
      const current = await rolloutRow(rollout.id);
      return current.status === 'rolled-back' ? current : undefined;
    });
    assert.equal(row.percent, '50.00', 'it never went past 50 %');
    assert.match(row.status_reason ?? '', /crash-free sessions/);
    for (const device of [early, later]) {
      assert.equal(
        await eventually(`the control served to ${device}`, async () => ((await servedTo('production', device)) === controlId ? true : undefined)),
        true,
      );
    }
    const alert = await eventually('the rollback alert', () =>
      slack.messages.find((message) => JSON.stringify(message.payload).includes('rolled back automatically')),
    );
    assert.match(JSON.stringify(alert.payload), /crash-free sessions/);
  });

  test('without --auto-rollback a breach of the API error rate halts the rollout where it is: no further step, the devices that have it keep it', async () => {
    // No release on this channel before: the control is the embedded update, so the floors apply.
    const candidateId = await publish('beta candidate', 'beta', true);
    const rollout = await startRollout(server.database.pool, {
      updateId: candidateId,
      schedule: [25, 100],
      everyMs: 6 * 3_600_000,
      autoRollback: false,
      minSample: 100,
      actor: 'test',
    });
    await recordUpdateHealth(server.database.pool, candidateId, { sessions: 1_000, crashedSessions: 0, requests: 1_000, errors: 200 });
    await timePasses(rollout.id, 'step');
    const row = await eventually('the halt', async () => {
      const current = await rolloutRow(rollout.id);
      return current.status === 'halted' ? current : undefined;
    });
    assert.equal(row.percent, '25.00');
    assert.match(row.status_reason ?? '', /API error rate/);
    const device = deviceIn(rollout, 25);
    assert.equal(await servedTo('beta', device), candidateId);
    const outside = (() => {
      for (let index = 0; ; index++) if (!inRollout(`device-${index}`, candidateId, 25)) return `device-${index}`;
    })();
    assert.equal(await servedTo('beta', outside), 'noUpdateAvailable');
    const alert = await eventually('the halt alert', () =>
      slack.messages.find((message) => JSON.stringify(message.payload).includes('rollout halted at 25 %')),
    );
    assert.match(JSON.stringify(alert.payload), /shipshape update rollback/);
  });

  test('the API counts requests and 5xx answers per update from the x-update-id header the app sends, for the gates', async () => {
    const updateId = await publish('counted', 'counting', false);
    for (let index = 0; index < 3; index++) {
      const response = await fetch(`${server.url}/tasks`, { headers: { 'x-update-id': updateId } });
      assert.equal(response.status, 401);
    }
    // An id no update has is not written anywhere.
    await fetch(`${server.url}/tasks`, { headers: { 'x-update-id': '00000000-0000-4000-8000-000000000000' } });
    const row = await eventually('the counts flushed', async () => {
      const { rows } = await server.database.pool.query<{ requests: string; errors: string }>(
        'SELECT sum(requests)::text AS requests, sum(errors)::text AS errors FROM ota_update_health WHERE update_id = $1::uuid',
        [updateId],
      );
      return rows[0]?.requests === '3' ? rows[0] : undefined;
    });
    assert.equal(row.errors, '0');
    const { rows: stray } = await server.database.pool.query("SELECT 1 FROM ota_update_health WHERE update_id = '00000000-0000-4000-8000-000000000000'");
    assert.equal(stray.length, 0);
  });
});
