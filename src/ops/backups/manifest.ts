/**
 * The backup manifest: what a backup holds and how it was proven good.
 *
 * Layout in backup storage, one folder per backup:
 *   <id>/dump            the dump itself (custom format from pg_dump, or plain SQL from PGlite)
 *   <id>/manifest.json   written last, only once the stored dump verified
 *   <id>/verification.json  the latest `shipshape db verify` result, if any
 *
 * A dump without a manifest is an incomplete backup (an upload that died, a verification that
 * failed): it is never listed as good and never offered for restore.
 */
import { z } from 'zod';

export const MANIFEST_FORMAT = 'shipshape-backup/1';

export const dumpKey = (id: string): string => `${id}/dump`;
export const manifestKey = (id: string): string => `${id}/manifest.json`;
export const verificationKey = (id: string): string => `${id}/verification.json`;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const tableCountSchema = z.object({
  /** Schema-qualified, unquoted: `public.users`. */
  name: z.string().min(1),
  rows: z.number().int().nonnegative(),
});
export type TableCount = z.output<typeof tableCountSchema>;

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  id: z.string().min(1),
  /** When the dump started (its snapshot), ISO 8601. */
  createdAt: z.iso.datetime({ offset: true }),
  /** When the manifest was written, after verification. */
  completedAt: z.iso.datetime({ offset: true }),
  /** Why it was taken: `manual`, `pre-restore` (a restore's safety backup), `scheduled`, … */
  purpose: z.string().min(1),
  /** The run that took it, if any. */
  runId: z.string().nullable(),
  operator: z.string(),
  database: z.object({
    name: z.string().min(1),
    kind: z.enum(['postgres', 'embedded']),
    /** e.g. "15.20" */
    serverVersion: z.string(),
  }),
  dump: z.object({
    /** The dump's object key in backup storage. (Not `key`: the run journal redacts fields named so.) */
    objectKey: z.string().min(1),
    format: z.enum(['custom', 'plain']),
    /** e.g. "pg_dump 15.20" or "pglite-tools pg_dump 18" */
    tool: z.string(),
    /** pg_restore must be at least this major version to read a custom archive. */
    toolMajor: z.number().int(),
    /** pg_dump -Z level for custom dumps; null for plain SQL. */
    compressionLevel: z.number().int().min(0).max(9).nullable(),
    bytes: z.number().int().nonnegative(),
    sha256,
  }),
  /** How the row counts were made consistent with the dump. */
  consistency: z.string(),
  schemaVersion: z.object({
    trackingTable: z.string(),
    /** Newest applied migration, or null when the tracking table is absent. */
    version: z.number().int().nullable(),
    name: z.string().nullable(),
  }),
  /** Exact row counts of every table in the dump, taken in the dump's snapshot. */
  tables: z.array(tableCountSchema),
  /** The newest value of the app profile's recent-data column, to prove recent data survived a restore. */
  recentData: z
    .object({
      table: z.string(),
      column: z.string(),
      /** ISO 8601, for people. */
      newest: z.string().nullable(),
      /** Seconds since the epoch as PostgreSQL printed them, for exact comparison. */
      newestEpoch: z.string().nullable(),
    })
    .nullable(),
  verification: z.object({
    verifiedAt: z.iso.datetime({ offset: true }),
    /** What was checked, in words ("size and sha256 on re-read", "pg_restore --list: 42 entries"). */
    checks: z.array(z.string()),
    /** Whether a scratch restore compared every table's row count (`--verify-restore`). */
    restoreTested: z.boolean(),
  }),
});
export type BackupManifest = z.output<typeof manifestSchema>;

/** What taking the dump establishes; the manifest adds who, why and how it was verified. */
export const dumpFactsSchema = manifestSchema.pick({
  id: true,
  createdAt: true,
  database: true,
  dump: true,
  consistency: true,
  schemaVersion: true,
  tables: true,
  recentData: true,
});
export type DumpFacts = z.output<typeof dumpFactsSchema>;

/** The latest `shipshape db verify` of a backup. */
export const verificationRecordSchema = z.object({
  backupId: z.string(),
  at: z.iso.datetime({ offset: true }),
  ok: z.boolean(),
  restoreTested: z.boolean(),
  checks: z.array(z.string()),
  problem: z.string().nullable(),
});
export type VerificationRecord = z.output<typeof verificationRecordSchema>;
