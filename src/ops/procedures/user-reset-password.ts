/**
 * Runbook: "Reset User Password".
 *
 * When: a user is locked out or forgot the password. Instead of an operator choosing a
 * password, the user gets the same single-use link the app's "forgot password" sends; it
 * expires (PASSWORD_RESET_TTL_MINUTES), replaces any earlier link, and completing it signs
 * the user out everywhere.
 *
 * Prerequisites: the account exists (an operator may be told so; the API never says); the
 * runbook's "user verification completed" is the mailbox itself — only its owner can use the
 * link. Verification: the mail server accepted the message, and an unused token is on record.
 */
import { z } from 'zod';
import { createMailer } from '../../adapters/mailer.ts';
import { requestPasswordReset } from '../../domain/auth.ts';
import { ShipError } from '../../errors.ts';
import { defineProcedure, requireOutput, stepFor } from '../engine/types.ts';
import { accountExistsCheck, accountLock, emailParam, requireAccount, ticketParam } from './user-common.ts';

const params = z.object({
  email: emailParam,
  /** The support ticket the request came in on, for the audit trail. */
  ticket: ticketParam.optional(),
});

type Params = z.output<typeof params>;

// The step whose output the checks read (listed in `steps` below with the others).
const step = stepFor<Params>();

const sendResetEmail = step({
  id: 'send-reset-email',
  output: z.object({
    userId: z.string(),
    messageId: z.string(),
    acceptedRecipients: z.number(),
    transport: z.string(),
    ticket: z.string().nullable(),
  }),
  title: 'Issue a single-use reset token and email the link',
  describe: ({ params: p, config }) => [
    `UPDATE password_reset_tokens SET used_at = now() WHERE user_id = <id of ${p.email}> AND used_at IS NULL`,
    `INSERT INTO password_reset_tokens (user_id, token_hash, expires_at) VALUES (<id>, sha256(<random token>), now() + ${config.passwordResetTtlMinutes} minutes)`,
    `email "Reset your password" to ${p.email} with a link to ${config.publicUrl}/reset-password?token=…`,
  ],
  async run(context) {
    const { params: p, config, logger, operator } = context;
    const user = await requireAccount(context);
    const { pool } = await context.database();
    const mailer = createMailer({ smtpUrl: config.smtpUrl, from: config.mailFrom }, logger);
    try {
      const { delivery } = await requestPasswordReset(pool, mailer, logger, {
        email: p.email,
        ttlMinutes: config.passwordResetTtlMinutes,
        publicUrl: config.publicUrl,
        appResetUrl: config.appResetUrl,
        requestedBy: `operator:${operator}`,
      });
      const outcome = await delivery;
      if (!outcome || 'error' in outcome) {
        throw new ShipError(
          'SHIP_ERR_PROVIDER_FAILED',
          `The mail server did not take the reset email: ${outcome?.error ?? 'no delivery'}. Check SMTP_URL and the mail server, then run this again.`,
        );
      }
      context.note(`reset email accepted by the mail server (message ${outcome.sent.messageId})`);
      return {
        userId: user.id,
        messageId: outcome.sent.messageId,
        acceptedRecipients: outcome.sent.accepted.length,
        transport: config.smtpUrl ? 'smtp' : 'log',
        ticket: p.ticket ?? null,
      };
    } finally {
      mailer.close();
    }
  },
  // The email cannot be unsent; spending the token makes its link useless.
  async undo(context, output) {
    const { pool } = await context.database();
    await pool.query('UPDATE password_reset_tokens SET used_at = now() WHERE user_id = $1::uuid AND used_at IS NULL', [output.userId]);
  },
});

export const userResetPassword = defineProcedure({
  id: 'user.reset-password',
  command: 'user reset-password',
  title: 'Email the user a password reset link',
  runbookSection: 'Reset User Password',
  whenToUse: 'A user is locked out or forgot their password.',
  risk: 'low',
  expectedDuration: '2 minutes',
  issueType: 'application',
  params,
  locks: (p) => [accountLock(p.email)],
  prerequisites: [
    { name: 'account exists', run: accountExistsCheck },
    {
      name: 'email can be sent',
      run: async ({ config }) =>
        config.smtpUrl
          ? { ok: true, detail: 'over SMTP (SMTP_URL)' }
          : { ok: true, detail: 'SMTP_URL is not set: the email (with the link) is written to the server log instead of being sent' },
    },
  ],
  steps: [sendResetEmail],
  verification: [
    {
      name: 'the mail server accepted the message',
      run: async (context) => {
        const sent = requireOutput(context, sendResetEmail);
        const accepted = sent.acceptedRecipients;
        return accepted > 0
          ? { ok: true, detail: sent.transport === 'smtp' ? `accepted by SMTP as ${sent.messageId}` : 'written to the log (no SMTP_URL)' }
          : { ok: false, detail: 'no recipient was accepted', remedy: 'check the address and the mail server logs' };
      },
    },
    {
      name: 'an unused reset token is on record',
      run: async (context) => {
        const { pool } = await context.database();
        const { userId } = requireOutput(context, sendResetEmail);
        const { rows } = await pool.query<{ expires_at: Date }>(
          'SELECT expires_at FROM password_reset_tokens WHERE user_id = $1::uuid AND used_at IS NULL AND expires_at > now() ORDER BY created_at DESC LIMIT 1',
          [userId],
        );
        const row = rows[0];
        return row
          ? { ok: true, detail: `link valid until ${row.expires_at.toISOString()}` }
          : { ok: false, detail: 'no unused, unexpired token for the account' };
      },
    },
  ],
});
