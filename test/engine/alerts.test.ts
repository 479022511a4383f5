/**
 * The alerter the configuration describes: a broken routing file never stops a run — alerts
 * go to the log — while the emergency procedures keep paging through the built-in matrix.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import type { Alert } from '../../src/adapters/alerts/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/log.ts';
import { configuredAlerter } from '../../src/ops/engine/index.ts';
import { startSlackWebhook } from '../fakes/slack.ts';
import { createStateDir } from '../helpers/postgres.ts';

const logger = createLogger('silent');
const alert: Alert = {
  issueType: 'security',
  severity: 'critical',
  event: 'test.alert',
  title: 'Something broke',
  text: 'details',
  channelHints: ['#incidents'],
};

test('a broken routing file sends alerts to the log only, except where an emergency must keep paging', async () => {
  const slack = await startSlackWebhook();
  const state = await createStateDir();
  try {
    const routingFile = path.join(state.path, 'alert-routing.json');
    await writeFile(routingFile, '{ this is not JSON');
    const config = loadConfig({ STATE_DIR: state.path, LOG_LEVEL: 'silent', ALERT_ROUTING_FILE: routingFile, SLACK_WEBHOOK_URL: slack.url });

    const usual = await (await configuredAlerter(config, logger)).send(alert);
    assert.deepEqual(
      usual.map((delivery) => delivery.kind),
      ['log'],
    );
    assert.equal(slack.messages.length, 0);

    const emergency = await (await configuredAlerter(config, logger, { keepPaging: true })).send(alert);
    assert.ok(
      emergency.some((delivery) => delivery.kind === 'slack' && delivery.ok),
      JSON.stringify(emergency),
    );
    assert.equal(slack.messages.length, 1);
  } finally {
    await slack.close();
    await state.cleanup();
  }
});
