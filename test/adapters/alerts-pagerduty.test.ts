import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAlerter, createPagerDutyChannel, defaultAlertRouting, parseAlertRouting, type Alert } from '../../src/adapters/alerts/index.ts';
import { isShipError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { fakeRoutingKey, startPagerDuty, type FakePagerDuty } from '../fakes/pagerduty.ts';

const fastRetry = { retries: 2, backoffMs: 1, maxDelayMs: 50 };

/** Alerts are logged too; these tests look at what reached the provider. */
const logger = createLogger('silent');

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const restoreFailed: Alert = {
  issueType: 'database',
  severity: 'critical',
  event: 'procedure.failed',
  title: 'Database restore failed and rollback failed',
  text: 'The safety backup is intact; run `shipshape runs show r-42`.',
  dedupKey: 'shipshape-run-r-42',
  page: 'trigger',
  details: { runId: 'r-42' },
};

describe('PagerDuty Events API v2 paging', () => {
  let pagerduty: FakePagerDuty;
  const defaultKey = fakeRoutingKey();
  const securityKey = fakeRoutingKey();
  before(async () => {
    pagerduty = await startPagerDuty({ routingKeys: [defaultKey, securityKey] });
  });
  after(async () => {
    await pagerduty.close();
  });

  test('triggers a page and resolves it with the same dedup key', async () => {
    const alerter = createAlerter({
      routing: defaultAlertRouting,
      logger,
      pagerDutyRoutingKey: defaultKey,
      pagerDutyBaseUrl: pagerduty.baseUrl,
      source: 'shipshape-test',
      retry: fastRetry,
    });

    const triggered = await alerter.send(restoreFailed);
    assert.deepEqual(
      triggered.find((d) => d.kind === 'pagerduty'),
      { target: 'pagerduty:database', kind: 'pagerduty', ok: true, dedupKey: 'shipshape-run-r-42' },
    );
    const incident = pagerduty.incidents.get('shipshape-run-r-42');
    assert.equal(incident?.status, 'triggered');
    assert.equal(incident.routingKey, defaultKey);
    const payload = incident.events[0]?.body['payload'];
    assert.ok(isRecord(payload));
    assert.ok(typeof payload['timestamp'] === 'string' && !Number.isNaN(Date.parse(payload['timestamp'])));
    assert.deepEqual(
      { ...payload, timestamp: 'ignored' },
      {
        summary: 'Database restore failed and rollback failed',
        source: 'shipshape-test',
        severity: 'critical',
        timestamp: 'ignored',
        component: 'shipshape',
        group: 'database',
        class: 'procedure.failed',
        custom_details: {
          text: 'The safety backup is intact; run `shipshape runs show r-42`.',
          runId: 'r-42',
          escalation: 'DBA On-Call → Engineering Lead → CTO',
        },
      },
    );

    const resolved = await alerter.send({
      ...restoreFailed,
      severity: 'info',
      event: 'procedure.succeeded',
      title: 'Rollback finished by hand',
      page: 'resolve',
    });
    assert.ok(
      resolved.every((d) => d.ok),
      JSON.stringify(resolved),
    );
    assert.equal(pagerduty.incidents.get('shipshape-run-r-42')?.status, 'resolved');
    assert.deepEqual(
      pagerduty.incidents.get('shipshape-run-r-42')?.events.map((e) => e.action),
      ['trigger', 'resolve'],
    );
    assert.equal(pagerduty.openIncidents().length, 0);
  });

  test('makes up a dedup key for a trigger without one and returns it so the page can be resolved', async () => {
    const alerter = createAlerter({
      routing: defaultAlertRouting,
      logger,
      pagerDutyRoutingKey: defaultKey,
      pagerDutyBaseUrl: pagerduty.baseUrl,
      retry: fastRetry,
    });
    const { dedupKey: _omitted, ...withoutKey } = restoreFailed;
    const [page] = (await alerter.send(withoutKey)).filter((d) => d.kind === 'pagerduty');
    assert.ok(page?.ok && page.dedupKey !== undefined);
    assert.equal(pagerduty.incidents.get(page.dedupKey)?.status, 'triggered');

    await alerter.send({ ...withoutKey, dedupKey: page.dedupKey, page: 'resolve' });
    assert.equal(pagerduty.incidents.get(page.dedupKey)?.status, 'resolved');
  });

  test("pages the issue type's own service when the routing file gives it a key", async () => {
    const routing = parseAlertRouting({ matrix: { security: { pagerdutyRoutingKey: securityKey } } }, 'test');
    const alerter = createAlerter({
      routing,
      logger,
      pagerDutyRoutingKey: defaultKey,
      pagerDutyBaseUrl: pagerduty.baseUrl,
      retry: fastRetry,
    });
    await alerter.send({ ...restoreFailed, issueType: 'security', dedupKey: 'breach-1', title: 'Emergency app disable' });
    assert.equal(pagerduty.incidents.get('breach-1')?.routingKey, securityKey);
  });

  test('refuses to send a resolve without a dedup key', async () => {
    const channel = createPagerDutyChannel({
      routingKey: defaultKey,
      baseUrl: pagerduty.baseUrl,
      source: 'test',
      label: 'database',
      retry: fastRetry,
    });
    const before = pagerduty.requests.length;
    const { dedupKey: _omitted, ...withoutKey } = restoreFailed;
    const error = await channel.send({ ...withoutKey, page: 'resolve' }).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(isShipError(error));
    assert.equal(error.code, 'SHIP_ERR_VALIDATION');
    assert.equal(pagerduty.requests.length, before);
  });

  test("reports PagerDuty's 400 for a malformed routing key without echoing the key", async () => {
    const badKey = 'k'.repeat(31);
    const channel = createPagerDutyChannel({
      routingKey: badKey,
      baseUrl: pagerduty.baseUrl,
      source: 'test',
      label: 'database',
      retry: fastRetry,
    });
    const before = pagerduty.requests.length;
    const error = await channel.send(restoreFailed).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(isShipError(error));
    assert.match(error.message, /PagerDuty answered HTTP 400 .*Length of 'routing_key' is incorrect/);
    assert.ok(!error.message.includes(badKey));
    assert.equal(pagerduty.requests.length, before + 1, '400 is not retried');
  });

  test('keeps the summary within the documented 1024 characters', async () => {
    const channel = createPagerDutyChannel({
      routingKey: defaultKey,
      baseUrl: pagerduty.baseUrl,
      source: 'test',
      label: 'database',
      retry: fastRetry,
    });
    await channel.send({ ...restoreFailed, dedupKey: 'long-title', title: 'x'.repeat(5000) });
    assert.equal(pagerduty.incidents.get('long-title')?.summary.length, 1024);
  });

  test('retries a rate-limited (429) event and then delivers it', async () => {
    pagerduty.failWith({ status: 429, retryAfterSeconds: 0, times: 1 });
    const channel = createPagerDutyChannel({
      routingKey: defaultKey,
      baseUrl: pagerduty.baseUrl,
      source: 'test',
      label: 'database',
      retry: fastRetry,
    });
    await channel.send({ ...restoreFailed, dedupKey: 'after-throttle' });
    assert.equal(pagerduty.incidents.get('after-throttle')?.status, 'triggered');
    assert.deepEqual(
      pagerduty.requests.slice(-2).map((r) => r.status),
      [429, 202],
    );
  });
});
