/**
 * Runbook: "Delete User Data (GDPR Request)", steps 1–2 — export the user's data for the
 * records, compress and archive it in legal storage. Also the right of access on its own.
 *
 * The runbook copies two tables by hand; this exports every table that references the user
 * (found through the foreign-key catalog) as one CSV each, with a manifest of row counts and
 * sha256 per file, into one tar.gz under LEGAL_STORAGE_URL (never the backup location), then
 * reads it back and checks it. `shipshape user delete` requires such a verified archive.
 */
import { z } from 'zod';
import { redactUrl } from '../../adapters/storage/index.ts';
import { withLegalStore } from '../../domain/legal-store.ts';
import { latestVerifiedExport, markExportVerified, readUserTables, recordExport, verifyExportArchive, writeExportArchive } from '../../domain/user-export.ts';
import { recordAudit } from '../../domain/audit.ts';
import { defineProcedure, requireOutput, stepFor } from '../engine/types.ts';
import { accountExistsCheck, accountLock, emailParam, legalStorageWritable, requireAccount, ticketParam, usersTableOf } from './user-common.ts';

const params = z.object({
  email: emailParam,
  ticket: ticketParam.optional(),
});

type Params = z.output<typeof params>;

// The step whose output the verification of the archive reads (listed in `steps` below).
const step = stepFor<Params>();

const writeArchive = step({
  id: 'write-archive',
  output: z.object({
    exportId: z.string(),
    userId: z.string(),
    archiveKey: z.string(),
    location: z.string(),
    bytes: z.number(),
    sha256: z.string(),
    rows: z.record(z.string(), z.number()),
  }),
  title: "Write the user's rows (one CSV per table) and a manifest to a tar.gz in legal storage",
  describe: ({ params: p, config, profile }) => [
    `for every table referencing ${profile.users.table} (pg_constraint, recursively): SELECT <columns except password/token/secret>::text … WHERE <row belongs to ${p.email}>`,
    `PUT ${redactUrl(config.legalStorageUrl)}/exports/<user id>/<time>.tar.gz (manifest.json + <schema>.<table>.csv)`,
    'INSERT INTO user_exports (user_id, storage_key, bytes, sha256, …)',
  ],
  async run(context) {
    const { params: p, config, operator, profile, signal } = context;
    const user = await requireAccount(context);
    const { pool } = await context.database();
    const tables = await readUserTables(pool, usersTableOf(profile), user.id);
    const stored = await withLegalStore(config, (store) =>
      writeExportArchive(store, tables, { userId: user.id, createdBy: operator, ticket: p.ticket ?? null, signal }),
    );
    const exportId = await recordExport(pool, stored, { createdBy: operator, ticket: p.ticket ?? null });
    context.note(`wrote ${stored.bytes} bytes to ${stored.location}/${stored.key}`);
    return {
      exportId,
      userId: user.id,
      archiveKey: stored.key,
      location: stored.location,
      bytes: stored.bytes,
      sha256: stored.sha256,
      rows: Object.fromEntries(stored.manifest.files.map((file) => [file.table, file.rows])),
    };
  },
  async undo(context, output) {
    await withLegalStore(context.config, (store) => store.delete(output.archiveKey));
    const { pool } = await context.database();
    await pool.query('DELETE FROM user_exports WHERE id = $1::uuid', [output.exportId]);
  },
});

export const userExport = defineProcedure({
  id: 'user.export',
  command: 'user export',
  title: "Export a user's data to legal storage",
  runbookSection: 'Delete User Data (GDPR Request)',
  whenToUse: 'Before erasing an account (the runbook exports first, for the records), or when a user asks for a copy of their data.',
  risk: 'low',
  expectedDuration: '1-5 minutes',
  issueType: 'security',
  params,
  locks: (p) => [accountLock(p.email)],
  prerequisites: [{ name: 'account exists', run: accountExistsCheck }, legalStorageWritable],
  steps: [
    writeArchive,
    {
      id: 'verify-archive',
      title: 'Read the archive back from legal storage and check every file against the manifest',
      describe: () => [
        'GET the archive; compare its size and sha256; unpack; check each CSV against the manifest (sha256, header, row count)',
        'UPDATE user_exports SET verified_at = now()',
      ],
      async run(context) {
        const written = requireOutput(context, writeArchive);
        const manifest = await withLegalStore(context.config, (store) =>
          verifyExportArchive(store, written.archiveKey, {
            sha256: written.sha256,
            bytes: Number(written.bytes),
            userId: written.userId,
          }),
        );
        const { pool } = await context.database();
        await markExportVerified(pool, written.exportId);
        await recordAudit(pool, {
          actor: `operator:${context.operator}`,
          action: 'gdpr.export.created',
          userId: written.userId,
          details: { exportId: written.exportId, archiveKey: written.archiveKey, ticket: context.params.ticket ?? null },
        });
        return { files: manifest.files.length };
      },
    },
  ],
  verification: [
    {
      name: 'a verified archive is recorded and present in legal storage',
      run: async (context) => {
        const written = requireOutput(context, writeArchive);
        const { pool } = await context.database();
        const latest = await latestVerifiedExport(pool, written.userId);
        if (!latest || latest.id !== written.exportId) return { ok: false, detail: 'the export is not recorded as verified' };
        return withLegalStore(context.config, async (store) => {
          const info = await store.head(latest.key);
          return info?.bytes === latest.bytes
            ? { ok: true, detail: `${latest.location}/${latest.key} (${latest.bytes} bytes, sha256 ${latest.sha256})` }
            : { ok: false, detail: `${latest.key} is missing or has a different size in ${store.location}` };
        });
      },
    },
  ],
});
