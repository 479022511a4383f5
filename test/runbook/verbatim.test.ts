/**
 * The runbook, verbatim: every curl command of docs/RUNBOOK.md and its `maintenance.sh` run with
 * the real `curl` through `bash` against a running Shipshape and the provider fakes, and each
 * command's effect is checked. Commands are read out of the runbook (test/runbook/runbook-commands.ts),
 * so a changed runbook breaks this test; those that are not Shipshape's (aws, psql against a
 * Supabase host, slack-cli, eas…) are listed as skipped with the command that replaces them.
 *
 * The only changes made to a command before it runs: the hosts (api.yourdomain.com → the test
 * server, api.cloudflare.com and cdn.yourdomain.com → the Cloudflare fake, sentry.io → the Sentry
 * fake) and the environment it reads ($ADMIN_TOKEN, $ZONE_ID, $CF_TOKEN, $SENTRY_TOKEN; for what
 * runs Shipshape itself — maintenance.sh and the shipped backup script — also $DB_HOST, $DB_USER,
 * $DB_NAME and Shipshape's own DATABASE_URL and STATE_DIR). Two exceptions are named where they happen:
 * `watch -n 60 '…'` runs its command once, and the T-72 h call, whose date has passed, runs
 * a second time with a date ahead.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createUser } from '../../src/domain/users.ts';
import { defaultUsersTable, eraseUser } from '../../src/domain/erasure.ts';
import { startFakeCloudflare, type FakeCloudflare } from '../fakes/cloudflare.ts';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { startFakeSentry, type FakeSentry } from '../fakes/sentry.ts';
import { ADMIN_TOKEN, signUp, startTestApi, type TestApi } from '../helpers/api.ts';
import { PROJECT_ROOT } from '../helpers/cli.ts';
import { eventually, HANG_GUARD_MS } from '../helpers/patience.ts';
import { readRunbook, RUNBOOK_PATH, type RunbookCommand, type RunbookScript } from './runbook-commands.ts';
import { skippedCommands, type SkippedCommand } from './skipped-commands.ts';

const CF_TOKEN = 'cf-token-for-the-runbook-test';
const ZONE_ID = '023e105f4ecef8ad9ca31a8372d0c353';
const SENTRY_TOKEN = 'sentry-token-for-the-runbook-test';

const runbook = readRunbook();

interface World {
  readonly api: TestApi;
  readonly cloudflare: FakeCloudflare;
  readonly sentry: FakeSentry;
  readonly expo: FakeExpo;
  /** A device registered before maintenance starts, so the emergency push has somewhere to go. */
  readonly device: string;
}

interface ShellResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** What one of the runbook's commands, run as written, must do. */
interface VerbatimCheck {
  readonly section: string;
  /** Picks the command out of its section. */
  readonly matches: RegExp;
  /** The behaviour the test protects, for its name. */
  readonly behaviour: string;
  /** Commands that run Shipshape itself (the shipped scripts) run from the checkout, configured like an operator's shell. */
  readonly asOperator?: boolean;
  readonly arrange?: (world: World) => Promise<void>;
  readonly check: (result: ShellResult, world: World, command: string) => Promise<void>;
}

/** The hosts the runbook names, pointed at this machine; nothing else in a command changes. */
function onThisMachine(text: string, world: World): string {
  const local = text
    .replaceAll('https://api.yourdomain.com', world.api.url)
    .replaceAll('https://api.cloudflare.com', world.cloudflare.cdnUrl)
    .replaceAll('https://cdn.yourdomain.com', world.cloudflare.cdnUrl)
    .replaceAll('https://sentry.io', world.sentry.url);
  assert.doesNotMatch(local, /https:\/\//, 'every host a command calls must be a local one');
  return local;
}

function commandEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir(), ADMIN_TOKEN, ZONE_ID, CF_TOKEN, SENTRY_TOKEN, ...extra };
}

