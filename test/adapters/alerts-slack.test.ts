import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createSlackChannel, slackPayload, type Alert } from '../../src/adapters/alerts/index.ts';
import { isShipError } from '../../src/errors.ts';
import { startSlackWebhook, type FakeSlackWebhook } from '../fakes/slack.ts';

const fastRetry = { retries: 2, backoffMs: 1, maxDelayMs: 50 };

const failed: Alert = {
  issueType: 'database',
  severity: 'critical',
  event: 'procedure.failed',
  title: 'Database restore failed',
  text: 'pg_restore exited with 1 <stderr attached> & rollback ran',
  details: { runId: 'r-42', durationSeconds: 93 },
};

describe('Slack incoming webhook channel', () => {
  let slack: FakeSlackWebhook;
  before(async () => {
    slack = await startSlackWebhook();
  });
  after(async () => {
    await slack.close();
  });
  beforeEach(() => {
    slack.clearFailure();
    slack.messages.length = 0;
    slack.requests.length = 0;
  });

  test('posts a JSON {text, blocks} message that Slack accepts', async () => {
    const url = slack.hookUrl('#incidents');
    const channel = createSlackChannel({ webhookUrl: url, channels: ['#incidents'], retry: fastRetry });
    assert.equal(channel.name, 'slack:#incidents');
    await channel.send(failed);

    assert.equal(slack.requests[0]?.contentType, 'application/json');
    const [message] = slack.messagesFor('#incidents');
    assert.ok(message);
    assert.match(message.payload.text ?? '', /\[CRITICAL\] Database restore failed/);
    const blocks = message.payload.blocks ?? [];
    assert.deepEqual(blocks[0], {
      type: 'header',
      text: { type: 'plain_text', text: '🚨 Database restore failed', emoji: true },
    });
    assert.deepEqual(blocks[1], {
      type: 'section',
      text: { type: 'mrkdwn', text: 'pg_restore exited with 1 &lt;stderr attached&gt; &amp; rollback ran' },
    });
    const context = JSON.stringify(blocks[2]);
    for (const fact of ['*Severity:* critical', '*Issue type:* database', '*Event:* procedure.failed', '*runId:* r-42']) {
      assert.ok(context.includes(fact), `context lacks ${fact}: ${context}`);
    }
  });

  test('keeps long titles and texts within Block Kit limits', async () => {
    const channel = createSlackChannel({ webhookUrl: slack.url, channels: ['#incidents'], retry: fastRetry });
    await channel.send({ ...failed, title: 'T'.repeat(400), text: 'x'.repeat(10_000) });
    assert.equal(slack.messages.length, 1, `Slack refused: ${slack.requests[0]?.response}`);
    const payload = slackPayload({ ...failed, title: 'T'.repeat(400) });
    const header = payload.blocks?.[0];
    assert.ok(header !== undefined && JSON.stringify(header).includes('…'));
  });

  test('retries after a 429 with Retry-After and then delivers', async () => {
    slack.failWith({ status: 429, retryAfterSeconds: 0, times: 1 });
    const channel = createSlackChannel({ webhookUrl: slack.url, channels: ['#incidents'], retry: fastRetry });
    await channel.send(failed);
    assert.deepEqual(
      slack.requests.map((r) => r.status),
      [429, 200],
    );
    assert.equal(slack.messages.length, 1);
  });

  test('gives up after the bounded retries on 500 and says so without the webhook URL', async () => {
    slack.failWith({ status: 500 });
    const channel = createSlackChannel({ webhookUrl: slack.url, channels: ['#incidents'], retry: fastRetry });
    const error = await channel.send(failed).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(isShipError(error));
    assert.equal(error.code, 'SHIP_ERR_PROVIDER_FAILED');
    assert.match(error.message, /Slack answered HTTP 500 "rollup_error" \(tried up to 3 times\)/);
    assert.ok(!error.message.includes(new URL(slack.url).pathname), error.message);
    assert.equal(slack.requests.length, 3);
  });

  test('does not retry a removed webhook (404 no_service) and says how to fix it', async () => {
    const removed = `${slack.origin}/services/T000/B000/removed000000000000000`;
    const channel = createSlackChannel({ webhookUrl: removed, channels: ['#ops-backups'], retry: fastRetry });
    const error = await channel.send(failed).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(isShipError(error));
    assert.match(error.message, /HTTP 404 "no_service"/);
    assert.match(error.message, /Create a new incoming webhook/);
    assert.doesNotMatch(error.message, /removed000/);
    assert.equal(slack.requests.length, 1);
  });

  test('waits no longer than the cap when Slack asks for a long Retry-After', async () => {
    slack.failWith({ status: 429, retryAfterSeconds: 3600 });
    const channel = createSlackChannel({ webhookUrl: slack.url, channels: ['#incidents'], retry: fastRetry });
    const error = await channel.send(failed).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(isShipError(error));
    assert.match(error.message, /asked to retry after 3600 s/);
    assert.equal(slack.requests.length, 1);
  });
});

describe('Slack channel against a webhook that never answers', () => {
  test('gives up after the per-attempt timeout and reports it', async () => {
    const silent = createServer(() => {
      // Never answer: a hung provider must not hang the procedure that alerts.
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    assert.ok(address !== null && typeof address === 'object');
    try {
      const channel = createSlackChannel({
        webhookUrl: `http://127.0.0.1:${address.port}/services/T/B/hung`,
        channels: ['#incidents'],
        timeoutMs: 100,
        retry: { retries: 1, backoffMs: 1, maxDelayMs: 10 },
      });
      const error = await channel.send(failed).then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e,
      );
      assert.ok(isShipError(error));
      assert.match(error.message, /Slack did not answer within 100 ms \(tried up to 2 times\)/);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

describe('Slack webhook fake', () => {
  test('rejects what Slack rejects: non-JSON, missing text, unknown webhooks', async () => {
    const slack = await startSlackWebhook();
    try {
      const post = (url: string, body: string, type: string) =>
        fetch(url, { method: 'POST', headers: { 'content-type': type }, body }).then(async (r) => [r.status, await r.text()]);
      assert.deepEqual(await post(slack.url, 'payload=hi', 'application/x-www-form-urlencoded'), [400, 'invalid_payload']);
      assert.deepEqual(await post(slack.url, '{nope', 'application/json'), [400, 'invalid_payload']);
      assert.deepEqual(await post(slack.url, '{}', 'application/json'), [400, 'no_text']);
      assert.deepEqual(await post(`${slack.origin}/services/x`, '{"text":"hi"}', 'application/json'), [404, 'no_service']);
      assert.deepEqual(await post(slack.url, '{"text":"hi"}', 'application/json'), [200, 'ok']);
      assert.equal(slack.messages.length, 1);
    } finally {
      await slack.close();
    }
  });
});
