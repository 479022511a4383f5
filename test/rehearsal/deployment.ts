/**
 * A real Shipshape deployment for the rehearsal, every process started through bin/shipshape.js:
 * two `shipshape serve` instances with their workers and one `shipshape worker`, on one
 * PostgreSQL test database, sharing Redis (a prefix unique to this run), with the S3 test
 * server as backup, legal and OTA update storage, a real SMTP peer, the Expo, Slack and PagerDuty
 * fakes, and what the release and update procedures talk to (stores.ts: Google Play, App Store
 * Connect, Sentry release health, CI, eas-cli and the app's repository). The operator's CLI runs
 * with the same configuration and its own STATE_DIR (the run journals).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { fakeRoutingKey, startPagerDuty, type FakePagerDuty } from '../fakes/pagerduty.ts';
import { startS3rver, type FakeS3 } from '../fakes/s3.ts';
import { startSlackWebhook, type FakeSlackWebhook } from '../fakes/slack.ts';
import { startSmtpServer, type FakeSmtpServer } from '../fakes/smtp.ts';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import { PROJECT_ROOT, runCli, startServeProcess, type CliOptions, type CliResult } from '../helpers/cli.ts';
import { BUSY_MACHINE_ENV, eventually } from '../helpers/patience.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { startReleaseWorld, type ReleaseWorld } from './stores.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** One long-running Shipshape process: it must never exit while the rehearsal runs. */
export interface ShipshapeProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Set once the process exited (code, or the signal that ended it). */
  exit: string | undefined;
  output(): string;
}

export interface Instance extends ShipshapeProcess {
  readonly url: string;
}

export interface Deployment {
  readonly database: TestDatabase;
  readonly instances: readonly [Instance, Instance];
  readonly worker: ShipshapeProcess;
  readonly processes: readonly ShipshapeProcess[];
  readonly expo: FakeExpo;
  readonly smtp: FakeSmtpServer;
  readonly slack: FakeSlackWebhook;
  readonly pagerDuty: FakePagerDuty;
  readonly s3: FakeS3;
  /** The stores, Sentry, CI, eas-cli and app repository of the release and update procedures. */
  readonly stores: ReleaseWorld;
  /** A pool on the application database for the rehearsal's own checks (never used by traffic). */
  readonly pool: pg.Pool;
  readonly operatorStateDir: string;
  /** Runs `shipshape <args>` as `operator`, configured like the deployment. */
  cli(args: string[], operator?: string, options?: CliOptions & { env?: Record<string, string> }): Promise<CliResult>;
  /** Stops every process (SIGTERM) and fake, drops the database; returns the processes' exit codes. */
  close(): Promise<Record<string, number | null>>;
}

function watch(name: string, child: ChildProcess, initialOutput: () => string): ShipshapeProcess {
  const watched: ShipshapeProcess = { name, child, exit: undefined, output: initialOutput };
  if (child.exitCode !== null || child.signalCode !== null) watched.exit = String(child.exitCode ?? child.signalCode);
  child.on('exit', (code, signal) => (watched.exit = code === null ? String(signal) : String(code)));
  return watched;
}

/** `shipshape worker`, spawned like `serve` (no hang guard: it runs as long as the rehearsal). */
async function startWorker(env: Record<string, string>): Promise<ShipshapeProcess> {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/shipshape.js'), 'worker'], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', ...BUSY_MACHINE_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const worker = watch('worker', child, () => output);
  await eventually('shipshape worker to start', () => {
    if (worker.exit !== undefined) throw new Error(`shipshape worker exited (${worker.exit}) while starting:\n${output}`);
    return output.includes('worker running') ? true : undefined;
  });
  return worker;
}

