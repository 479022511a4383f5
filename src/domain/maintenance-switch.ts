/**
 * The one maintenance switch: every change of maintenance mode — the admin API, `shipshape
 * maintenance off`, and every procedure (emergency disable/enable, a maintenance run, a
 * restore) — goes through `switchMaintenance`, which sets the row, records who did it in the
 * audit log, and tells every instance to re-read. Who did it is a structured owner, written
 * into `app_state.maintenance_set_by` and the audit row by one function, so a procedure can
 * later recognise a change it made itself (`ownerLabel`).
 */
import type { Config } from '../config/index.ts';
import type { Queryable } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { announceAppStateChange } from './app-state-announce.ts';
import { setMaintenance, type Maintenance, type MaintenanceMode } from './app-state.ts';
import { recordAudit } from './audit.ts';

/** Who switches maintenance. */
export interface MaintenanceOwner {
  /** Through the admin API, a CLI command, or a procedure run. */
  readonly kind: 'api' | 'cli' | 'procedure';
  /** The operator's name (`cli`, `procedure`), or the API's own name (`admin-api`). */
  readonly name: string;
  /** A procedure's run, so that its undo and a resumed run know their own change. */
  readonly runId?: string | undefined;
  /** Which procedure, where its runs look for what an earlier run of it left (e.g. `maintenance run`). */
  readonly procedure?: string | undefined;
}

/** What `maintenance_set_by` (and a banner's or a push job's `set_by`) records for an owner. */
export function ownerLabel(owner: MaintenanceOwner): string {
  if (owner.kind === 'api') return owner.name;
  if (owner.kind === 'procedure' && owner.runId !== undefined)
    return `operator:${owner.name} (${owner.procedure === undefined ? '' : `${owner.procedure} `}run ${owner.runId})`;
  return `operator:${owner.name}`;
}

/** The audit log's actor for an owner: `admin-api` or `operator:<name>`. */
export function ownerActor(owner: MaintenanceOwner): string {
  return owner.kind === 'api' ? owner.name : `operator:${owner.name}`;
}

/**
 * How instances hear of the change once it is committed. `null` only for a database nothing
 * serves from yet (a restore's new database before the swap).
 */
export type Announce = (() => Promise<void>) | null;

/** For processes without change feeds of their own (the CLI, a procedure): publish on Redis when configured. */
export function announceFrom(config: Pick<Config, 'redisUrl' | 'redisPrefix'>, logger: Logger): () => Promise<void> {
  return () => announceAppStateChange(config, logger);
}

export interface MaintenanceChange {
  readonly enabled: boolean;
  /** 'full' (default) or 'read-only'. */
  readonly mode?: MaintenanceMode | undefined;
  /** Shown to users while enabled; the default message when omitted. */
  readonly message?: string | null | undefined;
  readonly owner: MaintenanceOwner;
  /**
   * An undo putting back a state recorded earlier: the audit row says `restored`, and
   * `maintenance_set_by` gets the holder recorded then (when there was one) instead of the owner.
   */
  readonly restoring?: { readonly setBy: string | null } | undefined;
  /** The client's address, for the audit row (admin API). */
  readonly ip?: string | undefined;
  /** More for the audit row (never secrets). */
  readonly details?: Record<string, unknown> | undefined;
}

/** Sets maintenance, records the audit row, announces; returns the state it replaced and the new one. */
export async function switchMaintenance(
  db: Queryable,
  change: MaintenanceChange,
  announce: Announce,
): Promise<{ previous: Maintenance; current: Maintenance }> {
  const setBy = change.restoring?.setBy ?? ownerLabel(change.owner);
  const { previous, current } = await setMaintenance(db, { enabled: change.enabled, mode: change.mode, message: change.message, setBy });
  await recordAudit(db, {
    actor: ownerActor(change.owner),
    action: change.restoring ? 'admin.maintenance.restored' : change.enabled ? 'admin.maintenance.enabled' : 'admin.maintenance.disabled',
    ip: change.ip,
    details: {
      ...(change.owner.runId === undefined ? {} : { runId: change.owner.runId }),
      via: change.owner.kind,
      enabled: current.enabled,
      message: current.message,
      mode: current.mode,
      wasEnabled: previous.enabled,
      ...change.details,
    },
  });
  if (announce) await announce();
  return { previous, current };
}
