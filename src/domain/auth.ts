/**
 * Registration, login and password reset. Nothing here tells a caller whether an email
 * has an account: login failures look the same, and reset requests always "succeed".
 */
import { ShipError, describeError } from '../errors.ts';
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import type { Mailer, SentMail } from '../adapters/mailer.ts';
import type { Logger } from '../log.ts';
import { recordAudit } from './audit.ts';
import { findPendingDeletion, pendingDeletionError } from './deletion-requests.ts';
import { clearLoginFailures, recordLoginFailure, waitOutLoginDelay } from './login-throttle.ts';
import { hashToken, issueToken, verifyAgainstNothing, verifyPassword } from './secrets.ts';
import { createSession, revokeAllSessions, type Session } from './sessions.ts';
import { createUser, findUserByEmail, findUserForLogin, setPassword, type User } from './users.ts';

export interface ClientInfo {
  readonly ip?: string | undefined;
  readonly userAgent?: string | undefined;
  /** The request was let through maintenance (the maintenance run's smoke tests); see createSession. */
  readonly duringMaintenance?: boolean | undefined;
}

export interface LoginResult {
  readonly token: string;
  readonly user: User;
  readonly session: Session;
}

export async function register(
  pool: Pool,
  input: { email: string; password: string; displayName?: string | undefined },
  client: ClientInfo,
  sessionTtlHours: number,
): Promise<LoginResult> {
  return withTransaction(pool, async (tx) => {
    const user = await createUser(tx, input);
    const { token, session } = await createSession(tx, { userId: user.id, ttlHours: sessionTtlHours, ...client });
    await recordAudit(tx, { actor: `user:${user.id}`, action: 'auth.registered', userId: user.id, ip: client.ip });
    return { token, user, session };
  });
}

export async function login(db: Queryable, input: { email: string; password: string }, client: ClientInfo, sessionTtlHours: number): Promise<LoginResult> {
  await waitOutLoginDelay(db, input.email);
  const found = await findUserForLogin(db, input.email);
  const valid = found ? await verifyPassword(found.passwordHash, input.password) : await verifyAgainstNothing(input.password);
  if (!found || !valid) {
    const consecutiveFailures = await recordLoginFailure(db, input.email);
    await recordAudit(db, { actor: 'anonymous', action: 'auth.login.failed', userId: found?.user.id, ip: client.ip, details: { consecutiveFailures } });
    throw new ShipError('SHIP_ERR_INVALID_CREDENTIALS', 'Email or password is incorrect.');
  }
  await clearLoginFailures(db, input.email);
  // Only after the password checked out, so the refusal reveals nothing to a stranger.
  const pendingDeletion = await findPendingDeletion(db, found.user.id);
  if (pendingDeletion) {
    await recordAudit(db, {
      actor: `user:${found.user.id}`,
      action: 'auth.login.refused',
      userId: found.user.id,
      ip: client.ip,
      details: { reason: 'deletion pending' },
    });
    throw pendingDeletionError(pendingDeletion);
  }
  const { token, session } = await createSession(db, { userId: found.user.id, ttlHours: sessionTtlHours, ...client });
  await recordAudit(db, { actor: `user:${found.user.id}`, action: 'auth.login.succeeded', userId: found.user.id, ip: client.ip });
  return { token, user: found.user, session };
}

/** How sending an email ended: what the server accepted, or why it failed (never throws). */
export type MailDelivery = { readonly sent: SentMail } | { readonly error: string };

export interface PasswordResetRequest {
  readonly email: string;
  readonly ttlMinutes: number;
  readonly publicUrl: string;
  /**
   * APP_RESET_URL: the app's own reset screen (a deep link such as `tasks://reset-password`).
   * When set, the email offers it first; the web page at PUBLIC_URL stays in the email as the
   * link that works on any device.
   */
  readonly appResetUrl?: string | undefined;
  readonly requestedBy: string;
  readonly ip?: string | undefined;
  /**
   * At most this many reset emails per account per hour, counted in the database (so no flood
   * of other requests can reset the count); further requests are audited and send nothing.
   * Operators asking through the CLI are not limited.
   */
  readonly emailsPerHour?: number;
}

/**
 * Issues a single-use reset token (replacing any earlier unused one) and emails the link.
 * Returns whether an account existed, for operators; the API must not reveal it.
 */
