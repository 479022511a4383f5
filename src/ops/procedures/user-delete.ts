/**
 * Runbook: "Delete User Data (GDPR Request)" — step 3 onwards: delete the user's data,
 * verify, record, confirm to the user.
 *
 * When: a deletion request has been approved by legal and its grace period has passed
 * (normally `shipshape user purge-due` does this on schedule; this is the manual path, e.g.
 * with `--skip-grace` when the law or the user requires it sooner).
 *
 * Where the runbook deletes from two hand-picked tables, this deletes from every table that
 * references the users table — found in the foreign-key catalog, recursively — in one
 * transaction, children first, and checks that nothing of the user is left before it commits.
 * The erasure ledger (no personal data) records it, in the database and in legal storage, so a
 * restore from an older backup can erase the user again (`reapplyErasureLedger`).
 *
 * Last, the address is forgotten in the engine's own records (engine/personal.ts): runs keep a
 * person's address apart from their journals, and this deletes it there too.
 *
 * Prerequisites (user-erasure-checks.ts): request pending, identity verified, legal approval by
 * another operator for this ticket, grace period over (or --skip-grace with a second approval),
 * a verified export archive made since the request. The runbook's step 1–2 (export) is
 * `shipshape user export`; its step 4 (update the ticket) stays with the operator.
 */
import { z } from 'zod';
import { eraseUser, remainingUserRows } from '../../domain/erasure.ts';
import { mirrorErasureRecord, readErasureLedger, ledgerMirrorKey } from '../../domain/erasure-ledger.ts';
import { withLegalStore } from '../../domain/legal-store.ts';
import { latestVerifiedExport } from '../../domain/user-export.ts';
import { findUserForLogin } from '../../domain/users.ts';
import { describeError, ShipError } from '../../errors.ts';
import { redactUrl } from '../../adapters/storage/index.ts';
import { runsDirectory } from '../engine/journal.ts';
import { ERASED, forgetPerson } from '../engine/personal.ts';
import { defineProcedure, requireOutput, stepFor, type Check, type RunContext } from '../engine/types.ts';
import { accountExistsCheck, accountLock, emailParam, findAccount, sendErasureConfirmation, ticketParam, usersTableOf } from './user-common.ts';
import { erasureChecks, type ErasureSubject } from './user-erasure-checks.ts';

const params = z.object({
  email: emailParam,
  ticket: ticketParam,
  /** Erase before the grace period ends; needs a second approval (`approve-deletion --skip-grace`). */
  skipGrace: z.boolean().default(false),
});
type Params = z.output<typeof params>;

/** Each shared erasure check as a prerequisite of this procedure. */
const prerequisiteChecks: ReadonlyArray<Check<Params>> = erasureChecks.map((check) => ({
  name: check.name,
  async run(context: RunContext<Params>) {
    const user = await findAccount(context);
    if (!user) return { ok: false, detail: 'not checked: there is no such account' };
    const subject: ErasureSubject = {
      userId: user.id,
      email: context.params.email,
      operator: context.operator,
      ticket: context.params.ticket,
      skipGrace: context.params.skipGrace,
    };
    const { pool } = await context.database();
    return withLegalStore(context.config, (store) => check.run(pool, store, subject));
  },
}));

// The step whose output the steps and checks after it read (listed in `steps` below with the others).
const step = stepFor<Params>();

const erase = step({
  id: 'erase',
  title: "Delete the user's rows from every table that references them, verify none remain, append to the erasure ledger",
  irreversible: "the user's rows are deleted from every table; only the verified export archive in legal storage keeps a copy",
  output: z.object({ ledgerId: z.string(), userId: z.string(), erasedAt: z.string(), rows: z.record(z.string(), z.number()) }),
  describe: ({ params: p, profile }) => [
    'BEGIN',
    `SELECT … FROM ${profile.users.table} WHERE ${profile.users.emailColumn} = '${p.email}' FOR UPDATE`,
    `for every table referencing ${profile.users.table} (pg_constraint, recursively), deepest first: DELETE FROM <table> WHERE <row belongs to the user>`,
    'verify: no row of the user is left in any of those tables',
    `DELETE FROM ${profile.users.table} WHERE ${profile.users.idColumn} = <id>`,
    `INSERT INTO erasure_ledger (user_id, email_hash, ticket, operator, …) VALUES (<id>, hmac(salt, email), '${p.ticket}', <operator>, …)`,
    'COMMIT',
  ],
  async run(context) {
    const { params: p, operator, profile } = context;
    const { pool } = await context.database();
    const user = await findAccount(context);
    if (!user) {
      // A resumed run whose erasure had committed before the process died: the ledger has it.
      const [previous] = await readErasureLedger(pool, { email: p.email });
      if (previous?.ticket === p.ticket && previous.operator === operator) {
        context.note(`already erased by this run (ledger record ${previous.id})`);
        return { ledgerId: previous.id, userId: previous.userId, erasedAt: previous.erasedAt.toISOString(), rows: previous.tables };
      }
      throw new ShipError(
        'SHIP_ERR_NOT_FOUND',
        `No account has the email ${p.email}, and the erasure ledger shows no erasure of it under ticket ${p.ticket} by ${operator}.`,
      );
    }
    const exported = await latestVerifiedExport(pool, user.id);
    const { record } = await eraseUser(pool, usersTableOf(profile), {
      userId: user.id,
      operator,
      ticket: p.ticket,
      reason: p.skipGrace ? 'operator (grace period skipped)' : 'operator',
      exportKey: exported?.key ?? null,
      // A cancellation that landed after the prerequisites were checked wins.
      recheck: async (tx) => {
        const { rows } = await tx.query('SELECT 1 FROM deletion_requests WHERE user_id = $1::uuid AND cancelled_at IS NULL FOR UPDATE', [user.id]);
        if (rows.length === 0) {
          throw new ShipError('SHIP_ERR_PREREQUISITE_FAILED', 'The deletion request was cancelled after the prerequisites were checked. Nothing was erased.');
        }
      },
    });
    const rows = Object.values(record.tables).reduce((sum, n) => sum + n, 0);
    context.note(`erased ${rows} rows in ${Object.keys(record.tables).length} tables; ledger record ${record.id}`);
    return { ledgerId: record.id, userId: user.id, erasedAt: record.erasedAt.toISOString(), rows: record.tables };
  },
});

