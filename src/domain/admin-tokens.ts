/**
 * Admin bearer tokens as hashed records, so credentials can be rotated with an overlap:
 * a rotation issues a new token (shown once, stored as its sha256) and gives every other live
 * token an expiry `overlap` from now. Until then old and new both work; after, only the new.
 *
 * ADMIN_TOKEN from the environment stays the bootstrap and break-glass token: it is valid as
 * long as no rotation has recorded it here. The first rotation records its hash (source
 * `environment`) with the same expiry as everything else, so it stops working with the rest;
 * setting ADMIN_TOKEN to the new token then keeps the environment and the database in step.
 *
 * Presented tokens are found by the sha256 of what was sent (like sessions: the tokens carry
 * 256 bits of entropy, so the hash reveals nothing useful); the environment token is compared
 * in constant time.
 */
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { firstRow } from '../db/rows.ts';
import { ShipError } from '../errors.ts';
import { hashToken, issueToken, secretsEqual } from './secrets.ts';

export type AdminTokenState = 'active' | 'expiring' | 'expired' | 'revoked';

export interface AdminToken {
  readonly id: string;
  readonly label: string;
  /** `issued` by Shipshape, or the ADMIN_TOKEN of the `environment`, recorded by a rotation. */
  readonly source: 'issued' | 'environment';
  readonly createdAt: Date;
  readonly createdBy: string;
  readonly expiresAt: Date | null;
  readonly revokedAt: Date | null;
  readonly lastUsedAt: Date | null;
  readonly state: AdminTokenState;
}

export type AdminCheck =
  | { readonly ok: true; readonly tokenId: string | null; readonly via: 'database' | 'environment' }
  | { readonly ok: false; readonly reason: 'disabled' | 'missing' | 'unknown' }
  | { readonly ok: false; readonly reason: 'expired' | 'revoked'; readonly at: Date };

interface TokenRow {
  id: string;
  label: string;
  source: 'issued' | 'environment';
  created_at: Date;
  created_by: string;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  live: boolean;
}

const COLUMNS =
  'id, label, source, created_at, created_by, expires_at, revoked_at, last_used_at, (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS live';
/** last_used_at is a hint for `admin-token list`, not an audit trail: written at most once a minute. */
const LAST_USED_RESOLUTION = "interval '1 minute'";
const UNDEFINED_TABLE = '42P01';

/**
 * Whether `presented` is a valid admin token right now. Before migration 0005 exists (a
 * server started on an older schema), only the environment token is known.
 */
export async function verifyAdminToken(db: Queryable, presented: string | undefined, environmentToken: string | undefined): Promise<AdminCheck> {
  let row: TokenRow | undefined;
  let anyLive: boolean;
  try {
    if (presented !== undefined && presented !== '') {
      const { rows } = await db.query<TokenRow>(`SELECT ${COLUMNS} FROM admin_tokens WHERE token_hash = $1::bytea`, [hashToken(presented)]);
      row = rows[0];
    }
    if (row !== undefined) {
      if (row.revoked_at !== null) return { ok: false, reason: 'revoked', at: row.revoked_at };
      if (!row.live && row.expires_at !== null) return { ok: false, reason: 'expired', at: row.expires_at };
      await db.query(
        `UPDATE admin_tokens SET last_used_at = now() WHERE id = $1::uuid AND (last_used_at IS NULL OR last_used_at < now() - ${LAST_USED_RESOLUTION})`,
        [row.id],
      );
      return { ok: true, tokenId: row.id, via: 'database' };
    }
    anyLive = environmentToken !== undefined || (await hasLiveToken(db));
  } catch (error) {
    if ((error as { code?: string }).code !== UNDEFINED_TABLE) throw error;
    anyLive = environmentToken !== undefined;
  }
  if (!anyLive) return { ok: false, reason: 'disabled' };
  if (presented === undefined || presented === '') return { ok: false, reason: 'missing' };
  if (environmentToken !== undefined && secretsEqual(presented, environmentToken)) return { ok: true, tokenId: null, via: 'environment' };
  return { ok: false, reason: 'unknown' };
}

/** Throws the ShipError an API client should see for a failed check. */
export function adminCheckError(check: Exclude<AdminCheck, { ok: true }>): ShipError {
  switch (check.reason) {
    case 'disabled':
      return new ShipError(
        'SHIP_ERR_ADMIN_DISABLED',
        'Admin routes are disabled because ADMIN_TOKEN is not set and no admin token was issued. Set ADMIN_TOKEN (at least 16 characters) and restart the server, or issue one with `shipshape admin-token rotate`.',
      );
    case 'expired':
      return new ShipError(
        'SHIP_ERR_FORBIDDEN',
        `This admin token expired at ${check.at.toISOString()} after a credential rotation. Use the newest admin token (\`shipshape admin-token list\` shows which are live).`,
      );
    case 'revoked':
      return new ShipError(
        'SHIP_ERR_FORBIDDEN',
        `This admin token was revoked at ${check.at.toISOString()}. Use a live admin token (\`shipshape admin-token list\`).`,
      );
    case 'missing':
    case 'unknown':
      return new ShipError(
        'SHIP_ERR_FORBIDDEN',
        'Admin routes need Authorization: Bearer <admin token> (ADMIN_TOKEN, or one issued by `shipshape admin-token rotate`).',
      );
  }
}

