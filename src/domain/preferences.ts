/**
 * A user's app preferences. A user who never saved any gets the defaults.
 */
import type { Queryable } from '../db/pool.ts';
import { firstRow } from '../db/rows.ts';

export const themes = ['light', 'dark', 'system'] as const;
export type Theme = (typeof themes)[number];

export interface Preferences {
  readonly theme: Theme;
  readonly locale: string | null;
  readonly timeZone: string | null;
  readonly notificationsEnabled: boolean;
}

export const defaultPreferences: Preferences = { theme: 'system', locale: null, timeZone: null, notificationsEnabled: true };

interface PreferencesRow {
  theme: Theme;
  locale: string | null;
  time_zone: string | null;
  notifications_enabled: boolean;
}

const toPreferences = (row: PreferencesRow): Preferences => ({
  theme: row.theme,
  locale: row.locale,
  timeZone: row.time_zone,
  notificationsEnabled: row.notifications_enabled,
});

export async function getPreferences(db: Queryable, userId: string): Promise<Preferences> {
  const { rows } = await db.query<PreferencesRow>('SELECT theme, locale, time_zone, notifications_enabled FROM user_preferences WHERE user_id = $1::uuid', [
    userId,
  ]);
  return rows[0] ? toPreferences(rows[0]) : defaultPreferences;
}

/** Replaces the stored preferences with `preferences` (PUT semantics: omitted fields take their defaults). */
export async function putPreferences(db: Queryable, userId: string, preferences: Partial<Preferences>): Promise<Preferences> {
  const given = Object.fromEntries(Object.entries(preferences).filter(([, value]) => value !== undefined));
  const merged: Preferences = { ...defaultPreferences, ...given };
  const { rows } = await db.query<PreferencesRow>(
    `INSERT INTO user_preferences (user_id, theme, locale, time_zone, notifications_enabled)
     VALUES ($1::uuid, $2::text, $3::text, $4::text, $5::boolean)
     ON CONFLICT (user_id) DO UPDATE SET theme = EXCLUDED.theme, locale = EXCLUDED.locale, time_zone = EXCLUDED.time_zone,
       notifications_enabled = EXCLUDED.notifications_enabled, updated_at = now()
     RETURNING theme, locale, time_zone, notifications_enabled`,
    [userId, merged.theme, merged.locale, merged.timeZone, merged.notificationsEnabled],
  );
  return toPreferences(firstRow(rows));
}
