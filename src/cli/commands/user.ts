/**
 * `shipshape user …` commands that are not runbook procedures: looking at and ending a user's
 * sessions, recording legal's approval of a deletion, cancelling a deletion request, and
 * keeping the erasure ledger's mirror in step. The procedures (`user reset-password`,
 * `user export`, `user request-deletion`, `user delete`, `user purge-due`) come from the
 * procedure registry and live under the same `user` command.
 *
 * Every command that changes something writes an audit row with the operator as actor.
 */
import { type Command, Option } from 'commander';
import { recordAudit } from '../../domain/audit.ts';
import { approveDeletion, cancelDeletion, findPendingDeletion } from '../../domain/deletion-requests.ts';
import { reapplyErasureLedger } from '../../domain/erasure.ts';
import { pullLedgerFromMirror, pushLedgerToMirror, readErasureLedger } from '../../domain/erasure-ledger.ts';
import { withLegalStore } from '../../domain/legal-store.ts';
import { listLiveSessions } from '../../domain/session-list.ts';
import { revokeAllSessions } from '../../domain/sessions.ts';
import { findUserByEmail, type User } from '../../domain/users.ts';
import { shipshapeProfile } from '../../app-profile.ts';
import type { Queryable } from '../../db/pool.ts';
import { ShipError } from '../../errors.ts';
import { prepareSchema } from '../../runtime/migrations.ts';
import type { Database } from '../../db/index.ts';
import { cliContext, withDatabase, type CliContext } from '../context.ts';
import { emit, table } from '../output.ts';

interface JsonFlag {
  json: boolean;
}

/** Finds the account or says plainly that there is none (and whether the ledger shows it was erased). */
export async function accountByEmail(db: Queryable, email: string): Promise<User> {
  const user = await findUserByEmail(db, email);
  if (user) return user;
  const erased = await readErasureLedger(db, { email }).catch(() => []);
  const when = erased[0]
    ? ` The erasure ledger shows an account with this address was erased on ${erased[0].erasedAt.toISOString()} (ticket ${erased[0].ticket ?? 'none'}).`
    : '';
  throw new ShipError('SHIP_ERR_NOT_FOUND', `No account has the email ${email}.${when} Check the address (case does not matter).`);
}

/**
 * `withDatabase` with the schema brought up to date the way `serve` does it: applied on the
 * embedded database, refused (naming the pending files) on a server with pending migrations.
 */
export async function withCurrentSchema<T>(context: CliContext, fn: (database: Database) => Promise<T>): Promise<T> {
  return withDatabase(context, async (database) => {
    await prepareSchema(database, context.logger, { migrate: false });
    return fn(database);
  });
}

