/**
 * GDPR erasure: every row that belongs to a user, in every table that references the users
 * table (directly or through other tables), deleted in one transaction, children first,
 * verified to be gone before the commit, and recorded in the erasure ledger.
 */
import type { ObjectStore } from '../adapters/storage/index.ts';
import { ShipError } from '../errors.ts';
import { quoteIdent, quoteQualified, withTransaction, type Pool, type PoolClient, type Queryable } from '../db/pool.ts';
import { recordAudit } from './audit.ts';
import { clearLoginFailures } from './login-throttle.ts';
import { appendErasureRecord, ledgerEmailHash, pullLedgerFromMirror, type ErasureRecord } from './erasure-ledger.ts';
import { mapUserData, userRowsCondition, type UserDataMap, type UserDataTable, type UsersTableRef } from './user-data-map.ts';

/** Deletion passes before giving up on rows that keep coming back. */
const MAX_PASSES = 5;

/** Shipshape's own users table; procedures pass the app profile's instead. */
export const defaultUsersTable: UsersTableRef = { table: 'users', idColumn: 'id', emailColumn: 'email' };

export interface ErasureInput {
  readonly userId: string;
  readonly operator: string;
  readonly ticket: string | null;
  readonly reason: string;
  readonly exportKey?: string | null | undefined;
  /**
   * Runs inside the transaction after the account row is locked and before anything is deleted;
   * throwing aborts the erasure with nothing changed. Used to re-check prerequisites that could
   * have changed since they were checked (a cancelled request).
   */
  readonly recheck?: ((tx: PoolClient) => Promise<void>) | undefined;
}

export interface ErasureOutcome {
  readonly record: ErasureRecord;
  /** The address the account had, for the confirmation email; never stored. */
  readonly email: string;
}

interface LockedUser {
  id: string;
  email: string;
}

/** Erases one account; throws (and changes nothing) if anything of it would remain. */
export async function eraseUser(pool: Pool, usersTable: UsersTableRef, input: ErasureInput): Promise<ErasureOutcome> {
  return withTransaction(pool, async (tx) => {
    const user = await lockUser(tx, usersTable, input.userId);
    if (!user)
      throw new ShipError(
        'SHIP_ERR_NOT_FOUND',
        `No account has id ${input.userId}; it may already be erased. Check \`shipshape audit\` and the erasure ledger.`,
      );
    await input.recheck?.(tx);
    const map = await mapUserData(tx, usersTable);
    const tables = await deleteUserRows(tx, map, user.id);
    await clearLoginFailures(tx, user.email);
    const record = await appendErasureRecord(tx, {
      userId: user.id,
      emailHash: await ledgerEmailHash(tx, user.email),
      ticket: input.ticket,
      operator: input.operator,
      reason: input.reason,
      tables,
      exportKey: input.exportKey ?? null,
    });
    await recordAudit(tx, {
      actor: `operator:${input.operator}`,
      action: 'gdpr.erasure.completed',
      details: { ledgerId: record.id, ticket: input.ticket, reason: input.reason, rows: tables },
    });
    return { record, email: user.email };
  });
}

/** What still references the account: the users row and every row matching it by id. Empty when erased. */
export async function remainingUserRows(db: Queryable, usersTable: UsersTableRef, userId: string): Promise<Record<string, number>> {
  const map = await mapUserData(db, usersTable);
  const remaining: Record<string, number> = {};
  const users = map.tables[0]!;
  const idType = users.columns.find((column) => column.name === usersTable.idColumn)?.type ?? 'text';
  const count = async (table: string, sql: string) => {
    const { rows } = await db.query<{ n: number }>(sql, [userId]);
    if ((rows[0]?.n ?? 0) > 0) remaining[table] = (remaining[table] ?? 0) + (rows[0]?.n ?? 0);
  };
  await count(users.qualifiedName, `SELECT count(*)::int AS n FROM ${users.sqlName} WHERE ${quoteIdent(usersTable.idColumn)} = $1::${idType}`);
  // Once the users row is gone only direct references by id can still be found by value; deeper
  // rows would be orphans, which their foreign keys rule out.
  for (const table of map.tables) {
    for (const edge of table.edges) {
      if (edge.parentOid !== users.oid || edge.columns.length !== 1 || edge.parentColumns[0] !== usersTable.idColumn) continue;
      await count(table.qualifiedName, `SELECT count(*)::int AS n FROM ${table.sqlName} WHERE ${quoteIdent(edge.columns[0]!)} = $1::${idType}`);
    }
  }
  return remaining;
}

export interface ReapplyOptions {
  readonly usersTable?: UsersTableRef;
  /**
   * Legal storage, where the ledger's mirror lives. Pass it after a restore: the restored
   * database only knows erasures made before its backup; the mirror knows the rest.
   */
  readonly legalStore?: ObjectStore | undefined;
  /** Named in the audit trail. */
  readonly operator?: string;
}

/**
 * Erases again every account the erasure ledger lists that exists in the database — what a
 * restore from a backup taken before an erasure brings back. Idempotent.
 */
