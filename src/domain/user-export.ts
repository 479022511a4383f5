/**
 * GDPR export (right of access): every row that belongs to a user, from every table the
 * foreign-key map finds, as one CSV per table in a tar.gz with a manifest (row counts and the
 * sha256 of each file), written to legal storage and verified by reading it back.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { z } from 'zod';
import type { ObjectStore } from '../adapters/storage/index.ts';
import { ShipError, describeError } from '../errors.ts';
import { quoteIdent, withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { firstRow } from '../db/rows.ts';
import { parseCsv, toCsv } from './csv.ts';
import { isSecretColumn, mapUserData, userRowsCondition, type UserDataTable, type UsersTableRef } from './user-data-map.ts';

export const EXPORT_FORMAT = 'shipshape-user-export/1';
export const EXPORT_PREFIX = 'exports/';
const MANIFEST_NAME = 'manifest.json';

export interface UserTableRows {
  /** `schema.table` */
  readonly table: string;
  readonly columns: readonly string[];
  /** Columns left out because they hold secrets (password and token hashes). */
  readonly omittedColumns: readonly string[];
  /** Values as PostgreSQL prints them (`::text`); null for NULL. */
  readonly rows: ReadonlyArray<ReadonlyArray<string | null>>;
}

export interface ManifestFile {
  readonly name: string;
  readonly table: string;
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly columns: readonly string[];
  readonly omittedColumns: readonly string[];
}

export interface ExportManifest {
  readonly format: typeof EXPORT_FORMAT;
  readonly userId: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly ticket: string | null;
  readonly files: readonly ManifestFile[];
}

const manifestSchema = z.object({
  format: z.literal(EXPORT_FORMAT),
  userId: z.string(),
  createdAt: z.string(),
  createdBy: z.string(),
  ticket: z.string().nullable(),
  files: z.array(
    z.object({
      name: z.string(),
      table: z.string(),
      rows: z.number().int().nonnegative(),
      bytes: z.number().int().nonnegative(),
      sha256: z.string(),
      columns: z.array(z.string()),
      omittedColumns: z.array(z.string()),
    }),
  ),
});

export interface StoredExport {
  readonly key: string;
  readonly location: string;
  /** Size and sha256 of the archive as stored. */
  readonly bytes: number;
  readonly sha256: string;
  readonly manifest: ExportManifest;
}

/**
 * Every table's rows of the user, read in one REPEATABLE READ snapshot so the tables agree
 * with each other. Tables without rows are included (empty), so the export shows where was looked.
 */
export async function readUserTables(pool: Pool, usersTable: UsersTableRef, userId: string): Promise<UserTableRows[]> {
  return readOnlySnapshot(pool, async (tx) => {
    const map = await mapUserData(tx, usersTable);
    const result: UserTableRows[] = [];
    for (const table of map.tables) {
      const columns = table.columns.filter((column) => !isSecretColumn(column.name)).map((column) => column.name);
      const select = columns.length === 0 ? 'NULL' : columns.map((column) => `t.${quoteIdent(column)}::text`).join(', ');
      const { rows } = await tx.query<Array<string | null>>({
        text: `SELECT ${select} FROM ${table.sqlName} AS t WHERE ${userRowsCondition(map, table, 't')} ${orderBy(table)}`,
        values: [userId],
        rowMode: 'array',
      });
      result.push({ table: table.qualifiedName, columns, omittedColumns: omitted(table), rows });
    }
    return result;
  });
}

/** The same data as JSON values, for `GET /me/export`. */
export async function readUserDataJson(pool: Pool, usersTable: UsersTableRef, userId: string): Promise<Record<string, Array<Record<string, unknown>>>> {
  return readOnlySnapshot(pool, async (tx) => {
    const map = await mapUserData(tx, usersTable);
    const result: Record<string, Array<Record<string, unknown>>> = {};
    for (const table of map.tables) {
      const { rows } = await tx.query<{ row: Record<string, unknown> }>(
        `SELECT to_jsonb(t) - $2::text[] AS row FROM ${table.sqlName} AS t WHERE ${userRowsCondition(map, table, 't')} ${orderBy(table)}`,
        [userId, omitted(table)],
      );
      result[table.qualifiedName] = rows.map((row) => row.row);
    }
    return result;
  });
}

