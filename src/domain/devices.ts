/**
 * Push devices: the Expo push tokens the app registers for the signed-in user.
 *
 * A token identifies an app install, not a person. Registering a token that belongs to
 * another account moves it (someone else signed in on that phone), and registering it again
 * after Expo reported it gone reactivates it (the app was reinstalled or permission granted).
 */
import { ShipError } from '../errors.ts';
import type { Queryable } from '../db/pool.ts';
import { firstRow } from '../db/rows.ts';

export const platforms = ['ios', 'android'] as const;
export type Platform = (typeof platforms)[number];

export interface Device {
  readonly token: string;
  readonly platform: Platform;
  readonly registeredAt: Date;
}

/** What Expo's own SDK accepts as a push token (`Expo.isExpoPushToken`). */
export const EXPO_PUSH_TOKEN_PATTERN = /^(Expo(nent)?PushToken\[[^\]\s]{1,200}\]|[a-z\d]{8}-[a-z\d]{4}-[a-z\d]{4}-[a-z\d]{4}-[a-z\d]{12})$/i;

export async function registerDevice(db: Queryable, userId: string, input: { token: string; platform: Platform }): Promise<Device> {
  const { rows } = await db.query<{ token: string; platform: Platform; registered_at: Date }>(
    `INSERT INTO devices (token, user_id, platform) VALUES ($1::text, $2::uuid, $3::text)
     ON CONFLICT (token) DO UPDATE SET user_id = EXCLUDED.user_id, platform = EXCLUDED.platform,
       registered_at = now(), deactivated_at = NULL, deactivated_reason = NULL
     RETURNING token, platform, registered_at`,
    [input.token, userId, input.platform],
  );
  const row = firstRow(rows);
  return { token: row.token, platform: row.platform, registeredAt: row.registered_at };
}

/** Forgets the user's device (sign-out, notifications turned off in the app). */
export async function unregisterDevice(db: Queryable, userId: string, token: string): Promise<void> {
  const { rowCount } = await db.query('DELETE FROM devices WHERE token = $1::text AND user_id = $2::uuid', [token, userId]);
  if (!rowCount) {
    throw new ShipError('SHIP_ERR_NOT_FOUND', 'This device token is not registered to your account. Nothing to remove.');
  }
}

/**
 * Stops sending to tokens Expo reported as gone. A token registered again after `reportedFor`
 * (the send the report is about) is left alone: the report predates the app's return.
 */
export async function deactivateDevices(db: Queryable, tokens: readonly string[], reason: string, reportedFor: Date): Promise<number> {
  if (tokens.length === 0) return 0;
  const { rowCount } = await db.query(
    `UPDATE devices SET deactivated_at = now(), deactivated_reason = $2::text
      WHERE token = ANY($1::text[]) AND deactivated_at IS NULL AND registered_at <= $3::timestamptz`,
    [tokens, reason, reportedFor],
  );
  return rowCount ?? 0;
}
