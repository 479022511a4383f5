/**
 * Runbook: "Analyze Slow Queries", step 4 — "Add missing indexes".
 *
 *   CREATE INDEX CONCURRENTLY idx_<table>_<columns> ON <table> (<columns>)
 *
 * CONCURRENTLY builds the index without blocking writes, which is why it cannot run inside
 * a transaction; the step runs it on a connection of its own with no statement timeout.
 * When it fails (or is interrupted) it leaves an INVALID index behind that still slows every
 * write; dropping that index is the step's rollback, done before the failure is reported.
 * Undo drops the index again (DROP INDEX CONCURRENTLY).
 *
 * The table and columns are checked against the catalog and reach SQL only quoted. Which
 * index to add: `shipshape db index-advice` lists large tables read mostly by sequential
 * scans, and `shipshape db explain` shows the plan of a slow statement.
 */
import { z } from 'zod';
import type { Pool } from '../../db/pool.ts';
import { quoteIdent } from '../../db/pool.ts';
import { describeError, ShipError } from '../../errors.ts';
import { formatBytes } from '../../bytes.ts';
import {
  coveringIndex,
  findIndex,
  IDENTIFIER_PATTERN,
  indexNameFor,
  MAX_INDEX_COLUMNS,
  parseTableName,
  qualified,
  tableFacts,
  type TableName,
} from '../diagnostics/indexes.ts';
import { defineProcedure, type JsonObject, type RunContext } from '../engine/types.ts';

const params = z.object({
  table: z.string().refine((text) => parseTableName(text) !== undefined, 'must be a table name like tasks or schema.table (letters, digits, _)'),
  columns: z
    .array(z.string().regex(IDENTIFIER_PATTERN, 'must be column names (letters, digits, _)'))
    .min(1, 'name at least one column')
    .max(MAX_INDEX_COLUMNS, `at most ${MAX_INDEX_COLUMNS} columns`)
    .refine((columns) => new Set(columns).size === columns.length, 'must not repeat a column'),
});
type Params = z.output<typeof params>;
type Context = RunContext<Params>;

export const dbIndex = defineProcedure({
  id: 'db.index',
  command: 'db index',
  title: 'Add an index without blocking writes (CREATE INDEX CONCURRENTLY)',
  runbookSection: 'Analyze Slow Queries',
  whenToUse: 'A slow query reads a large table by sequential scan (see `shipshape db index-advice` and `shipshape db explain`).',
  risk: 'medium',
  expectedDuration: 'seconds to minutes, growing with the table',
  issueType: 'database',
  params,
  locks: (p) => [`table:${tableOf(p).schema}.${tableOf(p).name}`],
  prerequisites: [
    {
      name: 'the table and columns exist',
      run: async (context) => {
        const table = tableOf(context.params);
        const facts = await tableFacts(await pool(context), table);
        if (facts === undefined)
          return {
            ok: false,
            detail: `no table ${table.schema}.${table.name}`,
            remedy: 'check the name (case matters; `shipshape db diagnose` lists the largest tables)',
          };
        if (facts.kind === 'p') {
          return {
            ok: false,
            detail: `${table.schema}.${table.name} is partitioned: PostgreSQL cannot build an index on it CONCURRENTLY`,
            remedy: 'index each partition with this command, then attach them in psql',
          };
        }
        if (facts.kind !== 'r' && facts.kind !== 'm') return { ok: false, detail: `${table.schema}.${table.name} is not a table (relkind ${facts.kind})` };
        const missing = context.params.columns.filter((column) => !facts.columns.includes(column));
        if (missing.length > 0) {
          return { ok: false, detail: `${table.schema}.${table.name} has no column ${missing.join(', ')}`, remedy: `its columns: ${facts.columns.join(', ')}` };
        }
        return { ok: true, detail: `${table.schema}.${table.name}: about ${facts.liveRows} rows, ${formatBytes(facts.bytes)}` };
      },
    },
    {
      name: 'no index already serves these columns',
      run: async (context) => {
        const table = tableOf(context.params);
        const db = await pool(context);
        const name = nameOf(context.params);
        const existing = await findIndex(db, table.schema, name);
        // An invalid one of the same name is what a crashed earlier attempt leaves: the step replaces it.
        if (existing !== undefined && existing.valid) return { ok: false, detail: `index ${name} exists already: ${existing.definition}` };
        const covering = await coveringIndex(db, table, context.params.columns);
        if (covering !== undefined)
          return {
            ok: false,
            detail: `index ${covering} already starts with (${context.params.columns.join(', ')})`,
            remedy: 'look at the plan (`shipshape db explain`): the planner may not use it for other reasons',
          };
        return { ok: true, detail: existing === undefined ? `will create ${name}` : `an INVALID ${name} from an earlier attempt is dropped and built again` };
      },
    },
  ],
  steps: [
    {
      id: 'create-index',
      title: 'Create the index concurrently',
      describe: ({ params: p }) => [
        `CREATE INDEX CONCURRENTLY ${quoteIdent(nameOf(p))} ON ${qualified(tableOf(p))} (${p.columns.map(quoteIdent).join(', ')})   -- on its own connection, outside a transaction, no statement timeout`,
        `on failure: DROP INDEX CONCURRENTLY IF EXISTS ${qualifiedIndex(p)}   -- the invalid index it leaves behind`,
      ],
      async run(context): Promise<JsonObject> {
        const p = context.params;
        const db = await pool(context);
        const name = nameOf(p);
        const existing = await findIndex(db, tableOf(p).schema, name);
        if (existing?.valid === true) {
          context.note(`${name} exists and is valid (a resumed run): nothing to build`);
          return { index: name, created: false };
        }
        if (existing !== undefined) {
          context.note(`dropping the INVALID ${name} left by an earlier attempt`);
          await dropIndex(db, p);
        }
        const started = Date.now();
        try {
          await buildConcurrently(db, p, context.signal);
        } catch (error) {
          const cleaned = await dropIndex(db, p).then(
            () => 'the invalid index it left was dropped',
            (dropError: unknown) =>
              `the invalid index it left could NOT be dropped (${describeError(dropError)}): drop it with DROP INDEX CONCURRENTLY ${qualifiedIndex(p)}`,
          );
          throw new ShipError('SHIP_ERR_STEP_FAILED', `CREATE INDEX CONCURRENTLY failed: ${describeError(error)}; ${cleaned}. ${adviceFor(error)}`, {
            cause: error,
          });
        }
        const built = await findIndex(db, tableOf(p).schema, name);
        context.note(`built ${name} in ${((Date.now() - started) / 1_000).toFixed(1)} s (${formatBytes(built?.bytes ?? 0)})`);
        return { index: name, created: true, bytes: built?.bytes ?? 0 };
      },
      async undo(context) {
        await dropIndex(await pool(context), context.params);
        context.note(`dropped ${nameOf(context.params)}`);
      },
      async undoInterrupted(context) {
        // The prerequisite saw no valid index of this name, so whatever is there now is ours.
        await dropIndex(await pool(context), context.params);
      },
    },
  ],
  verification: [
    {
      name: 'the index is valid and ready',
      run: async (context) => {
        const p = context.params;
        const index = await findIndex(await pool(context), tableOf(p).schema, nameOf(p));
        if (index === undefined) return { ok: false, detail: `no index ${nameOf(p)}` };
        return index.valid && index.ready
          ? { ok: true, detail: `${index.definition} (${formatBytes(index.bytes)})` }
          : { ok: false, detail: `${index.name} is ${index.valid ? '' : 'INVALID '}${index.ready ? '' : 'not ready'}` };
      },
    },
  ],
});

