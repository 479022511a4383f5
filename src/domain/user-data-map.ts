/**
 * Where a user's data lives: the users table, every table that references it through a
 * foreign key, and the tables that reference those, recursively — read from the catalog
 * (pg_constraint) at the moment of use, so a table added next year is not forgotten.
 * Export and erasure both work from this map.
 */
import { ShipError } from '../errors.ts';
import { quoteIdent, quoteQualified, type Queryable } from '../db/pool.ts';

/** Where accounts live (the app profile's `users`). */
export interface UsersTableRef {
  /** Optionally schema-qualified, e.g. `auth.users`. */
  readonly table: string;
  readonly idColumn: string;
  readonly emailColumn: string;
}

export interface ReferenceEdge {
  readonly constraint: string;
  /** Referencing columns in the child table, in key order. */
  readonly columns: readonly string[];
  readonly parentOid: number;
  /** Referenced columns in the parent table, in the same order. */
  readonly parentColumns: readonly string[];
}

export interface ColumnInfo {
  readonly name: string;
  /** As `format_type` prints it, usable in a cast: `uuid`, `character varying(200)`. */
  readonly type: string;
}

export interface UserDataTable {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** `schema.name`, unquoted, for reports and file names. */
  readonly qualifiedName: string;
  /** Quoted for SQL. */
  readonly sqlName: string;
  /** 0 for the users table; otherwise one more than the deepest table it references (so children sort after parents). */
  readonly depth: number;
  /** Foreign keys into tables nearer the users table; a row is the user's when any of them matches. */
  readonly edges: readonly ReferenceEdge[];
  readonly columns: readonly ColumnInfo[];
  readonly primaryKey: readonly string[];
}

export interface UserDataMap {
  readonly usersTable: UsersTableRef;
  /** The users table first, then the others by depth (nearest first). */
  readonly tables: readonly UserDataTable[];
  /** Foreign keys among these tables that are not followed (cycles, keys pointing back into users). */
  readonly notFollowed: readonly string[];
}

/** Deeper chains than this are almost certainly a catalog we misread; stop rather than loop. */
const MAX_DEPTH = 16;

interface ForeignKeyRow {
  name: string;
  child: number;
  parent: number;
  columns: string[];
  parent_columns: string[];
}

interface TableRow {
  oid: number;
  schema: string;
  name: string;
  columns: Array<{ name: string; type: string }>;
  primary_key: string[];
}