/** An operator's shell: Shipshape's configuration, and the connection the runbook's psql lines read. */
function operatorEnv(api: TestApi, extra: Record<string, string> = {}): Record<string, string> {
  const database = new URL(api.config.databaseUrl ?? assert.fail('the test API runs on PostgreSQL'));
  return commandEnv({
    DB_HOST: database.hostname,
    DB_USER: decodeURIComponent(database.username),
    DB_NAME: database.pathname.slice(1),
    DATABASE_URL: database.toString(),
    STATE_DIR: api.config.stateDir,
    LOG_LEVEL: 'warn',
    SHIPSHAPE_OPERATOR: 'runbook-test',
    ...extra,
  });
}

function bash(args: string[], env: Record<string, string>, cwd = tmpdir()): Promise<ShellResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const guard = setTimeout(() => child.kill('SIGKILL'), HANG_GUARD_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}

// Checks read answer fields freely, as ApiResponse.json does; each one asserts the shape it expects.
function json(result: ShellResult): Record<string, any> {
  assert.equal(result.code, 0, `curl failed:\n${result.stderr}`);
  try {
    return JSON.parse(result.stdout) as Record<string, any>;
  } catch {
    assert.fail(`not a JSON answer: ${result.stdout}`);
  }
}

/** The fields the runbook's "Expected output" of /metrics shows, read from the runbook itself. */
function runbookMetricsFields(): string[] {
  const expected = /# Expected output:\n((?:#.*\n)+)/.exec(readFileSync(RUNBOOK_PATH, 'utf8'))?.[1] ?? '';
  const fields = [...expected.matchAll(/"(\w+)":/g)].map((match) => match[1] ?? '');
  assert.ok(fields.length > 0, 'the runbook shows the fields of /metrics');
  return fields;
}

async function cacheEpoch(api: TestApi, scope: string): Promise<number> {
  const config = await api.request('GET', '/config');
  return Number(config.json.cacheEpochs?.[scope] ?? 0);
}

const epochsBefore = new Map<string, number>();

/** Backups sealed in the default storage (`STATE_DIR/backups/<id>/manifest.json`, written only once the stored dump verified). */
async function sealedBackups(api: TestApi): Promise<number> {
  const root = path.join(api.config.stateDir, 'backups');
  const folders = await readdir(root).catch(() => []);
  const sealed = await Promise.all(
    folders.map((id) =>
      access(path.join(root, id, 'manifest.json')).then(
        () => true,
        () => false,
      ),
    ),
  );
  return sealed.filter(Boolean).length;
}
let backupsBefore = 0;

