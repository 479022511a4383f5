/**
 * The deterministic data set: N users, each with M tasks and one live session.
 *
 * Loaded with multi-row INSERTs (`unnest` of arrays, tens of thousands of rows per
 * statement) rather than through the API, which would measure argon2 and the rate
 * limiter instead of the database. One argon2 hash is computed and shared by every user
 * (they all have the password BENCH_PASSWORD).
 *
 * User ids and session tokens are derived from the user's number so that pgbench, which
 * can only draw random integers, can address the same rows the load generator does:
 * see `userIdSql` and `tokenHashSql`.
 */
import type { Pool, PoolClient } from 'pg';
import { hashPassword, hashToken } from '../../src/domain/secrets.ts';
import { Prng } from './prng.ts';

export interface SeedSize {
  readonly users: number;
  readonly tasksPerUser: number;
  /** Users numbered after the others (users + 1, …), each with `tasksPerExtraUser` tasks: erasure's heavy users, the API mix's own. */
  readonly extraUsers?: number;
  readonly tasksPerExtraUser?: number;
}

export interface SeededData extends SeedSize {
  /** Bearer token of user n at index n - 1. */
  readonly tokens: readonly string[];
  readonly loadSeconds: number;
}

export const BENCH_PASSWORD = 'bench-password-123';
const SEED = 20_260_302;
/** Fixed, so the data set is identical whatever day it is generated. */
const NEWEST_TASK = Date.parse('2026-03-01T12:00:00Z');
const YEAR_MS = 365 * 24 * 3600 * 1000;
const ROWS_PER_STATEMENT = 20_000;

