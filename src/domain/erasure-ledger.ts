/**
 * The erasure ledger: one record per erased account, holding no personal data (the user's
 * random id, a salted hash of the email, the ticket, the time and the operator).
 *
 * It lives in the database (`erasure_ledger`) and, because a restore replaces the database
 * with one from before recent erasures, also in legal storage as one JSON object per record
 * under `erasure-ledger/`. After a restore the mirror is merged back and the ledger
 * re-applied (see `reapplyErasureLedger` in erasure.ts), so backups never resurrect anyone.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ObjectStore } from '../adapters/storage/index.ts';
import { ShipError } from '../errors.ts';
import type { Queryable } from '../db/pool.ts';
import { firstRow } from '../db/rows.ts';

export const LEDGER_PREFIX = 'erasure-ledger/';
const FORMAT = 'shipshape-erasure-ledger/1';

export interface ErasureRecord {
  readonly id: string;
  readonly userId: string;
  /** HMAC-SHA256 of the trimmed, lower-cased email under the database's ledger salt, hex. */
  readonly emailHash: string;
  readonly ticket: string | null;
  readonly operator: string;
  /** `operator` (shipshape user delete) or `grace-period-ended` (shipshape user purge-due). */
  readonly reason: string;
  readonly erasedAt: Date;
  /** Rows removed per table (counts only). */
  readonly tables: Readonly<Record<string, number>>;
  /** The export archive kept in legal storage for the record, if any. */
  readonly exportKey: string | null;
}

const recordSchema = z.strictObject({
  format: z.literal(FORMAT),
  id: z.uuid(),
  userId: z.string().min(1).max(200),
  emailHash: z.string().regex(/^[0-9a-f]{64}$/),
  ticket: z.string().max(200).nullable(),
  operator: z.string().min(1).max(200),
  reason: z.string().min(1).max(100),
  erasedAt: z.iso.datetime({ offset: true }),
  tables: z.record(z.string(), z.number().int().nonnegative()),
  exportKey: z.string().max(1024).nullable(),
});

interface LedgerRow {
  id: string;
  user_id: string;
  email_hash: string;
  ticket: string | null;
  operator: string;
  reason: string;
  erased_at: Date;
  tables: Record<string, number>;
  export_key: string | null;
}

const toRecord = (row: LedgerRow): ErasureRecord => ({
  id: row.id,
  userId: row.user_id,
  emailHash: row.email_hash,
  ticket: row.ticket,
  operator: row.operator,
  reason: row.reason,
  erasedAt: row.erased_at,
  tables: row.tables,
  exportKey: row.export_key,
});

/** The salted hash the ledger stores for `email`; the same email always gives the same hash in one database. */
export async function ledgerEmailHash(db: Queryable, email: string): Promise<string> {
  const { rows } = await db.query<{ salt: Buffer }>('SELECT salt FROM erasure_ledger_salt');
  const salt = rows[0]?.salt;
  if (!salt) throw new ShipError('SHIP_ERR_MIGRATIONS_PENDING', 'The erasure ledger salt is missing. Run `shipshape db migrate up`.');
  return createHmac('sha256', salt).update(email.trim().toLowerCase(), 'utf8').digest('hex');
}

export async function appendErasureRecord(db: Queryable, entry: Omit<ErasureRecord, 'id' | 'erasedAt'>): Promise<ErasureRecord> {
  const { rows } = await db.query<LedgerRow>(
    `INSERT INTO erasure_ledger (id, user_id, email_hash, ticket, operator, reason, erased_at, tables, export_key)
     VALUES ($1::uuid, $2::uuid, $3::text, $4::text, $5::text, $6::text, now(), $7::jsonb, $8::text)
     RETURNING *`,
    [randomUUID(), entry.userId, entry.emailHash, entry.ticket, entry.operator, entry.reason, JSON.stringify(entry.tables), entry.exportKey],
  );
  return toRecord(firstRow(rows));
}

/** Ledger records, newest first; by user id or email when given. */
export async function readErasureLedger(db: Queryable, filter: { userId?: string; email?: string } = {}): Promise<ErasureRecord[]> {
  const emailHash = filter.email === undefined ? null : await ledgerEmailHash(db, filter.email);
  const { rows } = await db.query<LedgerRow>(
    `SELECT * FROM erasure_ledger
      WHERE ($1::uuid IS NULL OR user_id = $1::uuid) AND ($2::text IS NULL OR email_hash = $2::text)
      ORDER BY erased_at DESC, id`,
    [filter.userId ?? null, emailHash],
  );
  return rows.map(toRecord);
}

export function ledgerMirrorKey(record: Pick<ErasureRecord, 'id'>): string {
  return `${LEDGER_PREFIX}${record.id}.json`;
}

/** Writes one record to the mirror in legal storage and reads it back. */
export async function mirrorErasureRecord(store: ObjectStore, record: ErasureRecord): Promise<string> {
  const key = ledgerMirrorKey(record);
  await store.putJson(key, { format: FORMAT, ...record, erasedAt: record.erasedAt.toISOString() });
  const stored = parseMirrored(key, await store.getBuffer(key));
  if (stored.id !== record.id || stored.userId !== record.userId) {
    throw new ShipError(
      'SHIP_ERR_STORAGE_WRITE_FAILED',
      `The erasure ledger copy ${key} in ${store.location} does not read back as written. Check the storage, then run \`shipshape user ledger-sync\`.`,
    );
  }
  return key;
}

/** Copies every database record the mirror lacks into it; returns how many were copied. */
export async function pushLedgerToMirror(db: Queryable, store: ObjectStore): Promise<number> {
  const mirrored = new Set((await store.list(LEDGER_PREFIX)).map((object) => object.key));
  let copied = 0;
  for (const record of await readErasureLedger(db)) {
    if (mirrored.has(ledgerMirrorKey(record))) continue;
    await mirrorErasureRecord(store, record);
    copied += 1;
  }
  return copied;
}

/** Inserts every mirrored record the database lacks (after a restore); returns how many. */
export async function pullLedgerFromMirror(db: Queryable, store: ObjectStore): Promise<number> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM erasure_ledger');
  const known = new Set(rows.map((row) => ledgerMirrorKey(row)));
  let inserted = 0;
  for (const object of await store.list(LEDGER_PREFIX)) {
    if (known.has(object.key) || !object.key.endsWith('.json')) continue;
    const record = parseMirrored(object.key, await store.getBuffer(object.key));
    const { rowCount } = await db.query(
      `INSERT INTO erasure_ledger (id, user_id, email_hash, ticket, operator, reason, erased_at, tables, export_key)
       VALUES ($1::uuid, $2::uuid, $3::text, $4::text, $5::text, $6::text, $7::timestamptz, $8::jsonb, $9::text)
       ON CONFLICT DO NOTHING`,
      [
        record.id,
        record.userId,
        record.emailHash,
        record.ticket,
        record.operator,
        record.reason,
        record.erasedAt,
        JSON.stringify(record.tables),
        record.exportKey,
      ],
    );
    inserted += rowCount ?? 0;
  }
  return inserted;
}

function parseMirrored(key: string, content: Buffer): z.output<typeof recordSchema> {
  let value: unknown;
  try {
    value = JSON.parse(content.toString('utf8'));
  } catch {
    value = undefined;
  }
  const parsed = recordSchema.safeParse(value);
  if (!parsed.success) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `The erasure ledger copy ${key} is not a ledger record (${parsed.error.issues[0]?.message ?? 'not JSON'}). Move it out of ${LEDGER_PREFIX} in legal storage, then retry.`,
    );
  }
  return parsed.data;
}
