/**
 * The embedded database's wire server: many pooled connections through one PGlite
 * backend must behave like PostgreSQL — no statement of one client landing in another's
 * transaction — and the data must survive a restart.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import { openDatabase } from '../../src/db/index.ts';
import { createLogger } from '../../src/log.ts';
import { createStateDir } from '../helpers/postgres.ts';

const logger = createLogger('silent');

test('concurrent parameterised queries and transactions do not interleave', async () => {
  const state = await createStateDir();
  const database = await openDatabase(loadConfig({ STATE_DIR: state.path, DATABASE_POOL_MAX: '8' }), logger);
  try {
    const { pool } = database;
    await pool.query('CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)');
    let wrong = 0;
    await Promise.all(
      Array.from({ length: 8 }, async (_, worker) => {
        for (let i = 0; i < 50; i++) {
          const n = worker * 1000 + i;
          const { rows } = await pool.query('SELECT $1::int AS n, $2::text AS s', [n, `v${n}`]);
          if (rows[0].n !== n || rows[0].s !== `v${n}`) wrong++;
          if (i % 10 === 0) {
            const client = await pool.connect();
            try {
              await client.query('BEGIN');
              await client.query('INSERT INTO counters VALUES ($1, 1)', [n]);
              // Another connection's work must not see or join this transaction.
              const seen = await client.query('SELECT count(*)::int AS c FROM counters WHERE id = $1', [n]);
              if (seen.rows[0].c !== 1) wrong++;
              await client.query(i % 20 === 0 ? 'ROLLBACK' : 'COMMIT');
            } finally {
              client.release();
            }
          }
        }
      }),
    );
    assert.equal(wrong, 0);
    const { rows } = await pool.query('SELECT count(*)::int AS c FROM counters');
    assert.equal(rows[0].c, 8 * 2, 'only the committed half of the transactions remain');
  } finally {
    await database.close();
    await state.cleanup();
  }
});

test('a connection that drops mid-transaction does not leave the backend in its transaction', async () => {
  const state = await createStateDir();
  const database = await openDatabase(loadConfig({ STATE_DIR: state.path }), logger);
  try {
    const client = await database.pool.connect();
    await client.query('CREATE TABLE t (id int)');
    await client.query('BEGIN');
    await client.query('INSERT INTO t VALUES (1)');
    client.release(new Error('simulate a dropped connection'));
    const { rows } = await database.pool.query('SELECT count(*)::int AS c FROM t');
    assert.equal(rows[0].c, 0);
  } finally {
    await database.close();
    await state.cleanup();
  }
});

test('data written to the embedded database survives a restart', async () => {
  const state = await createStateDir();
  const config = loadConfig({ STATE_DIR: state.path });
  try {
    const first = await openDatabase(config, logger);
    await first.pool.query("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')");
    await first.close();
    const second = await openDatabase(config, logger);
    const { rows } = await second.pool.query('SELECT body FROM notes');
    await second.close();
    assert.deepEqual(rows, [{ body: 'kept' }]);
  } finally {
    await state.cleanup();
  }
});