/** User n's id: `00000000-0000-4000-8000-` then n in 12 hex digits. */
export function userId(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

/** The same id computed in SQL from an integer expression (a pgbench variable). */
export function userIdSql(integer: string): string {
  return `('00000000-0000-4000-8000-' || lpad(to_hex(${integer}), 12, '0'))::uuid`;
}

/** User n's bearer token. Predictable, which is fine in a database that lives for one benchmark. */
export function sessionToken(n: number): string {
  return `bench-session-${n}`;
}

/** sha256 of user n's token computed in SQL, as `hashToken` does in JavaScript. */
export function tokenHashSql(integer: string): string {
  return `sha256(convert_to('bench-session-'::text || ${integer}, 'UTF8'))`;
}

const verbs = ['Buy', 'Call', 'Email', 'Fix', 'Plan', 'Book', 'Pay', 'Review', 'Clean', 'Return', 'Order', 'Write'];
const nouns = [
  'milk',
  'the dentist',
  'mum',
  'the bike',
  'holiday',
  'tickets',
  'rent',
  'the report',
  'the garage',
  'library books',
  'printer ink',
  'thank-you notes',
];
const notes = [
  'Before Friday if possible.',
  'Ask about the weekend rate and whether parking is included.',
  'Receipt is in the blue folder.',
  'Check the list on the fridge first; half of it may already be done.',
];

export async function seed(pool: Pool, size: SeedSize): Promise<SeededData> {
  const started = performance.now();
  const passwordHash = await hashPassword(BENCH_PASSWORD);
  const prng = new Prng(SEED);

  const everyone = size.users + (size.extraUsers ?? 0);
  const taskCount = (n: number) => (n <= size.users ? size.tasksPerUser : (size.tasksPerExtraUser ?? size.tasksPerUser));
  const userIds: string[] = [];
  const emails: string[] = [];
  const names: Array<string | null> = [];
  const created: string[] = [];
  for (let n = 1; n <= everyone; n += 1) {
    userIds.push(userId(n));
    emails.push(`user${n}@bench.shipshape.test`);
    names.push(prng.chance(0.7) ? `Bench User ${n}` : null);
    created.push(new Date(NEWEST_TASK - YEAR_MS - (everyone - n) * 60_000).toISOString());
  }
  await pool.query(
    `INSERT INTO users (id, email, password_hash, display_name, created_at, updated_at)
     SELECT id, email, $3::text, display_name, created_at, created_at
       FROM unnest($1::uuid[], $2::text[], $4::text[], $5::timestamptz[]) AS u(id, email, display_name, created_at)`,
    [userIds, emails, passwordHash, names, created],
  );

  const client = await pool.connect();
  try {
    const restoreIndexes = await setUpBulkLoad(client);
    // Generating the next batch overlaps with the database inserting the previous one.
    let inFlight: Promise<unknown> = Promise.resolve();
    for (const batch of taskBatches(prng, everyone, taskCount)) {
      await inFlight;
      inFlight = client.query(
        `INSERT INTO tasks (id, user_id, title, notes, done, due_date, created_at, updated_at)
         SELECT id, user_id, title, notes, done, due_date, created_at, created_at
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::boolean[], $6::date[], $7::timestamptz[])
             AS t(id, user_id, title, notes, done, due_date, created_at)`,
        [batch.ids, batch.userIds, batch.titles, batch.notes, batch.done, batch.dueDates, batch.created],
      );
    }
    await inFlight;
    await restoreIndexes();
  } finally {
    client.release();
  }

  const tokens = Array.from({ length: everyone }, (_, index) => sessionToken(index + 1));
  await pool.query(
    `INSERT INTO sessions (user_id, token_hash, expires_at, user_agent)
     SELECT user_id, token_hash, timestamptz '2099-01-01', 'shipshape-bench'
       FROM unnest($1::uuid[], $2::bytea[]) AS s(user_id, token_hash)`,
    [userIds, tokens.map((token) => hashToken(token))],
  );
  // Fresh statistics and visibility map, as a database that has been running a while would have.
  await pool.query('VACUUM ANALYZE users, tasks, sessions');
  return { ...size, tokens, loadSeconds: (performance.now() - started) / 1000 };
}

/**
 * Halves the load time: secondary indexes on tasks are dropped and rebuilt afterwards
 * (one sort instead of a million random insertions), and, when we are superuser, the
 * foreign-key triggers are skipped for this session; the generator only writes tasks
 * for users it has just inserted. The indexes are recreated from their own definitions,
 * so indexes added by later migrations come back too.
 */
async function setUpBulkLoad(client: PoolClient): Promise<() => Promise<void>> {
  const { rows: role } = await client.query<{ superuser: boolean }>('SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = current_user');
  if (role[0]?.superuser) await client.query('SET session_replication_role = replica');
  const { rows: indexes } = await client.query<{ name: string; definition: string }>(
    `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
       FROM pg_index i
      WHERE i.indrelid = 'tasks'::regclass
        AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)`,
  );
  for (const index of indexes) await client.query(`DROP INDEX ${index.name}`);
  return async () => {
    for (const index of indexes) await client.query(index.definition);
    await client.query('RESET session_replication_role');
  };
}

interface TaskBatch {
  readonly ids: string[];
  readonly userIds: string[];
  readonly titles: string[];
  readonly notes: Array<string | null>;
  readonly done: boolean[];
  readonly dueDates: Array<string | null>;
  readonly created: string[];
}

function emptyBatch(): TaskBatch {
  return { ids: [], userIds: [], titles: [], notes: [], done: [], dueDates: [], created: [] };
}

/** Every user's tasks in order, cut into statements of ROWS_PER_STATEMENT rows. */
function* taskBatches(prng: Prng, users: number, taskCount: (n: number) => number): Generator<TaskBatch> {
  let batch = emptyBatch();
  for (let n = 1; n <= users; n += 1) {
    const owner = userId(n);
    for (let k = taskCount(n); k > 0; k -= 1) {
      const createdAt = NEWEST_TASK - prng.int(YEAR_MS);
      batch.ids.push(prng.uuid());
      batch.userIds.push(owner);
      batch.titles.push(`${prng.pick(verbs)} ${prng.pick(nouns)}`);
      batch.notes.push(prng.chance(0.3) ? prng.pick(notes) : null);
      batch.done.push(prng.chance(0.3));
      batch.dueDates.push(prng.chance(0.4) ? new Date(createdAt + prng.int(60) * 86_400_000).toISOString().slice(0, 10) : null);
      batch.created.push(new Date(createdAt).toISOString());
      if (batch.ids.length === ROWS_PER_STATEMENT) {
        yield batch;
        batch = emptyBatch();
      }
    }
  }
  if (batch.ids.length > 0) yield batch;
}