export async function startDeployment(options: { schedulerPollMs?: number } = {}): Promise<Deployment> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const [database, expo, smtp, slack, pagerDuty, s3, stores] = await Promise.all([
    createTestDatabase('shipshape_rehearsal'),
    startFakeExpo({ rateLimit: false }),
    startSmtpServer(),
    startSlackWebhook(),
    startPagerDuty(),
    startS3rver({ bucket: 'rehearsal' }),
    startReleaseWorld({ stepInterval: '1s' }),
  ]);
  cleanups.push(
    () => database.drop(),
    () => expo.close(),
    () => smtp.close(),
    () => slack.close(),
    () => pagerDuty.close(),
    () => s3.close(),
    () => stores.close(),
  );
  const states = await Promise.all([createStateDir(), createStateDir(), createStateDir(), createStateDir()]);
  for (const state of states) cleanups.push(state.cleanup);
  const [operatorState, ...processStates] = states;
  const shared: Record<string, string> = {
    DATABASE_URL: database.url,
    ADMIN_TOKEN,
    REDIS_URL,
    REDIS_PREFIX: `rehearsal-${randomUUID()}:`,
    BACKUP_STORAGE_URL: `s3://${s3.bucket}/backups`,
    LEGAL_STORAGE_URL: `s3://${s3.bucket}/legal`,
    // Every instance serves what the operator publishes: one store for all (not each STATE_DIR's default).
    UPDATES_STORAGE_URL: `s3://${s3.bucket}/updates`,
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: 'true',
    AWS_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    SMTP_URL: smtp.url,
    MAIL_FROM: 'Tasks <no-reply@rehearsal.test>',
    EXPO_PUSH_URL: expo.pushUrl,
    SLACK_WEBHOOK_URL: slack.url,
    PAGERDUTY_ROUTING_KEY: fakeRoutingKey(),
    PAGERDUTY_EVENTS_URL: pagerDuty.baseUrl,
    ...(options.schedulerPollMs ? { SCHEDULER_POLL_MS: String(options.schedulerPollMs) } : {}),
    ...stores.env,
  };
  const started: ShipshapeProcess[] = [];
  try {
    // The first instance applies the migrations; the second and the worker find the schema ready.
    const first = await startServeProcess({ ...shared, PORT: '0', STATE_DIR: processStates[0]!.path }, ['--migrate']);
    const a: Instance = Object.assign(watch('serve-a', first.child, first.output), { url: first.url });
    started.push(a);
    const second = await startServeProcess({ ...shared, PORT: '0', STATE_DIR: processStates[1]!.path });
    const b: Instance = Object.assign(watch('serve-b', second.child, second.output), { url: second.url });
    started.push(b);
    started.push(await startWorker({ ...shared, STATE_DIR: processStates[2]!.path }));
    const instances: [Instance, Instance] = [a, b];
    const pool = new pg.Pool({ connectionString: database.url, max: 3, application_name: 'rehearsal-checks' });
    pool.on('error', () => undefined);
    const operatorEnv = { ...shared, ...stores.operatorEnv, STATE_DIR: operatorState!.path, API_URL: first.url };
    return {
      database,
      instances,
      worker: started[2]!,
      processes: started,
      expo,
      smtp,
      slack,
      pagerDuty,
      s3,
      stores,
      pool,
      operatorStateDir: operatorState!.path,
      cli: (args, operator = 'alice', options = {}) => runCli(args, { ...operatorEnv, SHIPSHAPE_OPERATOR: operator, ...options.env }, options),
      close: async () => {
        const codes: Record<string, number | null> = {};
        await Promise.all(
          started.map(async (running) => {
            if (running.exit !== undefined) {
              codes[running.name] = Number(running.exit);
              return;
            }
            const exited = new Promise<number | null>((resolve) => running.child.once('exit', (code) => resolve(code)));
            running.child.kill('SIGTERM');
            codes[running.name] = await exited;
          }),
        );
        await pool.end();
        for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
        return codes;
      },
    };
  } catch (error) {
    for (const running of started) running.child.kill('SIGKILL');
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    throw error;
  }
}