/** Packs the tables into a tar.gz under `exports/<user id>/…` in the store; does not verify it. */
export async function writeExportArchive(
  store: ObjectStore,
  tables: readonly UserTableRows[],
  meta: { userId: string; createdBy: string; ticket: string | null; signal?: AbortSignal | undefined },
): Promise<StoredExport> {
  const createdAt = new Date();
  const names = new Set<string>();
  const files = tables.map((table) => {
    const content = Buffer.from(toCsv(table.columns, table.rows), 'utf8');
    const name = uniqueFileName(table.table, names);
    const file: ManifestFile = {
      name,
      table: table.table,
      rows: table.rows.length,
      bytes: content.length,
      sha256: sha256(content),
      columns: table.columns,
      omittedColumns: table.omittedColumns,
    };
    return { file, content };
  });
  const manifest: ExportManifest = {
    format: EXPORT_FORMAT,
    userId: meta.userId,
    createdAt: createdAt.toISOString(),
    createdBy: meta.createdBy,
    ticket: meta.ticket,
    files: files.map((f) => f.file),
  };
  // No email or name in the key: listings of legal storage should not be personal data.
  const key = `${EXPORT_PREFIX}${meta.userId}/${createdAt.toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}.tar.gz`;

  const { default: tar } = await import('tar-stream');
  const pack = tar.pack();
  const gzip = createGzip();
  pack.on('error', (error) => gzip.destroy(error));
  const put = store.put(key, pack.pipe(gzip), { contentType: 'application/gzip', ...(meta.signal ? { signal: meta.signal } : {}) });
  const entry = (name: string, content: Buffer) => pack.entry({ name, size: content.length, mtime: createdAt, mode: 0o644 }, content);
  entry(MANIFEST_NAME, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8'));
  for (const { file, content } of files) entry(file.name, content);
  pack.finalize();
  const stored = await put;
  return { key, location: store.location, bytes: stored.bytes, sha256: stored.sha256, manifest };
}

/**
 * Reads the archive back from the store and checks everything: the archive's size and sha256,
 * that its manifest belongs to `userId`, that every file the manifest lists is there with its
 * sha256, size, header and row count, and that there is nothing else. Returns the manifest.
 */
export async function verifyExportArchive(
  store: ObjectStore,
  key: string,
  expected: { sha256: string; bytes: number; userId: string },
): Promise<ExportManifest> {
  const fail = (problem: string) =>
    new ShipError(
      'SHIP_ERR_BACKUP_NOT_VERIFIED',
      `Export archive ${key} in ${store.location} failed verification: ${problem}. Run \`shipshape user export\` again.`,
      {
        details: { key },
      },
    );
  const entries = await readArchive(await store.get(key), fail);
  if (entries.sha256 !== expected.sha256 || entries.bytes !== expected.bytes) {
    throw fail(`stored copy is ${entries.bytes} bytes with sha256 ${entries.sha256}, expected ${expected.bytes} bytes with sha256 ${expected.sha256}`);
  }
  const manifestContent = entries.files.get(MANIFEST_NAME);
  if (!manifestContent) throw fail('it has no manifest.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(manifestContent.toString('utf8'));
  } catch {
    throw fail('manifest.json is not JSON');
  }
  const checked = manifestSchema.safeParse(parsed);
  if (!checked.success) throw fail(`manifest.json is malformed (${checked.error.issues[0]?.message ?? 'unknown problem'})`);
  const manifest: ExportManifest = checked.data;
  if (manifest.userId !== expected.userId) throw fail(`manifest.json is an export of user ${manifest.userId}, not ${expected.userId}`);
  const listed = new Set([MANIFEST_NAME]);
  for (const file of manifest.files) {
    listed.add(file.name);
    const content = entries.files.get(file.name);
    if (!content) throw fail(`${file.name} is listed in the manifest but missing`);
    if (content.length !== file.bytes || sha256(content) !== file.sha256) throw fail(`${file.name} does not match its sha256 in the manifest`);
    const records = parseCsv(content.toString('utf8'));
    if (JSON.stringify(records[0] ?? []) !== JSON.stringify(file.columns)) throw fail(`${file.name} has an unexpected header`);
    if (records.length - 1 !== file.rows) throw fail(`${file.name} holds ${records.length - 1} rows, the manifest says ${file.rows}`);
  }
  const extra = [...entries.files.keys()].filter((name) => !listed.has(name));
  if (extra.length > 0) throw fail(`it holds files the manifest does not list (${extra.join(', ')})`);
  return manifest;
}

export interface ExportRecord {
  readonly id: string;
  readonly userId: string;
  readonly key: string;
  readonly location: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly createdAt: Date;
  readonly verifiedAt: Date | null;
}

export async function recordExport(db: Queryable, stored: StoredExport, meta: { createdBy: string; ticket: string | null }): Promise<string> {
  const counts = Object.fromEntries(stored.manifest.files.map((file) => [file.table, file.rows]));
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO user_exports (user_id, storage_key, location, bytes, sha256, tables, ticket, created_by)
     VALUES ($1::uuid, $2::text, $3::text, $4::bigint, $5::text, $6::jsonb, $7::text, $8::text) RETURNING id`,
    [stored.manifest.userId, stored.key, stored.location, stored.bytes, stored.sha256, JSON.stringify(counts), meta.ticket, meta.createdBy],
  );
  return firstRow(rows).id;
}

export async function markExportVerified(db: Queryable, exportId: string): Promise<void> {
  await db.query('UPDATE user_exports SET verified_at = now() WHERE id = $1::uuid', [exportId]);
}

/** The newest verified export of the user, optionally only one made at or after `since`. */
export async function latestVerifiedExport(db: Queryable, userId: string, since?: Date): Promise<ExportRecord | undefined> {
  const { rows } = await db.query<{
    id: string;
    user_id: string;
    storage_key: string;
    location: string;
    bytes: number;
    sha256: string;
    created_at: Date;
    verified_at: Date | null;
  }>(
    `SELECT id, user_id, storage_key, location, bytes, sha256, created_at, verified_at FROM user_exports
      WHERE user_id = $1::uuid AND verified_at IS NOT NULL AND ($2::timestamptz IS NULL OR created_at >= $2::timestamptz)
      ORDER BY created_at DESC LIMIT 1`,
    [userId, since ?? null],
  );
  const row = rows[0];
  return (
    row && {
      id: row.id,
      userId: row.user_id,
      key: row.storage_key,
      location: row.location,
      bytes: Number(row.bytes),
      sha256: row.sha256,
      createdAt: row.created_at,
      verifiedAt: row.verified_at,
    }
  );
}

async function readOnlySnapshot<T>(pool: Pool, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return withTransaction(pool, async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    return fn(tx);
  });
}

function orderBy(table: UserDataTable): string {
  return table.primaryKey.length === 0 ? '' : `ORDER BY ${table.primaryKey.map((column) => `t.${quoteIdent(column)}`).join(', ')}`;
}

function omitted(table: UserDataTable): string[] {
  return table.columns.filter((column) => isSecretColumn(column.name)).map((column) => column.name);
}

function uniqueFileName(table: string, taken: Set<string>): string {
  const base = table.replace(/[^A-Za-z0-9._-]/g, '_');
  let name = `${base}.csv`;
  for (let n = 2; taken.has(name); n += 1) name = `${base}-${n}.csv`;
  taken.add(name);
  return name;
}

function sha256(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

async function readArchive(source: Readable, fail: (problem: string) => ShipError): Promise<{ sha256: string; bytes: number; files: Map<string, Buffer> }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  const { default: tar } = await import('tar-stream');
  const extract = tar.extract();
  const files = new Map<string, Buffer>();
  const collect = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
      if (files.has(entry.header.name)) throw fail(`it holds ${entry.header.name} twice`);
      files.set(entry.header.name, Buffer.concat(chunks));
    }
  })();
  try {
    await Promise.all([pipeline(source, meter, createGunzip(), extract), collect]);
  } catch (error) {
    if (error instanceof ShipError) throw error;
    throw fail(`it cannot be read as tar.gz (${describeError(error)})`);
  }
  return { sha256: hash.digest('hex'), bytes, files };
}