/** Reads the catalog and returns every table holding rows that belong to a user. */
export async function mapUserData(db: Queryable, usersTable: UsersTableRef): Promise<UserDataMap> {
  const { rows: found } = await db.query<{ oid: number | null }>('SELECT to_regclass($1::text)::oid::int AS oid', [quoteQualified(usersTable.table)]);
  const usersOid = found[0]?.oid ?? null;
  if (usersOid === null) {
    throw new ShipError(
      'SHIP_ERR_CONFIG',
      `The users table "${usersTable.table}" does not exist in this database. Check the app profile, or run \`shipshape db migrate up\`.`,
    );
  }
  // conparentid = 0 keeps the constraint declared on a partitioned table and drops its per-partition clones.
  const { rows: keys } = await db.query<ForeignKeyRow>(
    `SELECT c.conname::text AS name, c.conrelid::int AS child, c.confrelid::int AS parent,
            ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, i)
                    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.i) AS columns,
            ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, i)
                    JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.i) AS parent_columns
       FROM pg_constraint c
      WHERE c.contype = 'f' AND c.conparentid = 0
      ORDER BY c.conrelid, c.conname`,
  );

  const depth = new Map<number, number>([[usersOid, 0]]);
  for (let level = 0, frontier = [usersOid]; frontier.length > 0; level += 1) {
    if (level >= MAX_DEPTH) {
      throw new ShipError(
        'SHIP_ERR_INTERNAL',
        `Foreign keys into "${usersTable.table}" chain more than ${MAX_DEPTH} tables deep; refusing to guess which rows are the user's.`,
      );
    }
    const next: number[] = [];
    for (const key of keys) {
      if (frontier.includes(key.parent) && !depth.has(key.child)) {
        depth.set(key.child, level + 1);
        next.push(key.child);
      }
    }
    frontier = next;
  }

  const { rows: tableRows } = await db.query<TableRow>(
    `SELECT c.oid::int AS oid, n.nspname::text AS schema, c.relname::text AS name,
            (SELECT coalesce(json_agg(json_build_object('name', a.attname::text, 'type', format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum), '[]'::json)
               FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
            coalesce((SELECT array_agg(a.attname::text ORDER BY k.i)
                        FROM pg_index x CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, i)
                        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                       WHERE x.indrelid = c.oid AND x.indisprimary), '{}') AS primary_key
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = ANY($1::oid[])`,
    [[...depth.keys()]],
  );

  // Follow every key between two of these tables except those into the users table's own rows
  // from itself and those that would close a cycle: tree keys (towards the users table) first,
  // then the others only if they keep the graph acyclic, so conditions and ordering terminate.
  const notFollowed: string[] = [];
  const followed = new Map<number, ForeignKeyRow[]>();
  const reaches = (from: number, to: number, seen = new Set<number>()): boolean => {
    if (from === to) return true;
    if (seen.has(from)) return false;
    seen.add(from);
    return (followed.get(from) ?? []).some((key) => reaches(key.parent, to, seen));
  };
  const candidates = keys
    .filter((key) => depth.has(key.child) && depth.has(key.parent))
    .sort((a, b) => Number((depth.get(a.parent) ?? 0) >= (depth.get(a.child) ?? 0)) - Number((depth.get(b.parent) ?? 0) >= (depth.get(b.child) ?? 0)));
  const describeKey = (key: ForeignKeyRow) => {
    const child = tableRows.find((row) => row.oid === key.child);
    return `${child ? `${child.schema}.${child.name}` : key.child}.${key.name}`;
  };
  for (const key of candidates) {
    if (key.child === usersOid || key.child === key.parent || reaches(key.parent, key.child)) {
      notFollowed.push(describeKey(key));
      continue;
    }
    followed.set(key.child, [...(followed.get(key.child) ?? []), key]);
  }
  // Level: the longest chain of followed keys down to the users table. Deleting the highest
  // level first removes every referencing row before the row it references.
  const level = new Map<number, number>([[usersOid, 0]]);
  const levelOf = (oid: number): number => {
    const known = level.get(oid);
    if (known !== undefined) return known;
    const computed = 1 + Math.max(...(followed.get(oid) ?? []).map((key) => levelOf(key.parent)));
    level.set(oid, computed);
    return computed;
  };

  const tables = tableRows.map(
    (row): UserDataTable => ({
      oid: row.oid,
      schema: row.schema,
      name: row.name,
      qualifiedName: `${row.schema}.${row.name}`,
      sqlName: `${quoteIdent(row.schema)}.${quoteIdent(row.name)}`,
      depth: levelOf(row.oid),
      edges: (followed.get(row.oid) ?? []).map((key) => ({
        constraint: key.name,
        columns: key.columns,
        parentOid: key.parent,
        parentColumns: key.parent_columns,
      })),
      columns: row.columns,
      primaryKey: row.primary_key,
    }),
  );
  tables.sort((a, b) => a.depth - b.depth || a.qualifiedName.localeCompare(b.qualifiedName));
  return { usersTable, tables, notFollowed };
}

/**
 * The SQL condition that selects the user's rows of `table`, aliased `alias`, with `$1` the
 * user's id: the users row itself, or rows whose foreign key matches a row of a parent table
 * that is the user's (recursively).
 */
export function userRowsCondition(map: UserDataMap, table: UserDataTable, alias: string): string {
  if (table.depth === 0) {
    const idType = table.columns.find((column) => column.name === map.usersTable.idColumn)?.type;
    if (idType === undefined) {
      throw new ShipError('SHIP_ERR_CONFIG', `The users table has no column "${map.usersTable.idColumn}". Check the app profile.`);
    }
    return `${alias}.${quoteIdent(map.usersTable.idColumn)} = $1::${idType}`;
  }
  const byOid = new Map(map.tables.map((candidate) => [candidate.oid, candidate]));
  const conditions = table.edges.map((edge, index) => {
    const parent = byOid.get(edge.parentOid);
    if (!parent) throw new ShipError('SHIP_ERR_INTERNAL', `Table ${edge.parentOid} vanished from the user data map.`);
    const parentAlias = `${alias}_${index}`;
    const mine = tuple(edge.columns.map((column) => `${alias}.${quoteIdent(column)}`));
    const theirs = edge.parentColumns.map((column) => `${parentAlias}.${quoteIdent(column)}`).join(', ');
    return `${mine} IN (SELECT ${theirs} FROM ${parent.sqlName} AS ${parentAlias} WHERE ${userRowsCondition(map, parent, parentAlias)})`;
  });
  return conditions.length === 1 ? conditions[0]! : `(${conditions.join(' OR ')})`;
}

/** Columns whose values are secrets, never exported. */
export function isSecretColumn(name: string): boolean {
  return /password|secret|token/i.test(name);
}

function tuple(parts: string[]): string {
  return parts.length === 1 ? parts[0]! : `(${parts.join(', ')})`;
}
