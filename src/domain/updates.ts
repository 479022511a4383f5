/**
 * Over-the-air updates: publishing an `npx expo export` output, and deciding which update a
 * device gets (Expo Updates protocol v1; the HTTP side is src/http/routes/updates.ts).
 *
 * What a channel serves, for one runtime version:
 *   - an open rollout (active or halted): devices whose bucket is under its percentage get the
 *     rollout's update, the others what the channel served before (its control);
 *   - otherwise the newest release not rolled back;
 *   - with none left after a rollback: the directive to go back to the build's embedded update;
 *   - otherwise nothing (the protocol's `noUpdateAvailable`).
 *
 * A device's bucket is the first 32 bits of SHA-256(EAS-Client-ID ":" update id), scaled to
 * 0–9999: the same device always lands in the same bucket for an update, so it never flips
 * between updates on the way up (5 % → 25 % only adds devices), while each update draws a
 * fresh sample of devices (the 1 % of one rollout are not the 1 % of the next).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ObjectStore } from '../adapters/storage/index.ts';
import type { Pool, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { ShipError } from '../errors.ts';
import { recordAudit } from './audit.ts';
import { readExport, updatePlatforms, type PlatformFiles, type UpdateAsset, type UpdatePlatform } from './update-export.ts';

export { updatePlatforms, type UpdatePlatform } from './update-export.ts';

export const CHANNEL_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const RUNTIME_VERSION_PATTERN = /^[A-Za-z0-9._+:@-]{1,255}$/;

/** Buckets per device: percentages are honoured to 0.01. */
export const BUCKETS = 10_000;

export interface Update {
  readonly id: string;
  readonly channel: string;
  readonly runtimeVersion: string;
  readonly platforms: Partial<Record<UpdatePlatform, PlatformFiles>>;
  readonly metadata: Record<string, string>;
  readonly extra: Record<string, unknown>;
  readonly message: string | null;
  readonly publishedBy: string;
  readonly createdAt: Date;
}

/** The device's bucket for an update, 0 ≤ bucket < BUCKETS. */
export function deviceBucket(clientId: string, updateId: string): number {
  const digest = createHash('sha256').update(`${clientId}:${updateId}`).digest();
  return Math.floor((digest.readUInt32BE(0) / 0x1_0000_0000) * BUCKETS);
}

/** Whether a device is among the `percent` % that get the update. */
export function inRollout(clientId: string, updateId: string, percent: number): boolean {
  return deviceBucket(clientId, updateId) < Math.round(percent * (BUCKETS / 100));
}

// ---------------------------------------------------------------------------------------------
// Publishing

export interface PublishInput {
  readonly distDir: string;
  readonly channel: string;
  readonly runtimeVersion: string;
  readonly message?: string | undefined;
  readonly actor: string;
  /** Stored but not served until `update rollout` (otherwise every device gets it at once). */
  readonly staged: boolean;
}

export interface PublishResult {
  readonly update: Update;
  readonly uploaded: number;
  readonly alreadyStored: number;
  readonly released: boolean;
}

export function assetStorageKey(sha256: string): string {
  return `assets/${sha256}`;
}

export async function publishUpdate(pool: Pool, store: ObjectStore, input: PublishInput): Promise<PublishResult> {
  checkChannel(input.channel);
  checkRuntimeVersion(input.runtimeVersion);
  const exported = await readExport(input.distDir);
  if (!input.staged) await refuseWhileRolloutOpen(pool, input.channel, input.runtimeVersion);
  let uploaded = 0;
  let alreadyStored = 0;
  for (const { asset, content } of exported.files.values()) {
    const key = assetStorageKey(asset.sha256);
    const existing = await store.head(key);
    if (existing?.bytes === asset.bytes) {
      alreadyStored++;
    } else {
      const stored = await store.putBuffer(key, content, { contentType: asset.contentType });
      // The store measures what it wrote: a different digest means the bytes did not arrive whole.
      if (stored.sha256 !== asset.sha256) {
        throw new ShipError(
          'SHIP_ERR_STORAGE_WRITE_FAILED',
          `${key} was stored with SHA-256 ${stored.sha256}, expected ${asset.sha256}. Publish again; if it repeats, check the storage (${store.location}).`,
        );
      }
      uploaded++;
    }
  }
  const id = randomUUID();
  const extra = exported.expoClient ? { expoClient: exported.expoClient } : {};
  const update = await withTransaction(pool, async (client) => {
    for (const { asset } of exported.files.values()) {
      await client.query('INSERT INTO ota_assets (sha256, content_type, bytes) VALUES ($1::text, $2::text, $3::bigint) ON CONFLICT (sha256) DO NOTHING', [
        asset.sha256,
        asset.contentType,
        asset.bytes,
      ]);
    }
    const { rows } = await client.query<UpdateRow>(
      `INSERT INTO ota_updates (id, channel, runtime_version, platforms, extra, message, published_by)
       VALUES ($1::uuid, $2::text, $3::text, $4::jsonb, $5::jsonb, $6::text, $7::text) RETURNING ${UPDATE_COLUMNS}`,
      [id, input.channel, input.runtimeVersion, JSON.stringify(exported.platforms), JSON.stringify(extra), input.message ?? null, input.actor],
    );
    if (!input.staged) await releaseUpdate(client, { updateId: id, channel: input.channel, runtimeVersion: input.runtimeVersion, actor: input.actor });
    await recordAudit(client, {
      actor: input.actor,
      action: 'update.published',
      details: { update: id, channel: input.channel, runtimeVersion: input.runtimeVersion, platforms: Object.keys(exported.platforms), staged: input.staged },
    });
    return toUpdate(rows[0]!);
  });
  return { update, uploaded, alreadyStored, released: !input.staged };
}