export function registerUserCommands(program: Command): void {
  const user = program.commands.find((command) => command.name() === 'user') ?? program.command('user');
  user.description('user accounts: password resets, sessions, GDPR export and erasure');
  const json = (command: Command) => command.option('--json', 'print one JSON document on stdout', false);

  json(user.command('sessions <email>').description("list the account's live sessions (device, address, last seen)")).action(
    async (email: string, flags: JsonFlag) => {
      const context = cliContext();
      const result = await withCurrentSchema(context, async ({ pool }) => {
        const account = await accountByEmail(pool, email);
        return { userId: account.id, sessions: await listLiveSessions(pool, account.id) };
      });
      emit(flags, result, ({ sessions }) =>
        sessions.length === 0
          ? 'No live sessions.'
          : table(
              ['session', 'created', 'last seen', 'expires', 'ip', 'user agent'],
              sessions.map((s) => [s.id, s.createdAt.toISOString(), s.lastSeenAt.toISOString(), s.expiresAt.toISOString(), s.ip, s.userAgent]),
            ),
      );
    },
  );

  json(user.command('revoke-sessions <email>').description('sign the account out everywhere (every live session ends)')).action(
    async (email: string, flags: JsonFlag) => {
      const context = cliContext();
      const result = await withCurrentSchema(context, async ({ pool }) => {
        const account = await accountByEmail(pool, email);
        const revoked = await revokeAllSessions(pool, account.id);
        await recordAudit(pool, {
          actor: `operator:${context.config.operator}`,
          action: 'auth.sessions.revoked',
          userId: account.id,
          details: { count: revoked, reason: 'operator' },
        });
        return { userId: account.id, revoked };
      });
      emit(flags, result, ({ revoked }) => `Ended ${revoked} session(s). The user must sign in again on every device.`);
    },
  );

  json(
    user
      .command('approve-deletion <email>')
      .description(
        "record legal's approval of the account's pending deletion request (you must not be the operator who requested or will carry out the erasure)",
      )
      .requiredOption('--ticket <ref>', 'the ticket legal approved')
      .addOption(
        new Option('--skip-grace', 'approve erasing before the grace period ends (the second approval `user delete --skip-grace` needs)').default(false),
      ),
  ).action(async (email: string, flags: JsonFlag & { ticket: string; skipGrace: boolean }) => {
    const context = cliContext();
    const approver = context.config.operator;
    const ticket = flags.ticket.trim();
    if (ticket === '' || ticket.length > 200) throw new ShipError('SHIP_ERR_VALIDATION', '--ticket must be 1 to 200 characters.');
    const result = await withCurrentSchema(context, async ({ pool }) => {
      const account = await accountByEmail(pool, email);
      const request = await findPendingDeletion(pool, account.id);
      if (!request) {
        throw new ShipError(
          'SHIP_ERR_NOT_FOUND',
          `No deletion request is pending for ${email}, so there is nothing to approve. Record one with \`shipshape user request-deletion ${email} --ticket ${ticket} --identity-ref REF\`.`,
        );
      }
      if (request.requestedBy === `operator:${approver}`) {
        throw new ShipError(
          'SHIP_ERR_SELF_APPROVAL',
          `You (${approver}) recorded this deletion request; a different operator must approve it. Ask a colleague to run this command as themselves (SHIPSHAPE_OPERATOR).`,
        );
      }
      const approval = await approveDeletion(pool, {
        requestId: request.id,
        userId: account.id,
        kind: flags.skipGrace ? 'skip-grace' : 'legal',
        ticket,
        approvedBy: approver,
      });
      return {
        userId: account.id,
        requestId: request.id,
        kind: approval.kind,
        ticket: approval.ticket,
        approvedBy: approval.approvedBy,
        approvedAt: approval.approvedAt,
        dueAt: request.dueAt,
      };
    });
    emit(flags, result, (r) =>
      r.kind === 'legal'
        ? `Recorded legal approval by ${r.approvedBy} for ticket ${r.ticket}. Erasable from ${r.dueAt.toISOString()} by another operator: \`shipshape user delete ${email} --ticket ${r.ticket}\`.`
        : `Recorded ${r.approvedBy}'s approval to skip the grace period for ticket ${r.ticket}: another operator may run \`shipshape user delete ${email} --ticket ${r.ticket} --skip-grace\`.`,
    );
  });

  json(user.command('cancel-deletion <email>').description("cancel the account's pending deletion request; the user can sign in again")).action(
    async (email: string, flags: JsonFlag) => {
      const context = cliContext();
      const result = await withCurrentSchema(context, async ({ pool }) => {
        const account = await accountByEmail(pool, email);
        const request = await cancelDeletion(pool, { userId: account.id, cancelledBy: `operator:${context.config.operator}`, withinGraceOnly: false });
        return { userId: account.id, requestId: request.id };
      });
      emit(flags, result, () => 'Deletion request cancelled. The user can sign in again.');
    },
  );

  json(
    user
      .command('ledger-sync')
      .description('bring the erasure ledger and its mirror in legal storage in step (both directions)')
      .addOption(new Option('--reapply', 'also erase again any account the ledger lists (after restoring a backup by hand)').default(false)),
  ).action(async (flags: JsonFlag & { reapply: boolean }) => {
    const context = cliContext();
    const result = await withLegalStore(context.config, (store) =>
      withCurrentSchema(context, async ({ pool }) => {
        const pulled = await pullLedgerFromMirror(pool, store);
        const pushed = await pushLedgerToMirror(pool, store);
        const reapplied = flags.reapply
          ? await reapplyErasureLedger(pool, { usersTable: shipshapeProfile.users, operator: context.config.operator })
          : undefined;
        return { location: store.location, pulled, pushed, erased: reapplied?.erased ?? null };
      }),
    );
    emit(flags, result, (r) =>
      [
        `Erasure ledger and ${r.location} are in step: ${r.pulled} record(s) copied into the database, ${r.pushed} into legal storage.`,
        ...(r.erased === null ? [] : [`${r.erased} account(s) listed in the ledger were present and have been erased again.`]),
      ].join('\n'),
    );
  });
}
