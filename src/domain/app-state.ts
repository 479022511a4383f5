/**
 * The state every API instance must agree on: maintenance mode and cache epochs.
 * It lives in the database, so a toggle made through any instance (or the CLI) is the
 * toggle; instances keep a copy fresh with `AppStateWatcher`.
 */
import { ShipError } from '../errors.ts';
import type { Queryable } from '../db/pool.ts';
import { firstRow } from '../db/rows.ts';

/** 'full': every app route answers 503. 'read-only': reads are served, writes answer 503 (migration 0008). */
export type MaintenanceMode = 'full' | 'read-only';

export interface Maintenance {
  readonly enabled: boolean;
  /** Meaningful while enabled; 'full' otherwise. */
  readonly mode: MaintenanceMode;
  readonly message: string | null;
  readonly setBy: string | null;
  readonly since: Date | null;
}

/** An in-app banner (an announced maintenance window, a warning before connections are cut), shown until `until` or until taken down. */
export interface Banner {
  readonly message: string;
  readonly until: Date | null;
  readonly setBy: string | null;
}

export interface AppState {
  readonly maintenance: Maintenance;
  /** Null when none is set or it has run out. */
  readonly banner: Banner | null;
  readonly minimumAppVersion: string | null;
  /** Scope → epoch. Apps compare these with what they saw last and drop their local cache when one grew. */
  readonly cacheEpochs: Readonly<Record<string, number>>;
}

export const DEFAULT_MAINTENANCE_MESSAGE = 'We are performing maintenance. We will be back shortly.';

/** Triggers on `app_state` and `cache_epochs` NOTIFY this channel when either changes (migration 0004). */
export const APP_STATE_NOTIFY_CHANNEL = 'shipshape_app_state';

export async function readAppState(db: Queryable): Promise<AppState> {
  const [state, epochs] = await Promise.all([
    db.query<{
      maintenance_enabled: boolean;
      maintenance_mode: string | null;
      maintenance_message: string | null;
      maintenance_set_by: string | null;
      maintenance_since: Date | null;
      minimum_app_version: string | null;
      banner: { message: string; until: string | null; setBy: string | null } | null;
    }>(
      // to_jsonb: a database not yet at migration 0008 has no maintenance_mode (a restore reads one before migrating it).
      `SELECT maintenance_enabled, to_jsonb(app_state) ->> 'maintenance_mode' AS maintenance_mode, maintenance_message, maintenance_set_by, maintenance_since, minimum_app_version,
              CASE WHEN banner_message IS NOT NULL AND (banner_until IS NULL OR banner_until > now())
                   THEN json_build_object('message', banner_message, 'until', banner_until, 'setBy', banner_set_by) END AS banner
         FROM app_state`,
    ),
    db.query<{ scope: string; epoch: number }>('SELECT scope, epoch FROM cache_epochs ORDER BY scope'),
  ]);
  const row = state.rows[0];
  return {
    maintenance: {
      enabled: row?.maintenance_enabled ?? false,
      mode: modeOf(row?.maintenance_mode),
      message: row?.maintenance_message ?? null,
      setBy: row?.maintenance_set_by ?? null,
      since: row?.maintenance_since ?? null,
    },
    banner: row?.banner ? { message: row.banner.message, until: row.banner.until === null ? null : new Date(row.banner.until), setBy: row.banner.setBy } : null,
    minimumAppVersion: row?.minimum_app_version ?? null,
    cacheEpochs: Object.fromEntries(epochs.rows.map((epoch) => [epoch.scope, Number(epoch.epoch)])),
  };
}

function modeOf(value: string | null | undefined): MaintenanceMode {
  return value === 'read-only' ? 'read-only' : 'full';
}

/**
 * Turns maintenance on (full or read-only) or off; returns the state it replaced, which is what
 * undoing needs. A database not yet at migration 0008 (a maintenance run switches maintenance on
 * before its migrations step) knows full maintenance only.
 */
