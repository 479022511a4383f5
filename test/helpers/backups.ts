/**
 * Shared set-up for the backup and restore tests: an application database with the real
 * schema and a little data, its contents as comparable text, and the real CLI in a child
 * process (directly under node, so the pid the journal records is the one a test can kill).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { shipshapeProfile } from '../../src/app-profile.ts';
import { Migrator } from '../../src/db/migrator.ts';
import { createLogger } from '../../src/log.ts';
import { runCli, spawnCli, type CliResult, type RunningCli } from './cli.ts';
import { eventually } from './patience.ts';

export function spawnShipshape(args: string[], env: Record<string, string>): RunningCli {
  return spawnCli(args, env);
}

export function shipshape(args: string[], env: Record<string, string>): Promise<CliResult> {
  return runCli(args, env);
}

/** The one JSON document a `--json` command printed. */
export function jsonOf(outcome: CliResult): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(outcome.stdout);
  } catch {
    assert.fail(`expected one JSON document on stdout (exit ${outcome.code}):\n${outcome.stdout}\n--- stderr ---\n${outcome.stderr}`);
  }
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value));
  return Object.fromEntries(Object.entries(value));
}

/** A step's output in a run report. */
export function stepOutput(report: Record<string, unknown>, stepId: string): Record<string, unknown> {
  const steps = report.steps;
  assert.ok(Array.isArray(steps));
  const step: unknown = steps.find((candidate: unknown) => typeof candidate === 'object' && candidate !== null && 'id' in candidate && candidate.id === stepId);
  assert.ok(typeof step === 'object' && step !== null && 'output' in step, `no step ${stepId} in the report`);
  const output = step.output;
  assert.ok(typeof output === 'object' && output !== null, `step ${stepId} has no output`);
  return Object.fromEntries(Object.entries(output));
}

/** Runs `db backup --json` and returns the new backup's id. */
export async function takeBackup(env: Record<string, string>, extra: string[] = []): Promise<string> {
  const outcome = await shipshape(['db', 'backup', '--json', ...extra], env);
  assert.equal(outcome.code, 0, `db backup failed:\n${outcome.stdout}\n${outcome.stderr}`);
  const id = stepOutput(jsonOf(outcome), 'manifest').backupId;
  assert.equal(typeof id, 'string');
  return String(id);
}

/** Applies the real migrations and adds three users, each with two tasks and a session. */
export async function prepareAppDatabase(url: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    const outcome = await new Migrator(pool, shipshapeProfile.migrations, createLogger('silent')).up();
    if (outcome.error) throw outcome.error;
    await addUsers(pool, ['ada@example.com', 'grace@example.com', 'linus@example.com']);
  } finally {
    await pool.end();
  }
}

export async function addUsers(db: Pick<pg.Pool, 'query'>, emails: readonly string[]): Promise<void> {
  for (const email of emails) {
    const { rows } = await db.query<{ id: string }>("INSERT INTO users (email, password_hash) VALUES ($1::text, 'argon2-placeholder') RETURNING id", [email]);
    const id = rows[0]?.id;
    await db.query("INSERT INTO tasks (user_id, title) VALUES ($1::uuid, 'first ' || $2::text), ($1::uuid, 'second ' || $2::text)", [id, email]);
    await db.query("INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1::uuid, $2::bytea, now() + interval '1 day')", [id, randomBytes(32)]);
  }
}

/** The application's tables as one comparable text: every row of users, tasks and sessions. */
export async function contents(url: string): Promise<string> {
  return withClient(url, contentsOf);
}

/** `contents` on any connection (the embedded database's too); timestamps in UTC so engines compare. */
export async function contentsOf(db: Pick<pg.ClientBase, 'query'>): Promise<string> {
  await db.query("SET TIME ZONE 'UTC'");
  const parts: string[] = [];
  for (const table of ['users', 'tasks', 'sessions']) {
    const { rows } = await db.query<{ row: unknown }>(`SELECT to_jsonb(t) AS row FROM ${table} t ORDER BY id`);
    parts.push(`${table}: ${JSON.stringify(rows.map((row) => row.row))}`);
  }
  return parts.join('\n');
}

export async function maintenanceOn(url: string): Promise<boolean> {
  return withClient(url, async (client) => (await client.query<{ on: boolean }>('SELECT maintenance_enabled AS on FROM app_state')).rows[0]?.on === true);
}

/** Databases on the test server whose name starts with `prefix`. */
export async function databasesLike(adminUrl: string, prefix: string): Promise<string[]> {
  return withClient(adminUrl, async (client) => {
    const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1::text) ORDER BY datname', [prefix]);
    return rows.map((row) => row.datname);
  });
}

export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Waits until some run's journal under `stateDir` contains `needle`; returns that run's id. */
export async function waitForJournal(stateDir: string, needle: (text: string) => boolean, what: string): Promise<string> {
  const runsDir = path.join(stateDir, 'runs');
  return eventually(
    `a run journal showing ${what}`,
    async () => {
      for (const name of await readdir(runsDir).catch(() => [])) {
        if (!name.endsWith('.jsonl')) continue;
        const text = await readFile(path.join(runsDir, name), 'utf8').catch(() => '');
        if (needle(text)) return name.replace(/\.jsonl$/, '');
      }
      return undefined;
    },
    { pollMs: 25 },
  );
}

/** `"type":"step.started"` for a step, as the journal writes it. */
export function stepStarted(stepId: string): (text: string) => boolean {
  return (text) => text.split('\n').some((line) => line.includes('"type":"step.started"') && line.includes(`"step":"${stepId}"`));
}

/** The state `shipshape runs --json` reports for a run. */
export async function runState(env: Record<string, string>, runId: string): Promise<string | undefined> {
  const outcome = await shipshape(['runs', '--json'], env);
  assert.equal(outcome.code, 0, outcome.stderr);
  const runs = jsonOf(outcome).runs;
  assert.ok(Array.isArray(runs));
  const run: unknown = runs.find(
    (candidate: unknown) => typeof candidate === 'object' && candidate !== null && 'runId' in candidate && candidate.runId === runId,
  );
  return typeof run === 'object' && run !== null && 'state' in run ? String(run.state) : undefined;
}

/**
 * Drops the test database and the databases restores kept or left beside it (`<name>__pre_restore_<run>`,
 * `<name>__incoming_<run>`): a restore keeps the database it replaced, which the test's own drop does not reach.
 */
export async function dropWithSideDatabases(adminUrl: string, database: { name: string; drop(): Promise<void> }): Promise<void> {
  await database.drop();
  for (const name of await databasesLike(adminUrl, `${database.name}__`)) {
    await withClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
  }
}