function tableOf(p: Params): TableName {
  const table = parseTableName(p.table);
  if (table === undefined) throw new ShipError('SHIP_ERR_VALIDATION', `<table>: "${p.table}" is not a table name.`);
  return table;
}

function nameOf(p: Params): string {
  return indexNameFor(tableOf(p).name, p.columns);
}

function qualifiedIndex(p: Params): string {
  return `${quoteIdent(tableOf(p).schema)}.${quoteIdent(nameOf(p))}`;
}

async function pool(context: Context): Promise<Pool> {
  return (await context.database()).pool;
}

/** CREATE INDEX CONCURRENTLY on a dedicated connection; Ctrl-C cancels the build on the server. */
async function buildConcurrently(db: Pool, p: Params, signal: AbortSignal): Promise<void> {
  const client = await db.connect();
  let broken = false;
  let pid: number | undefined;
  const cancel = () => {
    if (pid !== undefined) void db.query('SELECT pg_cancel_backend($1::integer)', [pid]).catch(() => undefined);
  };
  signal.addEventListener('abort', cancel, { once: true });
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    pid = rows[0]?.pid;
    // A large table takes longer than the pool's statement timeout; the build must not be cut off by it.
    await client.query('SET statement_timeout = 0');
    await client.query(`CREATE INDEX CONCURRENTLY ${quoteIdent(nameOf(p))} ON ${qualified(tableOf(p))} (${p.columns.map(quoteIdent).join(', ')})`);
  } catch (error) {
    broken = true;
    throw error;
  } finally {
    signal.removeEventListener('abort', cancel);
    await client.query('RESET statement_timeout').catch(() => {
      broken = true;
    });
    client.release(broken ? true : undefined);
  }
}

async function dropIndex(db: Pool, p: Params): Promise<void> {
  const client = await db.connect();
  try {
    await client.query('SET statement_timeout = 0');
    await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${qualifiedIndex(p)}`);
  } finally {
    await client.query('RESET statement_timeout').catch(() => undefined);
    client.release();
  }
}

function adviceFor(error: unknown): string {
  const code = error instanceof Error && 'code' in error ? String(error.code) : '';
  if (code === '23505') return 'A unique violation cannot happen for a plain index; check the table for corruption.';
  if (code === '57014') return 'It was cancelled (Ctrl-C or a server timeout): run it again when ready.';
  if (code === '40P01') return 'It deadlocked with another schema change: run it again.';
  if (code === '42501') return 'The role may not create indexes on this table: connect as its owner.';
  return 'Nothing is left changed; fix the cause and run it again.';
}
