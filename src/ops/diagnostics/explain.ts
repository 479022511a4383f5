/**
 * Runbook: "Analyze Slow Queries", step 3 — `EXPLAIN (ANALYZE, BUFFERS)` of one statement.
 *
 * ANALYZE really executes the statement, so explaining an UPDATE would update, and a SELECT
 * may call any function (`pg_terminate_backend`, `nextval`, one that deletes). Two guards that
 * the database itself enforces:
 *
 *   - Everything runs in one transaction that is always rolled back.
 *   - Inside it, a throwaway role is created and the statement runs as that role (SET LOCAL
 *     ROLE). The role may read the app's tables — and, for a statement that writes, write them —
 *     and nothing else: no sequences (nextval cannot be given back), no signalling other
 *     sessions (it is a member of no role), no reading other schemas' tables. The role itself is
 *     rolled back with the transaction, so nothing is left behind.
 *
 * Session-level advisory locks are the one thing a rollback keeps; they are released before the
 * connection goes back. A database user that may not create roles gets the estimated plan
 * only (EXPLAIN without ANALYZE, nothing executed), and is told why.
 *
 * Only one statement, and only the kinds EXPLAIN takes. The statement is sent with the
 * extended query protocol, which the server refuses to run as more than one statement, so
 * `SELECT 1; COMMIT; DELETE …` cannot slip past the check below.
 */
import { randomBytes } from 'node:crypto';
import type { QueryConfig } from 'pg';
import type { Pool, PoolClient } from '../../db/pool.ts';
import { ShipError } from '../../errors.ts';
import { leadingWords, mayWrite, splitStatements } from './sql-text.ts';

const EXPLAINABLE = new Set(['select', 'with', 'insert', 'update', 'delete', 'merge', 'values', 'table']);
/** Statements PostgreSQL refuses inside a transaction block, with why that matters here. */
const NO_TRANSACTION: ReadonlyArray<{ readonly words: readonly string[]; readonly name: string }> = [
  { words: ['vacuum'], name: 'VACUUM' },
  { words: ['create', 'index', 'concurrently'], name: 'CREATE INDEX CONCURRENTLY' },
  { words: ['create', 'unique', 'index', 'concurrently'], name: 'CREATE INDEX CONCURRENTLY' },
  { words: ['drop', 'index', 'concurrently'], name: 'DROP INDEX CONCURRENTLY' },
  { words: ['reindex'], name: 'REINDEX' },
  { words: ['create', 'database'], name: 'CREATE DATABASE' },
  { words: ['drop', 'database'], name: 'DROP DATABASE' },
  { words: ['alter', 'system'], name: 'ALTER SYSTEM' },
  { words: ['cluster'], name: 'CLUSTER' },
];

export interface ExplainResult {
  /** The statement as explained (trimmed, without a trailing semicolon). */
  readonly statement: string;
  /** Whether it ran in a read-write transaction because it may write. */
  readonly mayWrite: boolean;
  /** Always true: nothing the statement did was committed. */
  readonly rolledBack: true;
  /** False when the statement could not be run safely, so the plan is PostgreSQL's estimate only. */
  readonly analyzed: boolean;
  /** EXPLAIN's text output, one line per element. */
  readonly plan: readonly string[];
  /** EXPLAIN (FORMAT JSON) output, when asked for. */
  readonly planJson?: unknown;
  readonly notes: readonly string[];
}

/** Checks that `sql` is one statement EXPLAIN can take; returns it trimmed. Throws SHIP_ERR_VALIDATION. */
export function checkExplainable(sql: string): string {
  const statements = splitStatements(sql);
  if (statements.length === 0)
    throw new ShipError('SHIP_ERR_VALIDATION', 'The statement is empty. Pass one SQL statement, quoted: shipshape db explain "SELECT …".');
  if (statements.length > 1) {
    throw new ShipError('SHIP_ERR_VALIDATION', `That is ${statements.length} statements; \`db explain\` takes exactly one. Explain them one at a time.`);
  }
  const statement = statements[0] ?? '';
  const words = leadingWords(statement, 4);
  if (words[0] === 'explain')
    throw new ShipError('SHIP_ERR_VALIDATION', 'Leave out EXPLAIN: `db explain` adds EXPLAIN (ANALYZE, BUFFERS) itself. Pass the statement alone.');
  const outside = NO_TRANSACTION.find((entry) => entry.words.every((word, i) => words[i] === word));
  if (outside !== undefined) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `${outside.name} cannot run inside a transaction, and \`db explain\` runs everything inside one that it rolls back, so it would not be undone (EXPLAIN does not take it either). ` +
        (outside.name === 'CREATE INDEX CONCURRENTLY'
          ? 'To add an index, use `shipshape db index <table> <columns…>`.'
          : 'Run it deliberately with psql if that is what you mean to do.'),
    );
  }
  if (!EXPLAINABLE.has(words[0] ?? '')) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `EXPLAIN takes SELECT, WITH, INSERT, UPDATE, DELETE, MERGE, VALUES or TABLE statements; this one starts with ${words[0] === undefined ? 'something else' : words[0].toUpperCase()}.`,
    );
  }
  return statement;
}

/**
 * Runs `EXPLAIN (ANALYZE, BUFFERS[, FORMAT JSON])` of one statement as a throwaway role, in a
 * transaction that is rolled back whatever happens. `statementTimeoutMs` bounds how long the
 * statement may run.
 */