const verbatimChecks: readonly VerbatimCheck[] = [
  {
    section: 'Run Database Migration',
    matches: /^\.\/scripts\/backup\/backup-database\.sh$/,
    behaviour: 'the script Shipshape ships takes a verified backup',
    asOperator: true,
    arrange: async ({ api }) => {
      backupsBefore = await sealedBackups(api);
    },
    check: async (result, { api }) => {
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await sealedBackups(api), backupsBefore + 1);
    },
  },
  {
    section: 'Restore Database',
    matches: /\/auth\/login[\s\S]*test@example\.com/,
    behaviour: 'login answers with a session for an existing account',
    arrange: async ({ api }) => {
      // The runbook's password is shorter than registration allows, so the account is made below the API.
      await createUser(api.server.database.pool, { email: 'test@example.com', password: 'test123' });
    },
    check: async (result) => {
      const answer = json(result);
      assert.equal(typeof answer.token, 'string', result.stdout);
      assert.equal(answer.user.email, 'test@example.com');
    },
  },
  {
    section: 'Delete User Data (GDPR Request)',
    matches: /\/auth\/login[\s\S]*user@example\.com/,
    behaviour: 'an erased user cannot log in: a 401 error envelope',
    arrange: async ({ api }) => {
      const user = await signUp(api, 'user@example.com');
      await eraseUser(api.server.database.pool, defaultUsersTable, {
        userId: user.id,
        operator: 'runbook-test',
        ticket: 'GDPR-TEST',
        reason: 'runbook verification',
      });
    },
    check: async (result) => {
      assert.equal(json(result).error.code, 'SHIP_ERR_INVALID_CREDENTIALS', result.stdout);
    },
  },
  ...(['all', 'tasks'] as const).map(
    (scope): VerbatimCheck => ({
      section: 'Clear App Cache',
      matches: new RegExp(`/admin/cache/clear[\\s\\S]*"scope":"${scope}"`),
      behaviour: `bumps the "${scope}" cache epoch that GET /config shows the app`,
      arrange: async ({ api }) => {
        epochsBefore.set(scope, await cacheEpoch(api, scope));
      },
      check: async (result, { api }) => {
        const answer = json(result);
        assert.equal(answer.scope, scope);
        assert.ok(answer.epoch > (epochsBefore.get(scope) ?? 0), result.stdout);
        assert.equal(await cacheEpoch(api, scope), answer.epoch);
      },
    }),
  ),
  {
    section: 'Clear CDN Cache',
    matches: /purge_cache[\s\S]*purge_everything/,
    behaviour: 'Cloudflare receives a purge of everything',
    check: async (result, { cloudflare }) => {
      assert.equal(json(result).success, true, result.stdout);
      assert.deepEqual(cloudflare.accepted.at(-1), 'everything');
    },
  },
  {
    section: 'Clear CDN Cache',
    matches: /purge_cache[\s\S]*"files"/,
    behaviour: 'Cloudflare receives a purge of the file',
    arrange: async ({ cloudflare }) => {
      cloudflare.cache('/logo.png', 3_600);
    },
    check: async (result, { cloudflare }) => {
      assert.equal(json(result).success, true, result.stdout);
      assert.deepEqual(cloudflare.accepted.at(-1), [`${cloudflare.cdnUrl}/logo.png`]);
    },
  },
  {
    section: 'Clear CDN Cache',
    matches: /^curl -I .*cf-cache-status/,
    behaviour: 'the purged file comes from the origin (cf-cache-status: MISS)',
    check: async (result) => {
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^cf-cache-status: MISS\r?$/im);
    },
  },
  {
    section: 'Check System Health',
    matches: /^curl \S+\/health$/,
    behaviour: 'the API is healthy',
    check: async (result) => {
      const answer = json(result);
      assert.equal(answer.status, 'ok', result.stdout);
      assert.equal(answer.db, 'ok');
    },
  },
  {
    section: 'Check System Health',
    matches: /stats_v2/,
    behaviour: 'Sentry refuses the call as written (field and groupBy are required; `shipshape health` sends them)',
    check: async (result, { sentry }) => {
      assert.match(json(result).detail, /field/, result.stdout);
      const request = sentry.requests.at(-1);
      assert.equal(request?.status, 400);
      assert.equal(request?.authorization, `Bearer ${SENTRY_TOKEN}`);
    },
  },
  {
    section: 'Check System Health',
    matches: /\/metrics[\s\S]*ADMIN_TOKEN/,
    behaviour: 'the metrics JSON has every field the runbook shows',
    check: async (result) => {
      const answer = json(result);
      for (const field of runbookMetricsFields()) assert.equal(typeof answer[field], 'number', `${field} in ${result.stdout}`);
    },
  },
  {
    section: 'Emergency App Disable',
    matches: /\/admin\/maintenance[\s\S]*"enabled": true/,
    behaviour: 'maintenance goes on with the message',
    check: async (result) => {
      const answer = json(result);
      assert.equal(answer.maintenance.enabled, true, result.stdout);
      assert.match(answer.maintenance.message, /^Emergency maintenance in progress/);
    },
  },
  {
    section: 'Emergency App Disable',
    matches: /^curl \S+\/health$/,
    behaviour: '/health shows the maintenance message',
    check: async (result) => {
      const answer = json(result);
      assert.equal(answer.status, 'maintenance', result.stdout);
      assert.match(answer.message, /^Emergency maintenance in progress/);
    },
  },
  {
    section: 'Emergency App Disable',
    matches: /\/admin\/notifications\/send/,
    behaviour: 'a high-priority push reaches the registered device',
    check: async (result, { api, expo, device }) => {
      const { job } = json(result);
      assert.equal(typeof job?.id, 'string', result.stdout);
      const finished = await eventually('the push job to finish', async () => {
        const status = await api.request('GET', `/admin/notifications/${job.id}`, { token: ADMIN_TOKEN });
        return status.json.job?.status === 'sending' ? undefined : status.json.job;
      });
      assert.equal(finished.status, 'done');
      const delivered = expo.deliveries.filter((delivery) => delivery.to === device);
      assert.equal(delivered.length, 1);
      assert.equal(delivered[0]?.title, 'Temporary Maintenance');
      assert.equal(delivered[0]?.priority, 'high');
    },
  },
  {
    section: 'Emergency App Disable',
    matches: /\/admin\/maintenance[\s\S]*"enabled": false/,
    behaviour: 'maintenance goes off, as /health shows',
    check: async (result, { api }) => {
      assert.equal(json(result).maintenance.enabled, false, result.stdout);
      assert.equal((await api.request('GET', '/health')).json.status, 'ok');
    },
  },
  {
    section: 'Monthly Maintenance Checklist',
    matches: /\/admin\/notifications\/schedule/,
    behaviour:
      "the JSON sent with curl's default content type is read: the push is scheduled (a date that has passed is refused by name, and the same call with a date ahead is scheduled)",
    check: async (result, world, command) => {
      const written = /"scheduledFor": "([^"]+)"/.exec(command)?.[1];
      assert.ok(written, 'the runbook schedules a date');
      if (Date.parse(written) > Date.now()) {
        assertScheduled(json(result), written);
        return;
      }
      const refused = json(result);
      assert.equal(refused.error?.code, 'SHIP_ERR_VALIDATION', result.stdout);
      assert.match(refused.error.message, /scheduledFor: .* is not in the future/);
      // The one edit an operator makes every month: the date. Everything else stays as written.
      const ahead = new Date(Math.ceil((Date.now() + 72 * 3_600_000) / 60_000) * 60_000).toISOString().replace('.000Z', 'Z');
      const again = await bash(['-c', command.replace(written, ahead)], commandEnv());
      const scheduled = json(again);
      assertScheduled(scheduled, ahead);
      const pending = await world.api.request('GET', '/admin/notifications?status=pending', { token: ADMIN_TOKEN });
      assert.ok(pending.json.notifications.some((row: { id: string }) => row.id === scheduled.notification.id));
    },
  },
  {
    section: 'Monthly Maintenance Checklist',
    matches: /^watch -n 60 'curl [^']*\/metrics'$/,
    behaviour: 'run once without a token, /metrics answers 403 and says how to watch it (documented in README "HTTP API")',
    check: async (result) => {
      const answer = json(result);
      assert.equal(answer.error?.code, 'SHIP_ERR_FORBIDDEN', result.stdout);
      assert.match(answer.error.message, /Authorization: Bearer \$ADMIN_TOKEN/);
      assert.match(answer.error.message, /shipshape maintenance monitor/);
    },
  },
];

