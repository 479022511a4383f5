import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { createAlerter, defaultAlertRouting, parseAlertRouting, type Alert, type AlertLogger } from '../../src/adapters/alerts/index.ts';
import { fakeRoutingKey, startPagerDuty, type FakePagerDuty } from '../fakes/pagerduty.ts';
import { startSlackWebhook, type FakeSlackWebhook } from '../fakes/slack.ts';
import { startSmtpServer, type FakeSmtpServer } from '../fakes/smtp.ts';

const fastRetry = { retries: 1, backoffMs: 1, maxDelayMs: 50 };

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

function captureLogger(): { logger: ReturnType<typeof pino>; raw: () => string; lines: () => LogLine[] } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const raw = (): string => chunks.join('');
  return {
    logger: pino({ level: 'debug' }, sink),
    raw,
    lines: () =>
      raw()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => {
          const parsed: unknown = JSON.parse(line);
          assert.ok(isLogLine(parsed), `not a pino line: ${line}`);
          return parsed;
        }),
  };
}

function isLogLine(value: unknown): value is LogLine {
  return typeof value === 'object' && value !== null && 'level' in value && typeof value.level === 'number' && 'msg' in value && typeof value.msg === 'string';
}

/** A loopback port with nothing listening on it. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const backupDone: Alert = {
  issueType: 'database',
  severity: 'info',
  event: 'procedure.succeeded',
  title: 'Database backup verified',
  text: 'Stored and verified.',
  channelHints: ['#ops-backups', 'ops-team'],
  details: { backup: '20260207_120000' },
};

const restoreFailed: Alert = {
  issueType: 'database',
  severity: 'critical',
  event: 'procedure.failed',
  title: 'Database restore failed',
  text: 'Rolled back to the safety backup.',
  dedupKey: 'run-r-7',
  page: 'trigger',
};

describe('alerter routing to every provider', () => {
  let slack: FakeSlackWebhook;
  let pagerduty: FakePagerDuty;
  let smtp: FakeSmtpServer;
  const routingKey = fakeRoutingKey();

  before(async () => {
    [slack, pagerduty, smtp] = await Promise.all([startSlackWebhook(), startPagerDuty(), startSmtpServer()]);
  });
  after(async () => {
    await Promise.all([slack.close(), pagerduty.close(), smtp.close()]);
  });
  beforeEach(() => {
    slack.messages.length = 0;
    slack.clearFailure();
    smtp.messages.length = 0;
  });

  function routing() {
    return parseAlertRouting(
      {
        channels: {
          '#ops-backups': { slack: slack.hookUrl('#ops-backups') },
          '#incidents': { slack: slack.hookUrl('#incidents') },
          'ops-team': { email: ['ops-team@example.com'] },
        },
        matrix: { database: { pagerdutyRoutingKey: routingKey } },
      },
      'test-routing.json',
    );
  }

  test('sends a backup notice to #ops-backups and ops-team email, and not to #incidents', async () => {
    const log = captureLogger();
    const alerter = createAlerter({
      routing: routing(),
      logger: log.logger,
      smtp: { url: smtp.url, from: 'shipshape@example.com' },
      pagerDutyBaseUrl: pagerduty.baseUrl,
      retry: fastRetry,
    });
    const deliveries = await alerter.send(backupDone);
    assert.deepEqual(deliveries, [
      { target: 'log', kind: 'log', ok: true },
      { target: 'slack:#ops-backups', kind: 'slack', ok: true },
      { target: 'email:ops-team', kind: 'email', ok: true },
    ]);
    assert.equal(slack.messagesFor('#ops-backups').length, 1);
    assert.equal(slack.messagesFor('#incidents').length, 0);
    assert.deepEqual(smtp.messages[0]?.to, ['ops-team@example.com']);

    const [record] = log.lines();
    assert.equal(record?.msg, 'alert: Database backup verified');
    assert.equal(record?.['escalation'], 'DBA On-Call → Engineering Lead → CTO');
    assert.deepEqual(record?.['targets'], ['slack:#ops-backups', 'email:ops-team']);
  });

  test('sends a failure to #incidents and pages the database on-call, naming the escalation path', async () => {
    const log = captureLogger();
    const alerter = createAlerter({
      routing: routing(),
      logger: log.logger,
      pagerDutyBaseUrl: pagerduty.baseUrl,
      retry: fastRetry,
    });
    const deliveries = await alerter.send(restoreFailed);
    assert.deepEqual(
      deliveries.map((d) => [d.target, d.ok]),
      [
        ['log', true],
        ['slack:#incidents', true],
        ['pagerduty:database', true],
      ],
    );
    assert.equal(pagerduty.incidents.get('run-r-7')?.status, 'triggered');
    const [message] = slack.messagesFor('#incidents');
    assert.match(JSON.stringify(message?.payload.blocks), /DBA On-Call → Engineering Lead → CTO/);
    assert.equal(log.lines()[0]?.level, 50, 'a critical alert is logged at error level');
  });
});

describe('alerter failure handling', () => {
  test('logs the alert and delivers nowhere else when nothing is configured, without warnings', async () => {
    const log = captureLogger();
    const alerter = createAlerter({ routing: defaultAlertRouting, logger: log.logger });
    const deliveries = await alerter.send({ ...restoreFailed, channelHints: ['#ops-backups'] });
    assert.deepEqual(deliveries, [{ target: 'log', kind: 'log', ok: true }]);
    const lines = log.lines();
    assert.equal(lines.length, 1);
    assert.deepEqual(lines[0]?.['unrouted'], ['#ops-backups', '#incidents', 'pagerduty']);
    const alert = lines[0]?.['alert'];
    assert.ok(typeof alert === 'object' && alert !== null && 'title' in alert && alert.title === 'Database restore failed');
  });

  test('never throws when providers fail (500, unreachable port) and reports each failure', async () => {
    const slack = await startSlackWebhook();
    const port = await deadPort();
    try {
      slack.failWith({ status: 500 });
      const log = captureLogger();
      const alerter = createAlerter({
        routing: parseAlertRouting({ channels: { 'ops-team': { email: ['ops-team@example.com'] } } }, 'test'),
        logger: log.logger,
        slackDefaultWebhook: slack.url,
        pagerDutyRoutingKey: fakeRoutingKey(),
        pagerDutyBaseUrl: `http://127.0.0.1:${port}`,
        smtp: { url: `smtp://ops:pw-never-logged@127.0.0.1:${port}`, from: 'shipshape@example.com' },
        retry: fastRetry,
      });
      const deliveries = await alerter.send({ ...restoreFailed, channelHints: ['ops-team'] });

      const byTarget = new Map(deliveries.map((d) => [d.target, d]));
      assert.equal(byTarget.get('log')?.ok, true);
      const slackResult = byTarget.get('slack:#incidents');
      assert.equal(slackResult?.ok, false);
      assert.match(slackResult?.error ?? '', /Slack answered HTTP 500/);
      const pageResult = byTarget.get('pagerduty:database');
      assert.equal(pageResult?.ok, false);
      assert.match(pageResult?.error ?? '', /PagerDuty could not be reached: .*ECONNREFUSED/);
      const emailResult = byTarget.get('email:ops-team');
      assert.equal(emailResult?.ok, false);
      assert.match(emailResult?.error ?? '', /SMTP delivery failed: .*ECONNREFUSED/);

      const failures = log.lines().filter((line) => line.msg.startsWith('alert delivery failed'));
      assert.deepEqual(failures.map((line) => line['target']).sort(), ['email:ops-team', 'pagerduty:database', 'slack:#incidents']);
      assert.ok(failures.some((line) => line.msg === 'alert delivery failed: the on-call was NOT paged'));
    } finally {
      await slack.close();
    }
  });

  test('keeps webhook URLs, routing keys and SMTP passwords out of everything it logs and returns', async () => {
    const port = await deadPort();
    const webhookToken = 'T0SECRET/B0SECRET/abcdefSECRETtoken123456';
    const routingKey = fakeRoutingKey();
    const smtpPassword = 'smtp-Pa55word-xyz';
    const log = captureLogger();
    const alerter = createAlerter({
      routing: parseAlertRouting(
        {
          channels: {
            '#incidents': { slack: `http://127.0.0.1:${port}/services/${webhookToken}` },
            'ops-team': { email: ['ops-team@example.com'] },
          },
          matrix: { database: { pagerdutyRoutingKey: routingKey } },
        },
        'test',
      ),
      logger: log.logger,
      // An invalid port makes fetch fail with "Failed to parse URL from <the whole URL>".
      slackDefaultWebhook: `http://127.0.0.1:99999/services/${webhookToken}-default`,
      pagerDutyBaseUrl: `http://127.0.0.1:${port}`,
      smtp: { url: `smtp://ops:${smtpPassword}@127.0.0.1:${port}`, from: 'shipshape@example.com' },
      retry: { retries: 0, backoffMs: 1, maxDelayMs: 1 },
    });
    // A careless caller pasting a secret into the alert must not leak it either.
    const deliveries = await alerter.send({
      ...restoreFailed,
      channelHints: ['#ops-backups', 'ops-team'],
      text: `Webhook https://hooks.slack.com/services/${webhookToken} failed; key ${routingKey}`,
      details: { smtp: `smtp://ops:${smtpPassword}@mail.example.com` },
    });

    assert.ok(
      deliveries.filter((d) => d.kind !== 'log').every((d) => !d.ok),
      JSON.stringify(deliveries),
    );
    const everything = `${log.raw()}\n${JSON.stringify(deliveries)}`;
    for (const secret of ['SECRET', routingKey, smtpPassword]) {
      assert.ok(!everything.includes(secret), `${secret} leaked:\n${everything}`);
    }
    assert.match(everything, /\[redacted\]/);
  });

  test('reports channels with email recipients as failed when SMTP is not configured', async () => {
    const log = captureLogger();
    const alerter = createAlerter({
      routing: parseAlertRouting({ channels: { 'ops-team': { email: ['ops-team@example.com'] } } }, 'test'),
      logger: log.logger,
    });
    const deliveries = await alerter.send(backupDone);
    const email = deliveries.find((d) => d.kind === 'email');
    assert.equal(email?.ok, false);
    assert.match(email?.error ?? '', /SMTP is not configured\. Set SMTP_URL and MAIL_FROM\./);
    assert.ok(
      log.lines().some((line) => line.level === 40 && /nowhere to go for #ops-backups/.test(line.msg)),
      'an unrouted hint is a warning once something is configured',
    );
  });

  test('still resolves when the logger itself throws', async () => {
    const broken: AlertLogger = {
      info: () => {
        throw new Error('disk full');
      },
      warn: () => {
        throw new Error('disk full');
      },
      error: () => {
        throw new Error('disk full');
      },
    };
    const alerter = createAlerter({ routing: defaultAlertRouting, logger: broken });
    const deliveries = await alerter.send(backupDone);
    assert.deepEqual(deliveries, [{ target: 'log', kind: 'log', ok: false, error: 'disk full' }]);
  });
});