export async function reapplyErasureLedger(
  pool: Pool,
  options: ReapplyOptions = {},
): Promise<{ erased: number; ledgerRecords: number; mergedFromMirror: number }> {
  const usersTable = options.usersTable ?? defaultUsersTable;
  const { rows: present } = await pool.query<{ ledger: string | null }>("SELECT to_regclass('erasure_ledger')::text AS ledger");
  if (present[0]?.ledger == null) {
    throw new ShipError(
      'SHIP_ERR_MIGRATIONS_PENDING',
      'The restored database has no erasure_ledger table yet. Run `shipshape db migrate up`, then re-apply the erasure ledger.',
    );
  }
  const mergedFromMirror = options.legalStore ? await pullLedgerFromMirror(pool, options.legalStore) : 0;
  const { rows: total } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM erasure_ledger');
  const { rows: resurrected } = await pool.query<{ ledger_id: string; user_id: string }>(
    `SELECT l.id AS ledger_id, l.user_id::text AS user_id FROM erasure_ledger l
       JOIN ${quoteQualified(usersTable.table)} u ON u.${quoteIdent(usersTable.idColumn)}::text = l.user_id::text
      ORDER BY l.erased_at`,
  );
  for (const row of resurrected) {
    await withTransaction(pool, async (tx) => {
      if (!(await lockUser(tx, usersTable, row.user_id))) return;
      const tables = await deleteUserRows(tx, await mapUserData(tx, usersTable), row.user_id);
      await recordAudit(tx, {
        actor: `operator:${options.operator ?? 'restore'}`,
        action: 'gdpr.erasure.reapplied',
        details: { ledgerId: row.ledger_id, rows: tables },
      });
    });
  }
  return { erased: resurrected.length, ledgerRecords: total[0]?.n ?? 0, mergedFromMirror };
}

async function lockUser(tx: Queryable, usersTable: UsersTableRef, userId: string): Promise<LockedUser | undefined> {
  const { rows: types } = await tx.query<{ type: string }>(
    'SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = to_regclass($1::text) AND attname = $2::text AND NOT attisdropped',
    [quoteQualified(usersTable.table), usersTable.idColumn],
  );
  const idType = types[0]?.type;
  if (idType === undefined)
    throw new ShipError('SHIP_ERR_CONFIG', `The users table "${usersTable.table}" has no column "${usersTable.idColumn}". Check the app profile.`);
  // FOR UPDATE also holds back inserts that reference the row (they take FOR KEY SHARE) until we commit.
  const { rows } = await tx.query<LockedUser>(
    `SELECT ${quoteIdent(usersTable.idColumn)}::text AS id, ${quoteIdent(usersTable.emailColumn)}::text AS email
       FROM ${quoteQualified(usersTable.table)} WHERE ${quoteIdent(usersTable.idColumn)} = $1::${idType} FOR UPDATE`,
    [userId],
  );
  return rows[0];
}

/**
 * Deletes the user's rows table by table, children before parents, then checks inside the
 * transaction that none is left. Returns the rows deleted per table.
 */
async function deleteUserRows(tx: PoolClient, map: UserDataMap, userId: string): Promise<Record<string, number>> {
  const deleted: Record<string, number> = {};
  const remove = async (table: UserDataTable): Promise<number> => {
    const { rowCount } = await tx.query(`DELETE FROM ${table.sqlName} AS t WHERE ${userRowsCondition(map, table, 't')}`, [userId]);
    deleted[table.qualifiedName] = (deleted[table.qualifiedName] ?? 0) + (rowCount ?? 0);
    return rowCount ?? 0;
  };
  const childrenFirst = [...map.tables].filter((table) => table.depth > 0).sort((a, b) => b.depth - a.depth);
  // Triggers may write new rows for the user while their other rows go (a per-user version row
  // bumped by deleting tasks, an audit row), so passes repeat until one deletes nothing.
  for (let pass = 0; pass < MAX_PASSES; pass += 1) {
    let removed = 0;
    for (const table of childrenFirst) removed += await remove(table);
    if (removed === 0) break;
  }
  // The users row goes last, once nothing matches its children's conditions any more.
  await assertNoneLeft(tx, map, userId);
  await remove(map.tables[0]!);
  const remaining = await remainingUserRows(tx, map.usersTable, userId);
  if (Object.keys(remaining).length > 0) {
    throw new ShipError(
      'SHIP_ERR_STEP_FAILED',
      `Erasure rolled back: rows still reference the account after deleting (${describeCounts(remaining)}). Nothing was erased.`,
      {
        details: { remaining },
      },
    );
  }
  return deleted;
}

async function assertNoneLeft(tx: Queryable, map: UserDataMap, userId: string): Promise<void> {
  const left: Record<string, number> = {};
  for (const table of map.tables) {
    if (table.depth === 0) continue;
    const { rows } = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table.sqlName} AS t WHERE ${userRowsCondition(map, table, 't')}`, [
      userId,
    ]);
    if ((rows[0]?.n ?? 0) > 0) left[table.qualifiedName] = rows[0]?.n ?? 0;
  }
  if (Object.keys(left).length > 0) {
    throw new ShipError('SHIP_ERR_STEP_FAILED', `Erasure rolled back: rows were left behind in ${describeCounts(left)}. Nothing was erased.`, {
      details: { left },
    });
  }
}

function describeCounts(counts: Record<string, number>): string {
  return Object.entries(counts)
    .map(([table, n]) => `${table}: ${n}`)
    .join(', ');
}