function assertScheduled(answer: Record<string, any>, at: string): void {
  assert.equal(answer.notification?.status, 'pending', JSON.stringify(answer));
  assert.equal(Date.parse(answer.notification.scheduledFor), Date.parse(at));
  assert.equal(answer.notification.title, 'Scheduled Maintenance');
}

/** `watch -n 60 'X'` repeats X until interrupted and needs a terminal: the test runs X once. */
function runnable(text: string): string {
  return /^watch -n \d+ '([^']*)'$/.exec(text)?.[1] ?? text;
}

function verbatimCheckFor(command: RunbookCommand): VerbatimCheck | undefined {
  return verbatimChecks.find((check) => check.section === command.section && check.matches.test(command.text));
}

function skipFor(command: RunbookCommand): SkippedCommand | undefined {
  return skippedCommands.find((skip) => skip.section === command.section && skip.tool === command.tool);
}

const label = (item: { section: string; block: string; line: number }) => `${item.section} (${item.block}, RUNBOOK.md:${item.line})`;
/** A command on one line for a test name: continuations joined, long ones cut. */
const oneLine = (text: string) => {
  const joined = text
    .replace(/\\\n\s*/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return joined.length > 110 ? `${joined.slice(0, 109)}…` : joined;
};

describe('the runbook, verbatim', () => {
  let world: World;

  before(async () => {
    const [cloudflare, sentry, expo] = await Promise.all([
      startFakeCloudflare({ token: CF_TOKEN, zoneId: ZONE_ID }),
      startFakeSentry({ org: 'your-org', token: SENTRY_TOKEN }),
      startFakeExpo(),
    ]);
    const api = await startTestApi({ env: { EXPO_PUSH_URL: expo.pushUrl } });
    const user = await signUp(api);
    const device = `ExponentPushToken[${randomUUID()}]`;
    const registered = await api.request('POST', '/me/devices', { token: user.token, body: { token: device, platform: 'ios' } });
    assert.equal(registered.status, 201);
    world = { api, cloudflare, sentry, expo, device };
  });

  after(async () => {
    await world?.api.close();
    await Promise.all([world?.cloudflare.close(), world?.sentry.close(), world?.expo.close()]);
  });

  test('every command in docs/RUNBOOK.md is run here or listed as skipped with what replaces it', () => {
    const unknown = runbook.commands.filter((command) => (verbatimCheckFor(command) ? 1 : 0) + (skipFor(command) ? 1 : 0) !== 1);
    assert.deepEqual(
      unknown.map((command) => `${label(command)}: ${oneLine(command.text)}`),
      [],
      'commands neither run nor listed in skipped-commands.ts',
    );
    const ambiguous = runbook.commands.filter(
      (command) => verbatimChecks.filter((check) => check.section === command.section && check.matches.test(command.text)).length > 1,
    );
    assert.deepEqual(ambiguous.map(label), []);
    const unusedChecks = verbatimChecks.filter((check) => !runbook.commands.some((command) => verbatimCheckFor(command) === check));
    assert.deepEqual(
      unusedChecks.map((check) => `${check.section}: ${check.behaviour}`),
      [],
      'checks whose command left the runbook',
    );
    const unusedSkips = skippedCommands.filter((skip) => !runbook.commands.some((command) => skipFor(command) === skip));
    assert.deepEqual(
      unusedSkips.map((skip) => `${skip.section}: ${skip.tool}`),
      [],
      'skip entries whose command left the runbook',
    );
    assert.deepEqual(
      runbook.scripts.map((script) => script.name),
      ['maintenance.sh'],
    );
  });

  test('docs/runbook-deviations.md covers every section of the runbook', async () => {
    const deviations = await readFile(path.join(PROJECT_ROOT, 'docs/runbook-deviations.md'), 'utf8');
    const missing = runbook.sections.filter((section) => !deviations.includes(section));
    assert.deepEqual(missing, []);
  });

  const items = [
    ...runbook.commands.map((command) => ({ kind: 'command' as const, command })),
    ...runbook.scripts.map((script) => ({ kind: 'script' as const, script })),
  ].sort((a, b) => (a.kind === 'command' ? a.command.line : a.script.line) - (b.kind === 'command' ? b.command.line : b.script.line));

  for (const item of items) {
    if (item.kind === 'script') {
      test(`${label(item.script)}: ${item.script.name} under bash with set -e keeps the app in maintenance from its first curl to its last, then reopens it`, async () => {
        await runMaintenanceScript(item.script, world);
      });
      continue;
    }
    const { command } = item;
    const check = verbatimCheckFor(command);
    if (!check) {
      test(`${label(command)}: ${oneLine(command.text)}`, { skip: `not Shipshape's — instead: ${skipFor(command)?.replacement ?? 'unlisted'}` }, () => {});
      continue;
    }
    test(`${label(command)}: ${oneLine(command.text)} — ${check.behaviour}`, async () => {
      await check.arrange?.(world);
      const text = onThisMachine(command.text, world);
      const result = check.asOperator ? await bash(['-c', text], operatorEnv(world.api), PROJECT_ROOT) : await bash(['-c', runnable(text)], commandEnv());
      await check.check(result, world, text);
    });
  }
});

/**
 * Runs maintenance.sh as written in a scratch working directory. Its own steps are real where
 * Shipshape ships them (scripts/backup/backup-database.sh, scripts/security/rotate-credentials.sh,
 * and psql's VACUUM ANALYZE on the test database); npx, npm and find are recording stand-ins on
 * PATH, and each records what GET /health said at the moment it ran.
 */
async function runMaintenanceScript(script: RunbookScript, world: World): Promise<void> {
  const { api } = world;
  const work = await mkdtemp(path.join(tmpdir(), 'shipshape-maintenance-sh-'));
  try {
    await symlink(path.join(PROJECT_ROOT, 'scripts'), path.join(work, 'scripts'));
    const shims = path.join(work, 'shims');
    await mkdir(shims);
    for (const tool of ['npx', 'npm', 'find']) {
      const shim = path.join(shims, tool);
      await writeFile(
        shim,
        [
          '#!/bin/bash',
          `# Stands in for ${tool}: records its arguments and what /health answered while it ran.`,
          'health=$(curl -s -o /dev/null -w "%{http_code}" "$SHIM_HEALTH_URL")',
          `printf '%s\\t%s\\t%s\\n' ${tool} "$*" "$health" >> "$SHIM_LOG"`,
          '',
        ].join('\n'),
      );
      await chmod(shim, 0o755);
    }
    await writeFile(path.join(work, 'maintenance.sh'), onThisMachine(script.text, world));
    const backups = await sealedBackups(api);
    const shimLog = path.join(work, 'shims.log');
    const result = await bash(
      ['maintenance.sh'],
      operatorEnv(api, { PATH: `${shims}:${process.env.PATH ?? '/usr/bin:/bin'}`, SHIM_LOG: shimLog, SHIM_HEALTH_URL: `${api.url}/health` }),
      work,
    );
    const log = await readFile(path.join(work, 'maintenance.log'), 'utf8').catch(() => '');
    assert.equal(result.code, 0, `maintenance.sh failed:\n${result.stderr}\n--- maintenance.log\n${log}`);

    const recorded = (await readFile(shimLog, 'utf8'))
      .trimEnd()
      .split('\n')
      .map((line) => line.split('\t'));
    assert.deepEqual(
      recorded,
      [
        ['npx', 'supabase migration up', '503'],
        ['npm', 'update', '503'],
        ['find', '/var/log/app -name *.log -mtime +30 -delete', '503'],
        ['npm', 'run test:smoke', '503'],
      ],
      'every step between the two curls ran with the app in maintenance (503 from /health)',
    );
    assert.equal((await api.request('GET', '/health')).json.status, 'ok', 'maintenance is off at the end');

    assert.match(log, /^=== Maintenance Started: /m);
    assert.match(log, /"maintenance":\{"enabled":true/);
    assert.equal(await sealedBackups(api), backups + 1, 'scripts/backup/backup-database.sh took a verified backup');
    assert.match(log, /^VACUUM$/m);
    assert.match(log, /Admin token rotated at /);
    assert.match(log, /"maintenance":\{"enabled":false/);
    assert.match(log, /=== Maintenance Completed: .* ===\n$/);

    // The rotated token went to the terminal, works, and is not in the log.
    const rotated = /^([A-Za-z0-9_-]{32,})$/m.exec(result.stderr)?.[1];
    assert.ok(rotated, `the new admin token is shown on stderr:\n${result.stderr}`);
    assert.ok(!log.includes(rotated), 'the new admin token never reaches maintenance.log');
    assert.equal((await api.request('GET', '/metrics', { token: rotated })).status, 200);
    assert.equal((await api.request('GET', '/metrics', { token: ADMIN_TOKEN })).status, 200, 'the old token works during the overlap');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
