/**
 * Crash-free sessions for the rollout gates from Sentry release health (each update reported
 * as its own release, named by UPDATES_SENTRY_RELEASE), API figures from Shipshape's own counts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openObjectStore } from '../../src/adapters/storage/index.ts';
import { configuredUpdateHealth, evaluateUpdateGate, recordUpdateHealth, sentryReleaseName, DEFAULT_GATE_THRESHOLDS } from '../../src/domain/update-health.ts';
import { publishUpdate } from '../../src/domain/updates.ts';
import { startFakeSentrySessions, type FakeSentrySessions } from '../fakes/sentry-sessions.ts';
import { openMigratedDatabase, type MigratedDatabase } from '../helpers/migrated-database.ts';
import { makeExport, type FakeExport } from '../helpers/updates.ts';

const TEMPLATE = 'tasks@{runtimeVersion}+{updateId}';
let sentry: FakeSentrySessions;
let migrated: MigratedDatabase;
let exported: FakeExport;

before(async () => {
  sentry = await startFakeSentrySessions({ org: 'acme', token: 'sentry-token' });
  migrated = await openMigratedDatabase({
    env: { SENTRY_API_URL: sentry.url, SENTRY_ORG: 'acme', SENTRY_TOKEN: 'sentry-token', UPDATES_SENTRY_RELEASE: TEMPLATE },
  });
  exported = await makeExport('sentry');
});
after(async () => {
  await migrated?.close();
  await exported?.cleanup();
  await sentry?.close();
});

test("an update's crash-free sessions come from its Sentry release and its API figures from the API's counts; a crashing update breaches", async () => {
  const { database, config } = migrated;
  const { update } = await publishUpdate(database.pool, openObjectStore(config.updates.storageUrl), {
    distDir: exported.dir,
    channel: 'production',
    runtimeVersion: '3.0.0',
    actor: 'test',
    staged: true,
  });
  const release = sentryReleaseName(TEMPLATE, update);
  assert.equal(release, `tasks@3.0.0+${update.id}`);
  sentry.setRelease(release, { sessions: 2_000, crashFreeRate: 0.95 });
  await recordUpdateHealth(database.pool, update.id, { requests: 1_000, errors: 2, sessions: 99_999 });

  const source = configuredUpdateHealth(database.pool, config);
  const health = (await source.read([update.id], new Date(Date.now() - 90 * 60_000))).get(update.id);
  assert.deepEqual(health, { sessions: 2_000, crashedSessions: 100, requests: 1_000, errors: 2 }, "Sentry's sessions replace the table's");
  const query = sentry.requests.at(-1)?.query;
  assert.equal(query?.get('statsPeriod'), '2h', 'the smallest whole-hour period covering the rollout');
  assert.match(query?.get('query') ?? '', new RegExp(update.id));

  const verdict = evaluateUpdateGate(health!, undefined, { ...DEFAULT_GATE_THRESHOLDS, minSample: 100 });
  assert.equal(verdict.status, 'breach');
  assert.match(verdict.summary, /crash-free sessions: the update 95\.00 % crash-free over 2000 sessions < 99\.00 %, against the fixed floor \(no control\)/);
});
