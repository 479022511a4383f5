/**
 * What the user-management procedures share: their parameters, the lock that keeps two runs
 * on one account apart, and looking the account up through the app profile.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { AppProfile } from '../../app-profile.ts';
import { createMailer } from '../../adapters/mailer.ts';
import type { Config } from '../../config/index.ts';
import type { Logger } from '../../log.ts';
import { withLegalStore } from '../../domain/legal-store.ts';
import { findUserByEmail, type User } from '../../domain/users.ts';
import type { UsersTableRef } from '../../domain/user-data-map.ts';
import { describeError, ShipError } from '../../errors.ts';
import { personal } from '../engine/personal.ts';
import type { Check, RunContext } from '../engine/types.ts';

/** Personal: kept out of run journals and forgotten when the person is erased (engine/personal.ts). */
export const emailParam = personal(z.string().trim().toLowerCase().pipe(z.email('must be an email address like ada@example.com')));
export const ticketParam = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');

/**
 * One lock per account, so an export, a deletion request and an erasure of the same person never
 * overlap. Named by a hash: lock files are listed in STATE_DIR and must not spell out the address.
 */
export function accountLock(email: string): string {
  return `user-account:${createHash('sha256').update(email.trim().toLowerCase(), 'utf8').digest('hex').slice(0, 16)}`;
}

export function usersTableOf(profile: AppProfile): UsersTableRef {
  return profile.users;
}

export async function findAccount(context: RunContext<{ email: string }>): Promise<User | undefined> {
  const { pool } = await context.database();
  return findUserByEmail(pool, context.params.email);
}

/** The account, or a ShipError that says it does not exist (operators may be told; the API never is). */
export async function requireAccount(context: RunContext<{ email: string }>): Promise<User> {
  const user = await findAccount(context);
  if (!user) throw new ShipError('SHIP_ERR_NOT_FOUND', `No account has the email ${context.params.email}. Check the address (case does not matter).`);
  return user;
}

/** A prerequisite result for "the account exists". */
export async function accountExistsCheck(context: RunContext<{ email: string }>): Promise<{ ok: boolean; detail: string; remedy?: string }> {
  const user = await findAccount(context);
  return user
    ? { ok: true, detail: `account ${user.id} (created ${user.createdAt.toISOString()})` }
    : { ok: false, detail: `no account has the email ${context.params.email}`, remedy: 'check the address with the requester; case does not matter' };
}

/** A prerequisite: legal storage accepts writes (exports and the erasure ledger's mirror go there). */
export const legalStorageWritable: Check<unknown> = {
  name: 'legal storage accepts writes',
  run: ({ config }) =>
    withLegalStore(config, async (store) => {
      await store.checkWritable();
      return { ok: true, detail: `${store.location} is writable` };
    }),
};

/**
 * Runbook step 5, "send confirmation email to user", after an erasure. Best effort: the erasure
 * stands whether or not the mail goes out, so a failure is reported, not thrown.
 */
export async function sendErasureConfirmation(
  config: Config,
  logger: Logger,
  email: string,
  ticket: string | null,
): Promise<{ sent: boolean; detail: string }> {
  const mailer = createMailer({ smtpUrl: config.smtpUrl, from: config.mailFrom }, logger);
  try {
    const sent = await mailer.send({
      to: email,
      subject: 'Your account and data have been deleted',
      text:
        `As you asked${ticket ? ` (reference ${ticket})` : ''}, your account and all the data it held have been permanently deleted. ` +
        'You will not receive further emails from us about this account.',
    });
    return { sent: true, detail: `confirmation accepted by the mail server (${sent.messageId})` };
  } catch (error) {
    return { sent: false, detail: `confirmation email not sent: ${describeError(error)}` };
  } finally {
    mailer.close();
  }
}
