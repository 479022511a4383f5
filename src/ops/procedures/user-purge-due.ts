/**
 * Runbook: "Delete User Data (GDPR Request)", on schedule — erase every account whose deletion
 * request's grace period has passed, with exactly the checks `shipshape user delete` applies
 * (user-erasure-checks.ts). A request that fails a check is skipped and reported, not erased;
 * the others go ahead. Meant for the scheduler (`--yes --yes-irreversible`), runnable by hand.
 */
import { z } from 'zod';
import type { Pool } from '../../db/pool.ts';
import { quoteIdent, quoteQualified } from '../../db/pool.ts';
import { eraseUser, remainingUserRows } from '../../domain/erasure.ts';
import { ledgerMirrorKey, mirrorErasureRecord } from '../../domain/erasure-ledger.ts';
import { listDueDeletions } from '../../domain/deletion-requests.ts';
import { withLegalStore } from '../../domain/legal-store.ts';
import type { UsersTableRef } from '../../domain/user-data-map.ts';
import { describeError, ShipError } from '../../errors.ts';
import { forgetPerson } from '../engine/personal.ts';
import { defineProcedure, requireOutput, stepFor } from '../engine/types.ts';
import { legalStorageWritable, sendErasureConfirmation } from './user-common.ts';
import { assessErasure } from './user-erasure-checks.ts';

const params = z.object({});

async function emailOf(pool: Pool, usersTable: UsersTableRef, userId: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ email: string }>(
    `SELECT ${quoteIdent(usersTable.emailColumn)}::text AS email FROM ${quoteQualified(usersTable.table)} WHERE ${quoteIdent(usersTable.idColumn)}::text = $1::text`,
    [userId],
  );
  return rows[0]?.email;
}

type Params = z.output<typeof params>;

// The step whose output the checks read (listed in `steps` below).
const step = stepFor<Params>();

const eraseDue = step({
  id: 'erase-due',
  output: z.object({
    erased: z.array(z.object({ ledgerId: z.string(), userId: z.string(), mirrored: z.boolean(), emailed: z.boolean() })),
    skipped: z.array(z.object({ userId: z.string(), requestId: z.string(), failed: z.array(z.string()) })),
    failed: z.array(z.object({ userId: z.string(), error: z.string() })),
  }),
  title:
    'For each due request: check it like `user delete` does, erase, record in the ledger and its mirror, email the user, forget the address in the run records',
  irreversible: "each erased user's rows are deleted from every table; only their verified export archive keeps a copy",
  describe: () => [
    'SELECT … FROM deletion_requests WHERE cancelled_at IS NULL AND due_at <= now()',
    'for each: identity reference, legal approval by another operator, verified export archive; then the erasure of `shipshape user delete`',
  ],
  async run(context) {
    const { operator, profile, config, logger } = context;
    const { pool } = await context.database();
    const erased: Array<{ ledgerId: string; userId: string; mirrored: boolean; emailed: boolean }> = [];
    const skipped: Array<{ userId: string; requestId: string; failed: string[] }> = [];
    const failed: Array<{ userId: string; error: string }> = [];
    await withLegalStore(config, async (store) => {
      for (const request of await listDueDeletions(pool)) {
        const email = await emailOf(pool, profile.users, request.userId);
        if (email === undefined) continue;
        const assessment = await assessErasure(pool, store, { userId: request.userId, email, operator, ticket: undefined, skipGrace: false });
        if (!assessment.ready) {
          skipped.push({ userId: request.userId, requestId: request.id, failed: assessment.failed.map((f) => `${f.name}: ${f.detail}`) });
          context.note(`skipped request ${request.id}: ${assessment.failed.map((f) => f.name).join(', ')}`);
          continue;
        }
        try {
          const ticket = assessment.approval?.ticket ?? request.ticket;
          const { record } = await eraseUser(pool, profile.users, {
            userId: request.userId,
            operator,
            ticket,
            reason: 'grace-period-ended',
            exportKey: assessment.exportKey,
            recheck: async (tx) => {
              const { rows } = await tx.query('SELECT 1 FROM deletion_requests WHERE id = $1::uuid AND cancelled_at IS NULL FOR UPDATE', [request.id]);
              if (rows.length === 0) throw new ShipError('SHIP_ERR_PREREQUISITE_FAILED', 'The request was cancelled meanwhile. Nothing was erased.');
            },
          });
          let mirrored = true;
          await mirrorErasureRecord(store, record).catch((error: unknown) => {
            mirrored = false;
            context.note(`ledger record ${record.id} not mirrored: ${describeError(error)}`);
          });
          const mail = await sendErasureConfirmation(config, logger, email, ticket);
          await forgetPerson(config.stateDir, pool, email);
          erased.push({ ledgerId: record.id, userId: request.userId, mirrored, emailed: mail.sent });
          context.note(`erased account ${request.userId} (ledger ${record.id})`);
        } catch (error) {
          failed.push({ userId: request.userId, error: describeError(error) });
          context.note(`could not erase account ${request.userId}: ${describeError(error)}`);
        }
      }
    });
    return { erased, skipped, failed };
  },
});

export const userPurgeDue = defineProcedure({
  id: 'user.purge-due',
  command: 'user purge-due',
  title: 'Erase every account whose deletion grace period has passed',
  runbookSection: 'Delete User Data (GDPR Request)',
  whenToUse: 'On schedule (daily), or by hand to carry out due deletion requests.',
  risk: 'medium',
  expectedDuration: '1-15 minutes',
  issueType: 'security',
  params,
  locks: () => ['gdpr:purge-due'],
  prerequisites: [
    legalStorageWritable,
    {
      name: 'due deletion requests',
      run: async (context) => {
        const { pool } = await context.database();
        const due = await listDueDeletions(pool);
        return { ok: true, detail: due.length === 0 ? 'none is due' : `${due.length} request(s) past their grace period` };
      },
    },
  ],
  steps: [eraseDue],
  verification: [
    {
      name: 'every due request that passed its checks was erased',
      run: async (context) => {
        const outcome = requireOutput(context, eraseDue);
        const [failed, erased, skipped] = [outcome.failed.length, outcome.erased.length, outcome.skipped.length];
        return failed === 0
          ? { ok: true, detail: `${erased} erased, ${skipped} skipped (a prerequisite is not met; see the notes)` }
          : {
              ok: false,
              detail: `${failed} erasure(s) failed and were rolled back`,
              remedy: 'see the notes; fix the cause and run `shipshape user purge-due` again',
            };
      },
    },
    {
      name: 'no row of an erased user remains, and each is in the ledger mirror',
      run: async (context) => {
        const { pool } = await context.database();
        const problems: string[] = [];
        await withLegalStore(context.config, async (store) => {
          for (const { ledgerId, userId } of requireOutput(context, eraseDue).erased) {
            const remaining = await remainingUserRows(pool, context.profile.users, userId);
            if (Object.keys(remaining).length > 0) problems.push(`${userId}: rows remain in ${Object.keys(remaining).join(', ')}`);
            if (!(await store.head(ledgerMirrorKey({ id: ledgerId }))))
              problems.push(`ledger record ${ledgerId} is not mirrored (run \`shipshape user ledger-sync\`)`);
          }
        });
        return problems.length === 0 ? { ok: true, detail: 'every erased account is gone and mirrored' } : { ok: false, detail: problems.join('; ') };
      },
    },
  ],
});
