/**
 * Shared set-up for the live-operations tests: a migrated database on the shared server,
 * engine dependencies with a fresh STATE_DIR, and report helpers. Everything made here is
 * removed by `cleanup()`.
 */
import assert from 'node:assert/strict';
import pg from 'pg';
import { shipshapeProfile } from '../../src/app-profile.ts';
import { loadConfig } from '../../src/config/index.ts';
import { Migrator } from '../../src/db/migrator.ts';
import { createLogger } from '../../src/log.ts';
import type { EngineDeps, JsonObject, RunReport } from '../../src/ops/engine/index.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from './postgres.ts';

export const logger = createLogger('silent');

export interface LiveFixture {
  readonly database: TestDatabase;
  readonly pool: pg.Pool;
  /** Engine dependencies on that database, a fresh STATE_DIR each call; `env` adds configuration. */
  deps(env?: Record<string, string>): Promise<EngineDeps>;
  /** Environment for the CLI in a child process, with a fresh STATE_DIR. */
  cliEnv(env?: Record<string, string>): Promise<Record<string, string>>;
  onCleanup(fn: () => Promise<unknown>): void;
  cleanup(): Promise<void>;
}

export async function liveFixture(): Promise<LiveFixture> {
  const database = await createTestDatabase('shipshape_live');
  const pool = new pg.Pool({ connectionString: database.url, max: 3 });
  pool.on('error', () => undefined);
  const outcome = await new Migrator(pool, shipshapeProfile.migrations, logger).up();
  if (outcome.error) throw outcome.error;
  const cleanups: Array<() => Promise<unknown>> = [];
  const stateDir = async () => {
    const state = await createStateDir();
    cleanups.push(state.cleanup);
    return state.path;
  };
  return {
    database,
    pool,
    async deps(env = {}) {
      const config = loadConfig({ DATABASE_URL: database.url, STATE_DIR: await stateDir(), SHIPSHAPE_OPERATOR: 'alice', LOG_LEVEL: 'silent', ...env });
      return { config, logger };
    },
    async cliEnv(env = {}) {
      return { DATABASE_URL: database.url, STATE_DIR: await stateDir(), SHIPSHAPE_OPERATOR: 'alice', ...env };
    },
    onCleanup(fn) {
      cleanups.push(fn);
    },
    async cleanup() {
      for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
      await pool.end();
      await database.drop();
    },
  };
}

export function stepOutput(report: RunReport, id: string): JsonObject {
  const step = report.steps.find((candidate) => candidate.id === id);
  assert.ok(step, `no step ${id} in the report`);
  return step.output ?? {};
}

/** The report as text for assertion messages. */
export function show(report: RunReport): string {
  return JSON.stringify(
    {
      state: report.state,
      exitCode: report.exitCode,
      error: report.error,
      prerequisites: report.prerequisites,
      verification: report.verification,
      steps: report.steps.map((s) => ({ id: s.id, status: s.status, output: s.output })),
    },
    null,
    2,
  );
}

export function parseJson(text: string): Record<string, unknown> {
  const value: unknown = JSON.parse(text);
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), `expected one JSON object, got: ${text.slice(0, 200)}`);
  return Object.fromEntries(Object.entries(value));
}
