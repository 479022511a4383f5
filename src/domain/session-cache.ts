/**
 * Recently authenticated sessions, held in this instance's memory so that an authenticated
 * request costs the database only the statement it came for.
 *
 * Revocation must still reach every instance at once. Whatever ends or changes a session in
 * the database — logout, a password change or reset, `user revoke`, terminating a session, an
 * erasure deleting the user, a DBA's UPDATE — NOTIFYs `shipshape_sessions` in the same
 * transaction (migration 0010), on the LISTEN connection the app state already uses
 * (src/runtime/app-state-feeds.ts). So the cache is used only while those notifications are
 * known to arrive:
 *
 *   - `trust()` once the LISTEN connection is up and its self-test NOTIFY came back;
 *   - `distrust()` as soon as that connection drops (notifications are then being lost) or the
 *     self-test fails (PgBouncer in transaction mode, the embedded database): every lookup goes
 *     to the database again, exactly as without a cache, until the connection is back.
 *
 * A lookup that was in flight when a notification arrived is not stored (the generation
 * moved): its row may predate the revocation the notification announced. Entries also expire
 * after `ttlMs` (a minute, the resolution of last_seen_at, which only database lookups write)
 * and never outlive the session's own expiry.
 */
import type { Queryable } from '../db/pool.ts';
import { hashToken } from './secrets.ts';
import { LAST_SEEN_RESOLUTION_SECONDS, type Authenticated, type SignIn } from './sessions.ts';

/** The NOTIFY channel of migration 0010. */
export const SESSIONS_NOTIFY_CHANNEL = 'shipshape_sessions';

export interface SessionCacheOptions {
  readonly ttlMs?: number;
  /** Bound on memory: the oldest entries go first beyond it (an entry is well under 1 KB). */
  readonly maxEntries?: number;
}

interface Entry {
  readonly auth: Authenticated;
  readonly until: number;
}

export class SessionCache {
  private readonly entries = new Map<string, Entry>();
  private readonly keyBySession = new Map<string, string>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private generation = 0;
  private trusted = false;
  private counts = { hits: 0, lookups: 0, notifications: 0, distrusts: 0 };

  constructor(options: SessionCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? LAST_SEEN_RESOLUTION_SECONDS * 1000;
    this.maxEntries = options.maxEntries ?? 100_000;
  }

  /** Whether cached sessions are being used (notifications are known to arrive). */
  get active(): boolean {
    return this.trusted;
  }

  /** Hits and lookups since start, for /metrics and the benchmark. */
  get stats(): { readonly hits: number; readonly lookups: number; readonly notifications: number; readonly distrusts: number; readonly size: number } {
    return { ...this.counts, size: this.entries.size };
  }

  /** Revocations are being delivered: cached sessions may be used. Starts from empty (some may have been missed). */
  trust(): void {
    this.clear();
    this.trusted = true;
  }

  /** Revocations may be lost from now on: every lookup goes to the database. */
  distrust(): void {
    this.counts.distrusts += 1;
    this.trusted = false;
    this.clear();
  }

  /**
   * The live session `token` belongs to, as `authenticate` in sessions.ts answers it. From
   * memory when cached (only `auth`); otherwise from the database by `signIn` (`authenticateHash`,
   * or a statement that does more), whose whole answer is returned: a route can have the database do its own
   * work for the user in the same statement (tasks.ts, `signInListingFirstPage`). Only the
   * session is ever cached.
   */
  async authenticate<Found extends SignIn = SignIn>(
    db: Queryable,
    token: string,
    signIn: (db: Queryable, tokenHash: Buffer) => Promise<Found | undefined>,
  ): Promise<Found | { readonly auth: Authenticated } | undefined> {
    const hash = hashToken(token);
    if (!this.trusted) return signIn(db, hash);
    this.counts.lookups += 1;
    const key = hash.toString('base64');
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry) {
      if (entry.until > now && entry.auth.session.expiresAt.getTime() > now) {
        this.counts.hits += 1;
        return { auth: entry.auth };
      }
      this.remove(key);
    }
    const generation = this.generation;
    const found = await signIn(db, hash);
    if (found && this.trusted && generation === this.generation) this.store(key, found.auth, now);
    return found;
  }

  /** A `shipshape_sessions` notification: `s:<session id>`, `u:<user id>` or `all`. */
  changed(payload: string): void {
    this.counts.notifications += 1;
    this.generation += 1;
    if (payload.startsWith('s:')) this.forgetSession(payload.slice(2));
    else if (payload.startsWith('u:')) this.forgetUser(payload.slice(2));
    else this.clear();
  }

  /** Drops one session at once on this instance (its NOTIFY follows for the others). */
  forgetSession(sessionId: string): void {
    this.generation += 1;
    const key = this.keyBySession.get(sessionId);
    if (key !== undefined) this.remove(key);
  }

  /** Drops every session of a user on this instance; rare (password change, sign out everywhere), so a scan is fine. */
  forgetUser(userId: string): void {
    this.generation += 1;
    for (const [key, entry] of this.entries) {
      if (entry.auth.user.id === userId) this.remove(key);
    }
  }

  clear(): void {
    this.generation += 1;
    this.entries.clear();
    this.keyBySession.clear();
  }

  private store(key: string, auth: Authenticated, now: number): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.remove(oldest.value);
    }
    this.entries.set(key, { auth, until: now + this.ttlMs });
    this.keyBySession.set(auth.session.id, key);
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.keyBySession.delete(entry.auth.session.id);
  }
}
