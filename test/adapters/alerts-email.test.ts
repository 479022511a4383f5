import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { createAlerter, createEmailChannel, createSmtpTransport, parseAlertRouting, type Alert } from '../../src/adapters/alerts/index.ts';
import { isShipError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { startSmtpServer, type FakeSmtpServer } from '../fakes/smtp.ts';

const fastRetry = { retries: 2, backoffMs: 1, maxDelayMs: 50 };

/** Alerts are logged too; these tests look at what reached the provider. */
const logger = createLogger('silent');

const backupDone: Alert = {
  issueType: 'database',
  severity: 'info',
  event: 'procedure.succeeded',
  title: 'Database backup 20260207_120000 verified',
  text: 'Stored 223 MB in s3://backups/database/.\nIntegrity check <pg_restore --list> passed.',
  channelHints: ['#ops-backups', 'ops-team'],
  details: { backup: '20260207_120000', sizeBytes: 233_000_000 },
};

describe('email alerts over SMTP', () => {
  let smtp: FakeSmtpServer;
  before(async () => {
    smtp = await startSmtpServer();
  });
  after(async () => {
    await smtp.close();
  });
  beforeEach(() => {
    smtp.clearFailure();
    smtp.messages.length = 0;
  });

  test("emails the backup alert to the runbook's ops-team with subject, text and HTML", async () => {
    const routing = parseAlertRouting({ channels: { 'ops-team': { email: ['ops-team@example.com', 'dba@example.com'] } } }, 'test');
    const alerter = createAlerter({
      routing,
      logger,
      smtp: { url: smtp.url, from: 'Shipshape <shipshape@example.com>' },
      retry: fastRetry,
    });
    const deliveries = await alerter.send(backupDone);
    assert.deepEqual(
      deliveries.find((d) => d.kind === 'email'),
      { target: 'email:ops-team', kind: 'email', ok: true },
    );

    assert.equal(smtp.messages.length, 1);
    const [mail] = smtp.messages;
    assert.ok(mail);
    assert.equal(mail.subject, '[Shipshape] [INFO] Database backup 20260207_120000 verified');
    assert.deepEqual(mail.to, ['ops-team@example.com', 'dba@example.com']);
    assert.deepEqual(mail.envelope, { from: 'shipshape@example.com', to: ['ops-team@example.com', 'dba@example.com'] });
    assert.equal(mail.authUser, smtp.user);
    assert.match(mail.from, /shipshape@example\.com/);
    assert.equal(mail.header('X-Shipshape-Event'), 'procedure.succeeded');
    assert.ok(mail.text?.startsWith(backupDone.text), mail.text);
    assert.match(mail.text ?? '', /^backup: 20260207_120000$/m);
    assert.match(mail.html ?? '', /<h2>Database backup 20260207_120000 verified<\/h2>/);
    assert.match(mail.html ?? '', /Integrity check &lt;pg_restore --list&gt; passed\./);
  });

  test('retries a temporary SMTP refusal (451) and then delivers', async () => {
    smtp.failWith({ responseCode: 451, message: 'Try again later', times: 1 });
    const channel = createEmailChannel({
      transport: createSmtpTransport({ url: smtp.url }),
      from: 'shipshape@example.com',
      to: ['ops-team@example.com'],
      label: 'ops-team',
      retry: fastRetry,
    });
    await channel.send(backupDone);
    assert.equal(smtp.messages.length, 1);
  });

  test('does not retry a permanent refusal (550) and reports it', async () => {
    smtp.failWith({ responseCode: 550, message: 'Mailbox unavailable' });
    const channel = createEmailChannel({
      transport: createSmtpTransport({ url: smtp.url }),
      from: 'shipshape@example.com',
      to: ['ops-team@example.com'],
      label: 'ops-team',
      retry: fastRetry,
    });
    const error = await channel.send(backupDone).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(isShipError(error));
    assert.equal(error.code, 'SHIP_ERR_PROVIDER_FAILED');
    assert.match(error.message, /550/);
    assert.doesNotMatch(error.message, /tried/);
  });

  test('reports a wrong SMTP password without revealing it', async () => {
    const url = new URL(smtp.url);
    url.password = 'wrong-password-123';
    const channel = createEmailChannel({
      transport: createSmtpTransport({ url: url.href }),
      from: 'shipshape@example.com',
      to: ['ops-team@example.com'],
      label: 'ops-team',
      retry: fastRetry,
    });
    const error = await channel.send(backupDone).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(isShipError(error));
    assert.match(error.message, /Check the user and password in SMTP_URL/);
    assert.doesNotMatch(error.message, /wrong-password-123/);
    assert.equal(smtp.messages.length, 0);
  });

  test('rejects an SMTP_URL that is not smtp:// or smtps:// without echoing it', () => {
    assert.throws(
      () => createSmtpTransport({ url: 'http://user:hunter22@mail.example.com' }),
      (error: unknown) =>
        isShipError(error) && error.code === 'SHIP_ERR_CONFIG' && /only smtp:\/\/ and smtps:\/\//.test(error.message) && !error.message.includes('hunter22'),
    );
  });
});

describe('SMTP fake', () => {
  test('decodes encoded subjects, quoted-printable and base64 bodies, and waits for late mail', async () => {
    const smtp = await startSmtpServer({ user: 'reset-mailer', password: 'p@ss word/1' });
    try {
      const transport = nodemailer.createTransport(smtp.url);
      const waiting = smtp.waitForMessage((m) => m.to.includes('zoë@example.com'));
      await transport.sendMail({
        from: '"Shipshape" <no-reply@example.com>',
        to: '"Zoë Ä." <zoë@example.com>, other@example.com',
        cc: 'audit@example.com',
        bcc: 'hidden@example.com',
        subject: 'Réinitialisez votre mot de passe — ünïcødé ✓',
        text: `Bonjour Zoë,\n${'long line '.repeat(30)}\nlien: https://app.example.com/reset?t=abc=123`,
        html: '<p>Bonjour Zoë, <a href="https://app.example.com/reset?t=abc=123">réinitialiser</a></p>',
      });
      const mail = await waiting;
      assert.equal(mail.authUser, 'reset-mailer');
      assert.equal(mail.subject, 'Réinitialisez votre mot de passe — ünïcødé ✓');
      assert.deepEqual(mail.to, ['zoë@example.com', 'other@example.com']);
      assert.deepEqual(mail.cc, ['audit@example.com']);
      assert.ok(mail.envelope.to.includes('hidden@example.com'));
      assert.equal(mail.header('bcc'), undefined);
      assert.ok(mail.text?.startsWith('Bonjour Zoë,\nlong line long line'), mail.text);
      assert.ok(mail.text?.includes('lien: https://app.example.com/reset?t=abc=123'), mail.text);
      assert.ok(mail.html?.includes('href="https://app.example.com/reset?t=abc=123"'), mail.html);

      const attachmentMail = smtp.waitForMessage((m) => m.subject === 'with attachment');
      await transport.sendMail({
        from: 'no-reply@example.com',
        to: 'ops@example.com',
        subject: 'with attachment',
        text: 'see attached',
        attachments: [{ filename: 'export.txt', content: 'not the body' }],
      });
      assert.equal((await attachmentMail).text, 'see attached');

      // Mostly non-Latin text makes nodemailer pick base64 for the body and B-encoding for the subject.
      const greek = 'Καλημέρα κόσμε '.repeat(10);
      await transport.sendMail({ from: 'no-reply@example.com', to: 'ops@example.com', subject: 'Ωμέγα', text: greek });
      const base64Mail = await smtp.waitForMessage((m) => m.subject === 'Ωμέγα');
      assert.match(base64Mail.raw, /Content-Transfer-Encoding: base64/);
      assert.equal(base64Mail.text, greek);
    } finally {
      await smtp.close();
    }
  });

  test('refuses clients without the configured credentials', async () => {
    const smtp = await startSmtpServer();
    try {
      const transport = nodemailer.createTransport({ host: smtp.host, port: smtp.port, secure: false });
      await assert.rejects(transport.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'x', text: 'y' }), /Authentication Required|530/i);
      assert.equal(smtp.messages.length, 0);
    } finally {
      await smtp.close();
    }
  });
});