export async function setMaintenance(
  db: Queryable,
  change: { enabled: boolean; message?: string | null | undefined; setBy: string; mode?: MaintenanceMode | undefined },
): Promise<{ previous: Maintenance; current: Maintenance }> {
  const withModes = await knowsMaintenanceModes(db);
  if (!withModes && change.enabled && change.mode === 'read-only') {
    throw new ShipError(
      'SHIP_ERR_PREREQUISITE_FAILED',
      'Read-only mode needs migration 0008, which this database does not have yet. Run `shipshape db migrate` first, or use full maintenance.',
    );
  }
  const mode = (table: string) => (withModes ? `${table}.maintenance_mode` : "'full'::text");
  const { rows } = await db.query<{
    prev_enabled: boolean;
    prev_mode: string;
    prev_message: string | null;
    prev_set_by: string | null;
    prev_since: Date | null;
    maintenance_enabled: boolean;
    maintenance_mode: string;
    maintenance_message: string | null;
    maintenance_set_by: string | null;
    maintenance_since: Date | null;
  }>(
    `WITH previous AS (SELECT * FROM app_state FOR UPDATE)
     UPDATE app_state SET
        maintenance_enabled = $1::boolean,
        ${withModes ? "maintenance_mode = CASE WHEN $1::boolean THEN $5::text ELSE 'full' END," : ''}
        maintenance_message = CASE WHEN $1::boolean THEN coalesce($2::text, $4::text) ELSE NULL END,
        maintenance_set_by  = $3::text,
        maintenance_since   = CASE WHEN $1::boolean AND previous.maintenance_enabled THEN previous.maintenance_since
                                   WHEN $1::boolean THEN now() ELSE NULL END,
        updated_at = now()
       FROM previous
     RETURNING previous.maintenance_enabled AS prev_enabled, ${mode('previous')} AS prev_mode, previous.maintenance_message AS prev_message,
               previous.maintenance_set_by AS prev_set_by, previous.maintenance_since AS prev_since,
               app_state.maintenance_enabled, ${mode('app_state')} AS maintenance_mode, app_state.maintenance_message, app_state.maintenance_set_by, app_state.maintenance_since`,
    withModes
      ? [change.enabled, change.message ?? null, change.setBy, DEFAULT_MAINTENANCE_MESSAGE, change.mode ?? 'full']
      : [change.enabled, change.message ?? null, change.setBy, DEFAULT_MAINTENANCE_MESSAGE],
  );
  const row = firstRow(rows);
  return {
    previous: { enabled: row.prev_enabled, mode: modeOf(row.prev_mode), message: row.prev_message, setBy: row.prev_set_by, since: row.prev_since },
    current: {
      enabled: row.maintenance_enabled,
      mode: modeOf(row.maintenance_mode),
      message: row.maintenance_message,
      setBy: row.maintenance_set_by,
      since: row.maintenance_since,
    },
  };
}

async function knowsMaintenanceModes(db: Queryable): Promise<boolean> {
  const { rows } = await db.query("SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('app_state') AND attname = 'maintenance_mode' AND NOT attisdropped");
  return rows.length > 0;
}

/** Bumps a scope's cache epoch (creating the scope on first use); returns the new epoch. */
export async function bumpCacheEpoch(db: Queryable, scope: string, clearedBy: string): Promise<number> {
  const { rows } = await db.query<{ epoch: number }>(
    `INSERT INTO cache_epochs (scope, epoch, cleared_at, cleared_by) VALUES ($1::text, 1, now(), $2::text)
     ON CONFLICT (scope) DO UPDATE SET epoch = cache_epochs.epoch + 1, cleared_at = now(), cleared_by = EXCLUDED.cleared_by
     RETURNING epoch`,
    [scope, clearedBy],
  );
  return Number(firstRow(rows).epoch);
}

/** Puts up (or, with `message: null`, takes down) the in-app banner; returns the one it replaced. */
export async function setBanner(db: Queryable, change: { message: string | null; until: Date | null; setBy: string }): Promise<{ previous: Banner | null }> {
  const { rows } = await db.query<{ message: string | null; until: Date | null; set_by: string | null }>(
    `WITH previous AS (SELECT banner_message, banner_until, banner_set_by FROM app_state FOR UPDATE)
     UPDATE app_state SET banner_message = $1::text, banner_until = $2::timestamptz, banner_set_by = $3::text, updated_at = now()
       FROM previous
     RETURNING previous.banner_message AS message, previous.banner_until AS until, previous.banner_set_by AS set_by`,
    [change.message, change.message === null ? null : change.until, change.message === null ? null : change.setBy],
  );
  const row = rows[0];
  return { previous: row?.message ? { message: row.message, until: row.until, setBy: row.set_by } : null };
}