async function hasLiveToken(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ live: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM admin_tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS live',
  );
  return rows[0]?.live === true;
}

export interface IssuedAdminToken {
  /** The token itself: shown once, never stored. */
  readonly token: string;
  readonly record: AdminToken;
}

/** Issues a token that lives until `expiresAt` (or until a rotation or revocation ends it). */
export async function issueAdminToken(
  db: Queryable,
  input: { label: string; createdBy: string; expiresAt?: Date | null | undefined },
): Promise<IssuedAdminToken> {
  const issued = issueToken();
  const { rows } = await db.query<TokenRow>(
    `INSERT INTO admin_tokens (label, source, token_hash, created_by, expires_at) VALUES ($1::text, 'issued', $2::bytea, $3::text, $4::timestamptz)
     RETURNING ${COLUMNS}`,
    [input.label, issued.hash, input.createdBy, input.expiresAt ?? null],
  );
  return { token: issued.token, record: toToken(firstRow(rows)) };
}

export interface Rotation extends IssuedAdminToken {
  /** The tokens that were live and now expire at `overlapEndsAt` (or sooner, if they already did). */
  readonly expiring: AdminToken[];
  readonly overlapEndsAt: Date;
}

/**
 * Issues a new admin token and gives every other live one (the environment's ADMIN_TOKEN
 * included) an expiry `overlapMs` from now; tokens already expiring sooner keep their time.
 * All in one transaction: either the new token exists and the old ones are on their way out,
 * or nothing changed.
 */
export async function rotateAdminTokens(
  pool: Pool,
  input: { createdBy: string; overlapMs: number; environmentToken: string | undefined; label?: string | undefined },
): Promise<Rotation> {
  return withTransaction(pool, async (client) => {
    const { rows: clock } = await client.query<{ now: Date }>('SELECT now() AS now');
    const overlapEndsAt = new Date(clock[0]!.now.getTime() + input.overlapMs);
    if (input.environmentToken !== undefined) {
      await client.query(
        `INSERT INTO admin_tokens (label, source, token_hash, created_by) VALUES ('ADMIN_TOKEN (environment)', 'environment', $1::bytea, $2::text)
         ON CONFLICT (token_hash) DO NOTHING`,
        [hashToken(input.environmentToken), input.createdBy],
      );
    }
    const { rows: expiring } = await client.query<TokenRow>(
      `UPDATE admin_tokens SET expires_at = LEAST(coalesce(expires_at, 'infinity'::timestamptz), $1::timestamptz)
        WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
        RETURNING ${COLUMNS}`,
      [overlapEndsAt],
    );
    const label = input.label ?? `rotated by ${input.createdBy} at ${clock[0]!.now.toISOString()}`;
    const issued = await issueAdminToken(client, { label, createdBy: input.createdBy });
    return { ...issued, expiring: expiring.map(toToken), overlapEndsAt };
  });
}

export async function listAdminTokens(db: Queryable, options: { includeDead?: boolean } = {}): Promise<AdminToken[]> {
  const { rows } = await db.query<TokenRow>(
    `SELECT ${COLUMNS} FROM admin_tokens
      WHERE $1::boolean OR coalesce(LEAST(revoked_at, expires_at), 'infinity'::timestamptz) > now() - interval '7 days'
      ORDER BY created_at DESC`,
    [options.includeDead === true],
  );
  return rows.map(toToken);
}

/** Ends a token now. Throws SHIP_ERR_NOT_FOUND for an unknown id. */
export async function revokeAdminToken(db: Queryable, id: string, revokedBy: string): Promise<AdminToken> {
  if (!/^[0-9a-f-]{36}$/i.test(id))
    throw new ShipError('SHIP_ERR_VALIDATION', `"${id.slice(0, 60)}" is not an admin token id. \`shipshape admin-token list\` shows them.`);
  const { rows } = await db.query<TokenRow>(
    `UPDATE admin_tokens SET revoked_at = coalesce(revoked_at, now()), revoked_by = coalesce(revoked_by, $2::text) WHERE id = $1::uuid RETURNING ${COLUMNS}`,
    [id, revokedBy],
  );
  const row = rows[0];
  if (!row) throw new ShipError('SHIP_ERR_NOT_FOUND', `No admin token ${id}. \`shipshape admin-token list\` shows them.`);
  return toToken(row);
}

function toToken(row: TokenRow): AdminToken {
  const state: AdminTokenState = row.revoked_at !== null ? 'revoked' : !row.live ? 'expired' : row.expires_at !== null ? 'expiring' : 'active';
  return {
    id: row.id,
    label: row.label,
    source: row.source,
    createdAt: row.created_at,
    createdBy: row.created_by,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
    state,
  };
}
