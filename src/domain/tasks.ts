/**
 * A user's tasks. Every query is scoped by owner: another user's task simply does not
 * exist for you. Lists are newest first with keyset pagination, which stays fast on
 * page 1,000 and never skips or repeats a task when new ones arrive between pages.
 */
import { ShipError } from '../errors.ts';
import { prepared, type Queryable } from '../db/pool.ts';
import { firstRow } from '../db/rows.ts';
import { signInFrom, signInWith, type SignIn } from './sessions.ts';

export interface Task {
  readonly id: string;
  readonly title: string;
  readonly notes: string | null;
  readonly done: boolean;
  readonly dueDate: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface TaskPage {
  readonly tasks: Task[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  readonly nextCursor: string | null;
}

export interface NewTask {
  readonly title: string;
  readonly notes?: string | null | undefined;
  readonly done?: boolean | undefined;
  readonly dueDate?: string | null | undefined;
}

export type TaskChanges = Partial<NewTask>;

interface TaskRow {
  id: string;
  title: string;
  notes: string | null;
  done: boolean;
  due_date: string | null;
  created_at: Date;
  updated_at: Date;
  created_us: string;
}

// created_us: microseconds since the epoch, exact, so the cursor loses nothing that JS Dates would.
const COLUMNS = `id, title, notes, done, to_char(due_date, 'YYYY-MM-DD') AS due_date, created_at, updated_at,
  ((extract(epoch FROM created_at) * 1000000)::bigint)::text AS created_us`;

const toTask = (row: TaskRow): Task => ({
  id: row.id,
  title: row.title,
  notes: row.notes,
  done: row.done,
  dueDate: row.due_date,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/** The first page of `owner`'s tasks (an SQL expression), newest first, `limit` rows (a parameter); `also`: a further condition. */
const firstPageSql = (owner: string, limit: string, also = '') =>
  `SELECT ${COLUMNS} FROM tasks WHERE user_id = ${owner}${also} ORDER BY created_at DESC, id DESC LIMIT ${limit}::int`;

/** A new task for `owner` (an SQL expression), its fields from four parameters from `$first` on (`newTaskValues`); `from` feeds `owner`. */
const insertTaskSql = (owner: string, first: number, from = '') =>
  `INSERT INTO tasks (user_id, title, notes, done, due_date)
   SELECT ${owner}, $${first}::text, $${first + 1}::text, $${first + 2}::boolean, $${first + 3}::date${from}
   RETURNING ${COLUMNS}`;

const newTaskValues = (input: NewTask) => [input.title, input.notes ?? null, input.done ?? false, input.dueDate ?? null];

type NullableTaskRow = { [K in keyof TaskRow]: TaskRow[K] | null };

/** Rows of a LEFT JOIN to tasks: no task leaves one row of nulls. */
const taskRowsOf = <Row extends NullableTaskRow>(rows: readonly Row[]) => rows.filter((row): row is Row & TaskRow => row.id !== null);

export async function listTasks(db: Queryable, userId: string, options: { limit: number; cursor?: string | undefined }): Promise<TaskPage> {
  const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
  const { rows } = await db.query<TaskRow>(
    prepared(
      db,
      'shipshape_list_tasks',
      `SELECT ${COLUMNS} FROM tasks
        WHERE user_id = $1::uuid
          AND ($2::bigint IS NULL OR (created_at, id) < (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT $4::int`,
      [userId, after?.createdUs ?? null, after?.id ?? null, options.limit + 1],
    ),
  );
  return toPage(rows, options.limit);
}

/**
 * The first page and the version of the list it shows (`task_list_versions`, see
 * task-list-cache.ts; null before the user's tasks were first written), read by one statement
 * and so from one snapshot: the page is exactly the list at that version.
 */
export async function listFirstPageVersioned(db: Queryable, userId: string, limit: number): Promise<{ page: TaskPage; version: string | null }> {
  const read = await listFirstPageUnlessHeld(db, userId, limit, undefined);
  return { page: read.page ?? toPage([], limit), version: read.listVersion };
}

/**
 * `listFirstPageVersioned` for a reader that may hold a page already: while the list is still
 * at `unlessVersion` (the version of that page) the page is not read (`page` undefined), and
 * the statement costs one primary-key lookup. Either way one round trip.
 */
export async function listFirstPageUnlessHeld(
  db: Queryable,
  userId: string,
  limit: number,
  unlessVersion: string | null | undefined,
): Promise<{ page: TaskPage | undefined; listVersion: string | null }> {
  const { rows } = await db.query<NullableTaskRow & { list_version: string | null; page_read: boolean }>(
    prepared(
      db,
      'shipshape_list_tasks_unless_held',
      `SELECT v.list_version, v.page_read, t.* FROM (
         SELECT list_version, NOT ($3::boolean AND list_version IS NOT DISTINCT FROM $4::text) AS page_read
           FROM (SELECT (SELECT version::text FROM task_list_versions WHERE user_id = $1::uuid) AS list_version) current
       ) v
         LEFT JOIN LATERAL (${firstPageSql('$1::uuid', '$2', ' AND v.page_read')}) t ON true`,
      [userId, limit + 1, unlessVersion !== undefined, unlessVersion ?? null],
    ),
  );
  // No tasks, or the page not read: one row, the version beside nulls.
  const first = rows[0];
  return { page: first?.page_read === false ? undefined : toPage(taskRowsOf(rows), limit), listVersion: first?.list_version ?? null };
}

/**
 * Signs in (sessions.ts) and reads the first page of the signed-in user's tasks, in one
 * statement: one round trip for an uncached GET /tasks where signing in first costs two. The
 * page and the list version come from the same snapshot, so the page is exactly the list at
 * `listVersion`. `unlessVersion`: the version of a page the caller already holds; while the list
 * is still at it, the page is not read (`page` undefined) and the statement costs what signing
 * in alone does. Undefined: no live session.
 */
export async function signInListingFirstPage(
  db: Queryable,
  tokenHash: Buffer,
  options: { limit: number; unlessVersion?: string | null | undefined },
): Promise<(SignIn & { page: TaskPage | undefined }) | undefined> {
  const rows = await signInWith<NullableTaskRow & { page_read: boolean }>(db, tokenHash, {
    name: 'shipshape_sign_in_list_tasks',
    then: `, wanted AS (
       SELECT signed_in.*, NOT ($4::boolean AND list_version IS NOT DISTINCT FROM $5::text) AS page_read FROM signed_in
     )
     SELECT w.*, t.* FROM wanted
       LEFT JOIN LATERAL (
         SELECT page.*, row_number() OVER (ORDER BY created_at DESC, id DESC) AS n
           FROM (${firstPageSql('wanted.user_id', '$3', ' AND wanted.page_read')}) page
       ) t ON true
       -- The sign-in columns on the first row only: not encoded, sent and parsed again for every task.
       LEFT JOIN wanted w ON t.n IS NULL OR t.n = 1
     ORDER BY t.n`,
    values: [options.limit + 1, options.unlessVersion !== undefined, options.unlessVersion ?? null],
  });
  const first = rows[0];
  if (!first) return undefined;
  return { ...signInFrom(first), page: first.page_read ? toPage(taskRowsOf(rows), options.limit) : undefined };
}

/**
 * Signs in (sessions.ts) and creates a task for the signed-in user, in one statement: one round
 * trip for an uncached POST /tasks. Nothing is written for an expired or revoked session
 * (undefined).
 */
export async function signInCreatingTask(db: Queryable, tokenHash: Buffer, input: NewTask): Promise<(SignIn & { task: Task }) | undefined> {
  const [row] = await signInWith<TaskRow>(db, tokenHash, {
    name: 'shipshape_sign_in_create_task',
    then: `, created AS (${insertTaskSql('user_id', 3, ' FROM signed_in')})
     SELECT signed_in.*, created.* FROM signed_in, created`,
    values: newTaskValues(input),
  });
  return row && { ...signInFrom(row), task: toTask(row) };
}

/** `limit + 1` rows asked for: the extra one only says there is a next page. */
function toPage(rows: TaskRow[], limit: number): TaskPage {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    tasks: page.map(toTask),
    nextCursor: rows.length > limit && last ? encodeCursor(last.created_us, last.id) : null,
  };
}

export async function getTask(db: Queryable, userId: string, taskId: string): Promise<Task> {
  const { rows } = await db.query<TaskRow>(`SELECT ${COLUMNS} FROM tasks WHERE id = $1::uuid AND user_id = $2::uuid`, [taskId, userId]);
  return toTask(rows[0] ?? notFound(taskId));
}

export async function createTask(db: Queryable, userId: string, input: NewTask): Promise<Task> {
  const { rows } = await db.query<TaskRow>(prepared(db, 'shipshape_create_task_v2', insertTaskSql('$1::uuid', 2), [userId, ...newTaskValues(input)]));
  return toTask(firstRow(rows));
}

export async function updateTask(db: Queryable, userId: string, taskId: string, changes: TaskChanges): Promise<Task> {
  // Each column is either set from its parameter or left alone; no SQL is assembled from input.
  const { rows } = await db.query<TaskRow>(
    `UPDATE tasks SET
        title    = CASE WHEN $3::boolean THEN $4::text ELSE title END,
        notes    = CASE WHEN $5::boolean THEN $6::text ELSE notes END,
        done     = CASE WHEN $7::boolean THEN $8::boolean ELSE done END,
        due_date = CASE WHEN $9::boolean THEN $10::date ELSE due_date END,
        updated_at = now()
      WHERE id = $1::uuid AND user_id = $2::uuid
      RETURNING ${COLUMNS}`,
    [
      taskId,
      userId,
      changes.title !== undefined,
      changes.title ?? null,
      changes.notes !== undefined,
      changes.notes ?? null,
      changes.done !== undefined,
      changes.done ?? null,
      changes.dueDate !== undefined,
      changes.dueDate ?? null,
    ],
  );
  return toTask(rows[0] ?? notFound(taskId));
}

export async function deleteTask(db: Queryable, userId: string, taskId: string): Promise<void> {
  const { rowCount } = await db.query('DELETE FROM tasks WHERE id = $1::uuid AND user_id = $2::uuid', [taskId, userId]);
  if (!rowCount) notFound(taskId);
}

function notFound(taskId: string): never {
  throw new ShipError('SHIP_ERR_NOT_FOUND', `Task ${taskId} does not exist (or belongs to someone else).`);
}

function encodeCursor(createdUs: string, id: string): string {
  return Buffer.from(`${createdUs}.${id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { createdUs: string; id: string } {
  const match = /^(\d{1,16})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      'cursor: not a cursor this API issued. Use the nextCursor value from the previous page, or omit it for the first page.',
    );
  }
  return { createdUs: match[1]!, id: match[2]! };
}