export async function explainAnalyze(pool: Pool, sql: string, options: { statementTimeoutMs: number; json?: boolean }): Promise<ExplainResult> {
  const statement = checkExplainable(sql);
  const writes = mayWrite(statement);
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    await client.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(options.statementTimeoutMs))}`);
    // A write waits at most this long for a row lock held by the app, instead of queueing behind it.
    await client.query("SET LOCAL lock_timeout = '5s'");
    const analyzed = await runAsThrowawayRole(client, writes);
    const run = async (format: string) => {
      try {
        // queryMode 'extended' (pg ≥ 8.12; not in @types/pg yet): Parse/Bind/Execute, which admits exactly one statement.
        const query: QueryConfig & { queryMode: 'extended' } = {
          text: `EXPLAIN (${analyzed ? 'ANALYZE, BUFFERS' : 'COSTS'}${format}) ${statement}`,
          queryMode: 'extended',
        };
        const result = await client.query<Record<string, unknown>>(query);
        return result.rows.map((row) => Object.values(row)[0]);
      } catch (error) {
        throw explainError(error, writes);
      }
    };
    const plan = (await run('')).map((line) => String(line));
    let planJson: unknown;
    if (options.json) {
      // A second execution inside the same rolled-back transaction; cheap next to the first, and the machine-readable plan is worth it.
      planJson = (await run(', FORMAT JSON'))[0];
    }
    const notes = analyzed
      ? [
          'ran inside a transaction that was rolled back: nothing it changed was kept',
          writes
            ? 'ran as a throwaway role that may read and write the app’s tables and nothing else (no sequences, no other sessions)'
            : 'ran as a throwaway role that may only read the app’s tables: it could not write, draw sequence values or touch other sessions',
        ]
      : [
          'estimated plan only — the statement was not executed: running it safely needs a database user that may create roles (CREATEROLE), to run it as a throwaway role with no other rights',
        ];
    return { statement, mayWrite: writes, rolledBack: true, analyzed, plan, ...(options.json ? { planJson } : {}), notes };
  } catch (error) {
    broken = !(error instanceof ShipError);
    throw error;
  } finally {
    try {
      await client.query('ROLLBACK');
      // Session-level advisory locks survive a rollback; none of them may outlive the explain.
      await client.query('SELECT pg_advisory_unlock_all()');
    } catch {
      broken = true;
    }
    // A connection whose rollback failed is not handed back to the pool.
    client.release(broken ? true : undefined);
  }
}

/**
 * Creates a role inside the open transaction with rights on the app's tables only (read, plus
 * write for a statement that writes) and switches to it. False, with the transaction still
 * usable, when this database user may not create roles: the caller then must not execute.
 */
async function runAsThrowawayRole(client: PoolClient, writes: boolean): Promise<boolean> {
  const role = `shipshape_explain_${randomBytes(6).toString('hex')}`;
  await client.query('SAVEPOINT throwaway_role');
  try {
    await client.query(`CREATE ROLE ${role} NOLOGIN NOINHERIT`);
  } catch (error) {
    if ((error as { code?: unknown }).code !== '42501') throw error;
    await client.query('ROLLBACK TO SAVEPOINT throwaway_role');
    return false;
  }
  // The schemas the app's tables live in: those this user owns, and public.
  const { rows } = await client.query<{ schema: string }>(
    "SELECT quote_ident(nspname) AS schema FROM pg_namespace WHERE (nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) OR nspname = 'public') AND nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'",
  );
  const rights = writes ? 'SELECT, INSERT, UPDATE, DELETE' : 'SELECT';
  for (const { schema } of rows) {
    await client.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
    await client.query(`GRANT ${rights} ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
  }
  await client.query(`SET LOCAL ROLE ${role}`);
  return true;
}

function explainError(error: unknown, writes: boolean): unknown {
  if (!(error instanceof Error) || !('code' in error) || typeof error.code !== 'string') return error;
  const message = error.message;
  switch (error.code) {
    case '42601':
      if (/multiple commands/i.test(message))
        return new ShipError('SHIP_ERR_VALIDATION', '`db explain` takes exactly one statement. Explain them one at a time.', { cause: error });
      return new ShipError('SHIP_ERR_VALIDATION', `The statement does not parse: ${message}. Check the SQL (quote it for the shell).`, { cause: error });
    case '42P01':
    case '42703':
    case '42883':
    case '42804':
    case '22P02':
      return new ShipError('SHIP_ERR_VALIDATION', `PostgreSQL refused the statement: ${message}.`, { cause: error });
    case '25006':
    case '42501': // insufficient privilege: what the throwaway role may not do
    case '2F003': // "password is required": dblink and the like, refused to a role without a login
      return new ShipError(
        'SHIP_ERR_VALIDATION',
        writes
          ? `The statement tried something beyond writing the app's tables (a sequence, another schema, another session): ${message}. Nothing was changed.`
          : `The statement tried to write, or to do more than read, although it does not look like a write: ${message}. Nothing was changed.`,
        { cause: error },
      );
    case '57014':
      return new ShipError(
        'SHIP_ERR_VALIDATION',
        `The statement ran longer than the statement timeout and was cancelled (${message}). Nothing was changed. Raise DATABASE_STATEMENT_TIMEOUT_MS for this command if it must run longer.`,
        { cause: error },
      );
    case '55P03':
      return new ShipError(
        'SHIP_ERR_VALIDATION',
        `The statement waited more than 5 s for a lock held by another session and was stopped; nothing was changed. Try again when the database is quieter (\`shipshape db diagnose\` shows who blocks).`,
        { cause: error },
      );
    default:
      return error;
  }
}
