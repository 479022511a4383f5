/**
 * SMTP, Expo and S3 hung (connections accepted, never answered) or down, each behind a loopback
 * proxy (test/fakes/tcp-proxy.ts) in front of its fake. Expected: the app's own traffic is not
 * held up; a send stuck on a hung server gives up by itself (every outbound call has a timeout),
 * so the next one goes out once the server answers again; a backup stuck on a hung S3 stops on
 * SIGTERM.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { startS3rver, type FakeS3 } from '../fakes/s3.ts';
import { startSmtpServer, type FakeSmtpServer } from '../fakes/smtp.ts';
import { startTcpProxy, type TcpProxy } from '../fakes/tcp-proxy.ts';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import { spawnCli } from '../helpers/cli.ts';
import { eventually } from '../helpers/patience.ts';
import { userWithDevice } from '../helpers/workers.ts';
import { call, startFaultDeployment, startTraffic, type FaultDeployment } from '../helpers/traffic.ts';

describe('serve while SMTP, Expo or S3 hang or are down', () => {
  let deployment: FaultDeployment;
  let smtp: FakeSmtpServer;
  let expo: FakeExpo;
  let s3: FakeS3;
  let smtpProxy: TcpProxy;
  let expoProxy: TcpProxy;
  let s3Proxy: TcpProxy;

  before(async () => {
    [smtp, expo, s3] = await Promise.all([startSmtpServer(), startFakeExpo({ rateLimit: false }), startS3rver()]);
    const expoUrl = new URL(expo.pushUrl);
    [smtpProxy, expoProxy, s3Proxy] = await Promise.all([
      startTcpProxy({ host: smtp.host, port: smtp.port }),
      startTcpProxy({ host: expoUrl.hostname, port: Number(expoUrl.port) }),
      startTcpProxy({ host: new URL(s3.endpoint).hostname, port: Number(new URL(s3.endpoint).port) }),
    ]);
    const smtpUrl = new URL(smtp.url);
    smtpUrl.port = String(smtpProxy.port);
    expoUrl.port = String(expoProxy.port);
    deployment = await startFaultDeployment(() => ({ SMTP_URL: smtpUrl.toString(), EXPO_PUSH_URL: expoUrl.toString() }));
  });

  const closeFakes = async () => {
    await Promise.all([smtpProxy?.close(), expoProxy?.close(), s3Proxy?.close()]);
    await Promise.all([smtp?.close(), expo?.close(), s3?.close()]);
  };
  after(() => deployment?.close(closeFakes) ?? closeFakes());

  test('a hung SMTP server holds up neither the traffic nor, once it answers again, the next email', async () => {
    const { serve, users, alive } = deployment;
    const traffic = startTraffic(serve.url, users, { exited: () => !alive() });
    try {
      await traffic.progress('traffic before the fault');
      smtpProxy.setMode('stall');
      const before = smtpProxy.accepted;
      assert.equal((await call(serve.url, 'POST', '/auth/password-reset', { body: { email: users[0]!.email } })).status, 202);
      await eventually('the reset email to reach the hung server', () => (smtpProxy.accepted > before ? true : undefined));
      await traffic.progress('traffic while SMTP hangs');
      smtpProxy.setMode('pass');
      assert.equal((await call(serve.url, 'POST', '/auth/password-reset', { body: { email: users[1]!.email } })).status, 202);
      await smtp.waitForMessage((mail) => mail.to.includes(users[1]!.email), { timeoutMs: 10 * 60_000 });
    } finally {
      await traffic.stop();
    }
    assert.deepEqual([...traffic.counts.failuresByKind], [], 'the app answered every request while SMTP hung');
  });

  test('a push send stuck on a hung Expo gives up by itself and the next one is delivered', async () => {
    const { serve } = deployment;
    const device = await userWithDevice(serve.url);
    expoProxy.setMode('stall');
    const before = expoProxy.accepted;
    const stuck = await call(serve.url, 'POST', '/admin/notifications/send', { body: { title: `stuck ${randomUUID()}`, body: 'x' }, token: ADMIN_TOKEN });
    assert.equal(stuck.status, 202);
    await eventually('the send to reach the hung Expo', () => (expoProxy.accepted > before ? true : undefined));
    expoProxy.setMode('pass');
    const title = `after ${randomUUID()}`;
    assert.equal((await call(serve.url, 'POST', '/admin/notifications/send', { body: { title, body: 'x' }, token: ADMIN_TOKEN })).status, 202);
    await eventually('the next push to reach Expo', () => (expo.deliveries.some((d) => d.title === title && d.to === device) ? true : undefined));
    await eventually('the stuck send to end (sent or failed), not to hang', async () => {
      const job = (await call(serve.url, 'GET', `/admin/notifications/${stuck.json.job.id}`, { token: ADMIN_TOKEN })).json.job;
      return job?.status !== 'sending' ? true : undefined;
    });
  });

  test('a backup writing to a hung S3 stops on SIGTERM; to an S3 that is down it fails on its own', async () => {
    const env = {
      DATABASE_URL: deployment.database.url,
      STATE_DIR: deployment.stateDir,
      BACKUP_STORAGE_URL: `s3://${s3.bucket}/faults-${randomUUID()}`,
      S3_ENDPOINT: `http://127.0.0.1:${s3Proxy.port}`,
      S3_FORCE_PATH_STYLE: 'true',
      AWS_REGION: s3.region,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    };
    s3Proxy.setMode('stall');
    const before = s3Proxy.accepted;
    const hung = spawnCli(['db', 'backup', '--yes', '--compression', '0'], env);
    await eventually('the backup to reach the hung S3', () => (s3Proxy.accepted > before ? true : undefined));
    hung.child.kill('SIGTERM');
    const stopped = await hung.done;
    assert.equal(stopped.signal, null, `the backup exited by itself after SIGTERM, not killed by the hang guard:\n${stopped.stderr.slice(-2_000)}`);
    assert.notEqual(stopped.code, 0);

    s3Proxy.setMode('refuse');
    const down = await spawnCli(['db', 'backup', '--yes', '--compression', '0'], env).done;
    assert.equal(down.signal, null);
    assert.notEqual(down.code, 0, down.stdout.slice(-2_000));
    assert.doesNotMatch(down.stderr, /\n\s+at /, 'a one-line error, not a stack trace');
  });
});