export const userDelete = defineProcedure({
  id: 'user.delete',
  command: 'user delete',
  title: "Erase a user's data (GDPR)",
  runbookSection: 'Delete User Data (GDPR Request)',
  whenToUse: 'A deletion request was approved by legal and its grace period has passed (or must be skipped, with a second approval).',
  risk: 'medium',
  expectedDuration: '10-15 minutes',
  issueType: 'security',
  params,
  locks: (p) => [accountLock(p.email)],
  prerequisites: [{ name: 'account exists', run: accountExistsCheck }, ...prerequisiteChecks],
  steps: [
    erase,
    {
      id: 'mirror-ledger',
      title: 'Copy the erasure ledger record to legal storage (so restores of older backups erase the user again)',
      describe: ({ config }) => [`PUT ${redactUrl(config.legalStorageUrl)}/erasure-ledger/<ledger id>.json; read it back`],
      async run(context) {
        const { userId } = requireOutput(context, erase);
        const { pool } = await context.database();
        const [record] = await readErasureLedger(pool, { userId });
        if (!record) throw new ShipError('SHIP_ERR_STEP_FAILED', `The erasure ledger has no record for ${userId}.`);
        return withLegalStore(context.config, async (store) => {
          try {
            return { mirrorKey: await mirrorErasureRecord(store, record) };
          } catch (error) {
            throw new ShipError(
              'SHIP_ERR_STORAGE_WRITE_FAILED',
              `The erasure is done and in the database ledger, but its copy could not be written to ${store.location}: ${describeError(error)}. ` +
                'Once legal storage works, run `shipshape user ledger-sync` so restores of older backups erase this user again.',
            );
          }
        });
      },
    },
    {
      id: 'notify-user',
      title: 'Email the user that their data has been deleted',
      describe: ({ params: p }) => [`email "Your account and data have been deleted" to ${p.email} (best effort)`],
      async run(context) {
        const result = await sendErasureConfirmation(context.config, context.logger, context.params.email, context.params.ticket);
        context.note(result.detail);
        return result;
      },
    },
    {
      id: 'forget-in-run-records',
      title: "Forget the user's address in the operations records: run journals, their private records, the run tables",
      irreversible: 'runs that named the user (this one included) can no longer be resumed; they can still be rolled back',
      describe: ({ config }) => [
        `delete ${runsDirectory(config.stateDir)}/<run>.personal.json of every run that named the address`,
        `replace the address with ${ERASED} in ${runsDirectory(config.stateDir)}/*.jsonl written before addresses were kept apart`,
        `UPDATE shipshape.runs, shipshape.run_events: the address → ${ERASED}`,
      ],
      async run(context) {
        const { pool } = await context.database();
        const forgotten = await forgetPerson(context.config.stateDir, pool, context.params.email);
        context.note(`forgot the address in ${forgotten.records} run record(s), ${forgotten.journals} older journal(s) and ${forgotten.runRows} run row(s)`);
        return { ...forgotten };
      },
    },
  ],
  verification: [
    {
      name: 'no row of the user remains in any table',
      run: async (context) => {
        const { userId } = requireOutput(context, erase);
        const { pool } = await context.database();
        const remaining = await remainingUserRows(pool, context.profile.users, userId);
        const tables = Object.keys(remaining);
        return tables.length === 0
          ? { ok: true, detail: 'zero rows reference the account in the users table and every table that references it' }
          : { ok: false, detail: `rows remain in ${tables.map((t) => `${t} (${remaining[t]})`).join(', ')}` };
      },
    },
    {
      name: 'login now fails for the address',
      run: async (context) => {
        const { pool } = await context.database();
        const found = await findUserForLogin(pool, context.params.email);
        return found
          ? { ok: false, detail: `an account (${found.user.id}) still answers to the address` }
          : { ok: true, detail: 'no account answers to the address, so every login with it fails' };
      },
    },
    {
      name: 'the erasure ledger holds the record, mirrored in legal storage',
      run: async (context) => {
        const { ledgerId, userId } = requireOutput(context, erase);
        const { pool } = await context.database();
        const records = await readErasureLedger(pool, { userId });
        if (!records.some((record) => record.id === ledgerId)) return { ok: false, detail: `ledger record ${ledgerId} is missing` };
        return withLegalStore(context.config, async (store) => {
          const mirrored = await store.head(ledgerMirrorKey({ id: ledgerId }));
          return mirrored
            ? { ok: true, detail: `ledger record ${ledgerId}, mirrored at ${store.location}/${mirrored.key}` }
            : { ok: false, detail: `the mirror of ledger record ${ledgerId} is missing in ${store.location}` };
        });
      },
    },
  ],
});
