/**
 * Cancelling one's own deletion request. The account cannot sign in while the request is
 * pending, so the request is cancelled with the email and password instead of a session,
 * under the same throttling as login, and a fresh session is handed back.
 */
import { ShipError } from '../errors.ts';
import type { Pool } from '../db/pool.ts';
import { recordAudit } from './audit.ts';
import type { ClientInfo, LoginResult } from './auth.ts';
import { cancelDeletion } from './deletion-requests.ts';
import { clearLoginFailures, recordLoginFailure, waitOutLoginDelay } from './login-throttle.ts';
import { verifyAgainstNothing, verifyPassword } from './secrets.ts';
import { createSession } from './sessions.ts';
import { findUserForLogin } from './users.ts';

export async function restoreAccount(
  pool: Pool,
  input: { email: string; password: string },
  client: ClientInfo,
  sessionTtlHours: number,
): Promise<LoginResult> {
  await waitOutLoginDelay(pool, input.email);
  const found = await findUserForLogin(pool, input.email);
  const valid = found ? await verifyPassword(found.passwordHash, input.password) : await verifyAgainstNothing(input.password);
  if (!found || !valid) {
    const consecutiveFailures = await recordLoginFailure(pool, input.email);
    await recordAudit(pool, {
      actor: 'anonymous',
      action: 'auth.login.failed',
      userId: found?.user.id,
      ip: client.ip,
      details: { consecutiveFailures, via: 'restore' },
    });
    throw new ShipError('SHIP_ERR_INVALID_CREDENTIALS', 'Email or password is incorrect.');
  }
  await clearLoginFailures(pool, input.email);
  await cancelDeletion(pool, { userId: found.user.id, cancelledBy: `user:${found.user.id}`, withinGraceOnly: true, ip: client.ip });
  const { token, session } = await createSession(pool, { userId: found.user.id, ttlHours: sessionTtlHours, ...client });
  await recordAudit(pool, {
    actor: `user:${found.user.id}`,
    action: 'auth.login.succeeded',
    userId: found.user.id,
    ip: client.ip,
    details: { via: 'restore' },
  });
  return { token, user: found.user, session };
}