export async function requestPasswordReset(
  pool: Pool,
  mailer: Mailer,
  logger: Logger,
  request: PasswordResetRequest,
): Promise<{ accountExists: boolean; delivery: Promise<MailDelivery | undefined> }> {
  const user = await findUserByEmail(pool, request.email);
  if (!user) return { accountExists: false, delivery: Promise.resolve(undefined) };
  if (request.emailsPerHour !== undefined) {
    const { rows } = await pool.query<{ sent: number }>(
      "SELECT count(*)::int AS sent FROM password_reset_tokens WHERE user_id = $1::uuid AND created_at > now() - interval '1 hour'",
      [user.id],
    );
    if ((rows[0]?.sent ?? 0) >= request.emailsPerHour) {
      await recordAudit(pool, { actor: request.requestedBy, action: 'auth.password_reset.throttled', userId: user.id, ip: request.ip });
      return { accountExists: true, delivery: Promise.resolve(undefined) };
    }
  }
  const { token, hash } = issueToken();
  await withTransaction(pool, async (tx) => {
    await tx.query('UPDATE password_reset_tokens SET used_at = now() WHERE user_id = $1::uuid AND used_at IS NULL', [user.id]);
    await tx.query(
      `INSERT INTO password_reset_tokens (user_id, token_hash, expires_at, requested_ip)
       VALUES ($1::uuid, $2::bytea, now() + make_interval(mins => $3::int), $4::text)`,
      [user.id, hash, request.ttlMinutes, request.ip ?? null],
    );
    await recordAudit(tx, { actor: request.requestedBy, action: 'auth.password_reset.requested', userId: user.id, ip: request.ip });
  });
  const delivery = mailer.send(resetEmail(user.email, token, request)).then(
    (sent): MailDelivery => ({ sent }),
    (error: unknown): MailDelivery => {
      logger.error({ err: describeError(error), userId: user.id }, 'password reset email could not be sent');
      return { error: describeError(error) };
    },
  );
  return { accountExists: true, delivery };
}

/** Where a reset token is used: the web page under PUBLIC_URL, and the app's deep link when APP_RESET_URL is set. */
export function resetLinks(token: string, options: { publicUrl: string; appResetUrl?: string | undefined }): { web: string; app: string | undefined } {
  // Joined to PUBLIC_URL's path, so a deployment served under a prefix (https://host/api) gets its own page.
  const web = new URL(options.publicUrl);
  web.pathname = `${web.pathname.replace(/\/+$/, '')}/reset-password`;
  web.search = '';
  web.searchParams.set('token', token);
  let app: string | undefined;
  if (options.appResetUrl) {
    const deep = new URL(options.appResetUrl);
    deep.searchParams.set('token', token);
    app = deep.toString();
  }
  return { web: web.toString(), app };
}

function resetEmail(to: string, token: string, request: PasswordResetRequest): { to: string; subject: string; text: string; html: string } {
  const links = resetLinks(token, request);
  const within = `within ${request.ttlMinutes} minutes`;
  const text = links.app
    ? `Someone asked to reset the password for ${to}.\n\nOn your phone, open this link ${within} to choose a new password in the app:\n${links.app}\n\nOn any other device, use this one:\n${links.web}\n\nIf it was not you, ignore this email; your password stays the same.`
    : `Someone asked to reset the password for ${to}.\n\nOpen this link ${within} to choose a new one:\n${links.web}\n\nIf it was not you, ignore this email; your password stays the same.`;
  const htmlLinks = links.app
    ? `<p><a href="${escapeHtml(links.app)}">Choose a new password in the app</a> (valid for ${request.ttlMinutes} minutes).</p><p>Not on your phone? <a href="${escapeHtml(links.web)}">Choose it on the web</a> instead.</p>`
    : `<p><a href="${escapeHtml(links.web)}">Choose a new password</a> (valid for ${request.ttlMinutes} minutes).</p>`;
  return {
    to,
    subject: 'Reset your password',
    text,
    html: `<p>Someone asked to reset the password for ${escapeHtml(to)}.</p>${htmlLinks}<p>If it was not you, ignore this email; your password stays the same.</p>`,
  };
}

/** What became of a reset token, so the reset page can say why a link no longer works. */
export type ResetTokenState = 'valid' | 'expired' | 'used' | 'unknown';

/** Reads a token's state without spending it. `used` also covers a link replaced by a newer one. */
export async function resetTokenState(db: Queryable, token: string): Promise<ResetTokenState> {
  const { rows } = await db.query<{ used: boolean; expired: boolean }>(
    'SELECT used_at IS NOT NULL AS used, expires_at <= now() AS expired FROM password_reset_tokens WHERE token_hash = $1::bytea',
    [hashToken(token)],
  );
  const row = rows[0];
  if (!row) return 'unknown';
  if (row.used) return 'used';
  return row.expired ? 'expired' : 'valid';
}

/** Sets a new password with a reset token; the token is spent and every session of the user ends. */
/** Returns the id of the user whose password changed (every session of theirs has ended). */
export async function confirmPasswordReset(pool: Pool, input: { token: string; password: string }, ip?: string): Promise<string> {
  return withTransaction(pool, async (tx) => {
    const { rows } = await tx.query<{ id: string; user_id: string }>(
      `UPDATE password_reset_tokens SET used_at = now()
        WHERE token_hash = $1::bytea AND used_at IS NULL AND expires_at > now()
        RETURNING id, user_id`,
      [hashToken(input.token)],
    );
    const row = rows[0];
    if (!row) {
      throw new ShipError('SHIP_ERR_RESET_TOKEN_INVALID', 'This reset link is invalid, expired or already used. Request a new one.');
    }
    await setPassword(tx, row.user_id, input.password);
    const revoked = await revokeAllSessions(tx, row.user_id);
    await recordAudit(tx, {
      actor: `user:${row.user_id}`,
      action: 'auth.password_reset.completed',
      userId: row.user_id,
      ip,
      details: { sessionsRevoked: revoked },
    });
    return row.user_id;
  });
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