/** Makes `updateId` what the channel serves to every device. */
export async function releaseUpdate(db: Queryable, input: { updateId: string; channel: string; runtimeVersion: string; actor: string }): Promise<void> {
  await db.query('INSERT INTO ota_releases (channel, runtime_version, update_id, released_by) VALUES ($1::text, $2::text, $3::uuid, $4::text)', [
    input.channel,
    input.runtimeVersion,
    input.updateId,
    input.actor,
  ]);
}

async function refuseWhileRolloutOpen(db: Queryable, channel: string, runtimeVersion: string): Promise<void> {
  const { rows } = await db.query<{ id: string; update_id: string }>(
    "SELECT id, update_id FROM ota_rollouts WHERE channel = $1::text AND runtime_version = $2::text AND status IN ('active', 'halted')",
    [channel, runtimeVersion],
  );
  const open = rows[0];
  if (open) {
    throw new ShipError(
      'SHIP_ERR_PREREQUISITE_FAILED',
      `Update ${open.update_id} is rolling out on ${channel} (runtime ${runtimeVersion}); releasing another to everyone now would end that rollout's comparison. Publish with --staged, or finish it first (\`shipshape update rollback ${open.update_id}\` or let it complete).`,
    );
  }
}

export function checkChannel(channel: string): void {
  if (!CHANNEL_PATTERN.test(channel))
    throw new ShipError('SHIP_ERR_VALIDATION', `--channel ${JSON.stringify(channel)}: use 1-64 letters, digits or ._- (e.g. production).`);
}

export function checkRuntimeVersion(runtimeVersion: string): void {
  if (!RUNTIME_VERSION_PATTERN.test(runtimeVersion)) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `--runtime-version ${JSON.stringify(runtimeVersion)}: use the app's runtimeVersion (1-255 letters, digits or ._+:@-, e.g. 1.0.0).`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

const UPDATE_COLUMNS = 'id, channel, runtime_version, platforms, metadata, extra, message, published_by, created_at';

interface UpdateRow {
  id: string;
  channel: string;
  runtime_version: string;
  platforms: Partial<Record<UpdatePlatform, PlatformFiles>>;
  metadata: Record<string, string>;
  extra: Record<string, unknown>;
  message: string | null;
  published_by: string;
  created_at: Date;
}

function toUpdate(row: UpdateRow): Update {
  return {
    id: row.id,
    channel: row.channel,
    runtimeVersion: row.runtime_version,
    platforms: row.platforms,
    metadata: row.metadata,
    extra: row.extra,
    message: row.message,
    publishedBy: row.published_by,
    createdAt: row.created_at,
  };
}

export async function getUpdate(db: Queryable, id: string): Promise<Update | undefined> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return undefined;
  const { rows } = await db.query<UpdateRow>(`SELECT ${UPDATE_COLUMNS} FROM ota_updates WHERE id = $1::uuid`, [id]);
  return rows[0] ? toUpdate(rows[0]) : undefined;
}

export async function requireUpdate(db: Queryable, id: string): Promise<Update> {
  const update = await getUpdate(db, id);
  if (!update) throw new ShipError('SHIP_ERR_NOT_FOUND', `No update has the id ${JSON.stringify(id)}. \`shipshape update list\` shows the published ones.`);
  return update;
}

/** An update as `update list` shows it: where it is served and how far. */
export interface UpdateSummary {
  readonly id: string;
  readonly channel: string;
  readonly runtimeVersion: string;
  readonly platforms: readonly string[];
  readonly message: string | null;
  readonly createdAt: Date;
  /** released (served to all), rolling-out N %, halted at N %, rolled-back, completed, staged. */
  readonly state: string;
}

export async function listUpdates(db: Queryable, filter: { channel?: string | undefined; limit?: number } = {}): Promise<UpdateSummary[]> {
  const { rows } = await db.query<
    UpdateRow & { released: boolean; release_rolled_back: boolean; rollout_status: string | null; rollout_percent: string | null }
  >(
    `SELECT ${UPDATE_COLUMNS.split(', ')
      .map((column) => `u.${column}`)
      .join(', ')},
            EXISTS (SELECT 1 FROM ota_releases r WHERE r.update_id = u.id AND r.rolled_back_at IS NULL) AS released,
            EXISTS (SELECT 1 FROM ota_releases r WHERE r.update_id = u.id AND r.rolled_back_at IS NOT NULL) AS release_rolled_back,
            ro.status AS rollout_status, ro.percent::text AS rollout_percent
       FROM ota_updates u
       LEFT JOIN LATERAL (SELECT status, percent FROM ota_rollouts WHERE update_id = u.id ORDER BY started_at DESC LIMIT 1) ro ON true
      WHERE ($1::text IS NULL OR u.channel = $1::text)
      ORDER BY u.created_at DESC
      LIMIT $2::int`,
    [filter.channel ?? null, filter.limit ?? 50],
  );
  return rows.map((row) => ({
    id: row.id,
    channel: row.channel,
    runtimeVersion: row.runtime_version,
    platforms: Object.keys(row.platforms),
    message: row.message,
    createdAt: row.created_at,
    state: stateOf(row),
  }));
}

function stateOf(row: { released: boolean; release_rolled_back: boolean; rollout_status: string | null; rollout_percent: string | null }): string {
  if (row.released) return 'released';
  const percent = row.rollout_percent === null ? '' : ` ${Number(row.rollout_percent)} %`;
  if (row.rollout_status === 'active') return `rolling out${percent}`;
  if (row.rollout_status === 'halted') return `halted at${percent}`;
  if (row.rollout_status === 'rolled-back' || row.release_rolled_back) return 'rolled back';
  return 'staged';
}

// ---------------------------------------------------------------------------------------------
// Serving

/** What one channel serves for one runtime version, read in one statement. */
export interface ChannelState {
  readonly rollout: { readonly id: string; readonly updateId: string; readonly percent: number } | undefined;
  /** The update released to everyone (and the control of a rollout), if any. */
  readonly headUpdateId: string | undefined;
  /** When the last rollback that left the channel without a release happened. */
  readonly rolledBackAt: Date | undefined;
}

export async function readChannelState(db: Queryable, channel: string, runtimeVersion: string): Promise<ChannelState> {
  const { rows } = await db.query<{
    rollout_id: string | null;
    rollout_update: string | null;
    percent: string | null;
    head: string | null;
    rolled_back_at: Date | null;
  }>(
    `SELECT ro.id AS rollout_id, ro.update_id AS rollout_update, ro.percent::text AS percent,
            (SELECT update_id FROM ota_releases WHERE channel = $1::text AND runtime_version = $2::text AND rolled_back_at IS NULL ORDER BY id DESC LIMIT 1) AS head,
            GREATEST(
              (SELECT max(rolled_back_at) FROM ota_releases WHERE channel = $1::text AND runtime_version = $2::text),
              (SELECT max(updated_at) FROM ota_rollouts WHERE channel = $1::text AND runtime_version = $2::text AND status = 'rolled-back')
            ) AS rolled_back_at
       FROM (SELECT 1) one
       LEFT JOIN ota_rollouts ro ON ro.channel = $1::text AND ro.runtime_version = $2::text AND ro.status IN ('active', 'halted')`,
    [channel, runtimeVersion],
  );
  const row = rows[0];
  return {
    rollout: row?.rollout_id && row.rollout_update ? { id: row.rollout_id, updateId: row.rollout_update, percent: Number(row.percent) } : undefined,
    headUpdateId: row?.head ?? undefined,
    rolledBackAt: row?.rolled_back_at ?? undefined,
  };
}

export type Served =
  | { readonly kind: 'update'; readonly updateId: string }
  | { readonly kind: 'rollBackToEmbedded'; readonly commitTime: Date }
  | { readonly kind: 'none' };

/** Which update (or directive) a device gets from a channel state. */
export function choose(state: ChannelState, clientId: string | undefined): Served {
  if (state.rollout) {
    // A request without EAS-Client-ID cannot be bucketed stably: it gets the control, never the candidate.
    if (clientId !== undefined && inRollout(clientId, state.rollout.updateId, state.rollout.percent))
      return { kind: 'update', updateId: state.rollout.updateId };
  }
  if (state.headUpdateId) return { kind: 'update', updateId: state.headUpdateId };
  if (state.rolledBackAt) return { kind: 'rollBackToEmbedded', commitTime: state.rolledBackAt };
  return { kind: 'none' };
}

export function isUpdatePlatform(value: string): value is UpdatePlatform {
  return (updatePlatforms as readonly string[]).includes(value);
}

/** The stored bytes of an asset and its content type; undefined when no update has it. */
export async function openAsset(
  db: Queryable,
  store: ObjectStore,
  sha256: string,
): Promise<{ body: Readable; contentType: string; bytes: number } | undefined> {
  const { rows } = await db.query<{ content_type: string; bytes: string }>('SELECT content_type, bytes::text FROM ota_assets WHERE sha256 = $1::text', [
    sha256,
  ]);
  const row = rows[0];
  if (!row) return undefined;
  return { body: await store.get(assetStorageKey(sha256)), contentType: row.content_type, bytes: Number(row.bytes) };
}

export type { UpdateAsset, PlatformFiles };
