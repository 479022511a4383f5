/**
 * The server-side cache for the hot read: the first page of a user's task list.
 *
 * Freshness does not depend on anyone remembering to invalidate. Every statement that writes
 * a user's tasks replaces that user's row in `task_list_versions` in the same transaction (a
 * trigger, so the API, the CLI, an erasure and a DBA's UPDATE all count), and entries are
 * keyed by that version:
 *
 *   read:  v1 ← version; hit under v1 → serve it.
 *          miss → load the page; v2 ← version; store under v1 only if v1 = v2.
 *
 * An entry stored under v is therefore exactly the data at v: had any write committed
 * between the two version reads, v2 would differ (versions are random and never repeat)
 * and nothing is stored. Once a write has committed — before its response is sent — every
 * later read sees the new version, on every instance, whatever the store. The price is one
 * primary-key lookup per read instead of the list query; losing a Redis, a notification or
 * an instance can cost speed but never correctness.
 *
 * Keys also carry the `all`, `tasks` and `user:<id>` cache epochs, so `cache clear` retires
 * entries everywhere even before the stores are flushed.
 *
 * An entry is the page's response body, deflated. A hit is sent as it is stored, never parsed
 * or serialised again (zlib's checksum still makes a damaged entry a miss); and a first page of
 * 50 tasks, ~10 KB of JSON, takes ~3.5 KB, so the store's bound holds three times the readers. That matters when
 * readers come back in turn: an LRU smaller than the set of readers it serves hits almost never.
 */
import { deflateSync, inflateSync } from 'node:zlib';
import { LRUCache } from 'lru-cache';
import type { CacheStore } from '../adapters/cache/types.ts';
import { prepared, type Queryable } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import type { TaskPage } from './tasks.ts';
import { describeError } from '../errors.ts';

export interface TaskListCacheOptions {
  readonly db: Queryable;
  readonly store: CacheStore;
  readonly logger: Logger;
  /** The current cache epochs by scope (`all`, `tasks`, `user:<id>`), from the app state. */
  readonly epochs: () => Readonly<Record<string, number>>;
  /** Expiry of each entry: the bound on memory held by entries nobody will ask for again. */
  readonly ttlMs?: number;
}

/** A page loaded together with the list version it shows (`listFirstPageVersioned`). */
export interface VersionedPage {
  readonly page: TaskPage;
  readonly version: string | null;
}

export interface CachedRead {
  /** The page as its JSON response body. */
  readonly body: string;
  readonly hit: boolean;
}

/** Bumped when the stored shape changes, so entries written by an older release are never read. */
const FORMAT = 'p2';
/** The version of a list whose tasks have not been written since versions began. */
const INITIAL_VERSION = 'initial';
const DEFAULT_TTL_MS = 10 * 60_000;
const WARN_EVERY_MS = 30_000;
/** Readers whose last page's version is remembered (`heldVersion`); an entry is ~100 bytes. */
const MAX_HINTS = 50_000;

export class TaskListCache {
  private readonly ttlMs: number;
  private lastWarning = 0;
  /** reader → the raw list version (null: never written) of the page it was last served, by limit. */
  private readonly hints = new LRUCache<string, { version: string | null }>({ max: MAX_HINTS });

  private readonly options: TaskListCacheOptions;

  constructor(options: TaskListCacheOptions) {
    this.options = options;
    this.ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  }

  get kind(): CacheStore['kind'] {
    return this.options.store.kind;
  }

  /**
   * The first page of `userId`'s tasks with `limit`, from the cache when it is current, else
   * from `load`. A hit costs one primary-key query. A `load` that returns the version it read
   * the page at (`listFirstPageVersioned`) is stored under that version, which saves the
   * second version read of a miss. `knownVersion`: the version read at the start of this
   * request (`authenticateHash`), which saves the first. `reader`: who asks (a session's token
   * hash), for `heldVersion`.
   */
  async firstPage(
    userId: string,
    limit: number,
    load: () => Promise<TaskPage | VersionedPage>,
    options: { knownVersion?: string | null | undefined; reader?: string | undefined } = {},
  ): Promise<CachedRead> {
    // A version read earlier in this same request (with the session) is as good as reading it now.
    const before = options.knownVersion !== undefined ? (options.knownVersion ?? INITIAL_VERSION) : await this.version(userId);
    const epochs = this.epochKey(userId);
    const cached = await this.storeCall(() => this.options.store.get(this.key(userId, before, epochs, limit)));
    const body = cached.ok && cached.value !== undefined ? unpack(cached.value) : undefined;
    if (body !== undefined) {
      this.noteHeld(options.reader, limit, before);
      return { body, hit: true };
    }
    const loaded = await load();
    const fresh = JSON.stringify('page' in loaded ? loaded.page : loaded);
    // A store that just failed is probably down; do not wait for it again on this request.
    if (cached.ok) {
      const at = 'page' in loaded ? (loaded.version ?? INITIAL_VERSION) : (await this.version(userId)) === before ? before : undefined;
      if (at !== undefined) await this.put(userId, limit, epochs, at, fresh, options.reader);
    }
    return { body: fresh, hit: false };
  }

  /**
   * Stores a first page the caller read together with its version from one snapshot
   * (tasks.ts, `signInListingFirstPage`), as a miss of `firstPage` would have; returns its body.
   */
  async remember(userId: string, limit: number, loaded: VersionedPage, reader?: string): Promise<string> {
    const body = JSON.stringify(loaded.page);
    await this.put(userId, limit, this.epochKey(userId), loaded.version ?? INITIAL_VERSION, body, reader);
    return body;
  }

  /**
   * The version of the list (as `task_list_versions` holds it: null for never written) whose
   * page `reader` (a session's token hash) was last served with `limit`, if it may still be
   * stored. A hint, never proof: a statement that signs in can skip reading the page while the
   * list is still at that version (tasks.ts, `signInListingFirstPage`), and `firstPage` with the
   * version it read then finds the page here, or loads it if it has gone since.
   */
  heldVersion(reader: string, limit: number): string | null | undefined {
    return this.hints.get(`${reader}:${limit}`)?.version;
  }

  private async put(userId: string, limit: number, epochs: string, version: string, body: string, reader: string | undefined): Promise<void> {
    const stored = await this.storeCall(() => this.options.store.set(this.key(userId, version, epochs, limit), pack(body), this.ttlMs));
    if (stored.ok) this.noteHeld(reader, limit, version);
  }

  private noteHeld(reader: string | undefined, limit: number, version: string): void {
    if (reader !== undefined) this.hints.set(`${reader}:${limit}`, { version: version === INITIAL_VERSION ? null : version });
  }

  /**
   * Drops stored entries for a cache-clear scope: everything for `all` and `tasks`, one user's
   * entries for `user:<id>`; other scopes (`preferences`) have nothing cached on the server.
   */
  flush(scope: string): Promise<number> {
    return flushTaskListScope(this.options.store, scope);
  }

  private async version(userId: string): Promise<string> {
    const { db } = this.options;
    const { rows } = await db.query<{ version: string }>(
      prepared(db, 'shipshape_task_list_version', 'SELECT version::text AS version FROM task_list_versions WHERE user_id = $1::uuid', [userId]),
    );
    // No row: the user's tasks have not been written since versions began; that state is a version too.
    return rows[0]?.version ?? INITIAL_VERSION;
  }

  private epochKey(userId: string): string {
    const epochs = this.options.epochs();
    return `${epochs.all ?? 0}.${epochs.tasks ?? 0}.${epochs[`user:${userId}`] ?? 0}`;
  }

  private key(userId: string, version: string, epochs: string, limit: number): string {
    return `tasks:${userId}:${FORMAT}:${version}:${epochs}:${limit}`;
  }

  /** Store failures cost a cache miss, never a failed request. */
  private async storeCall<T>(call: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
    try {
      return { ok: true, value: await call() };
    } catch (error) {
      const now = Date.now();
      if (now - this.lastWarning > WARN_EVERY_MS) {
        this.lastWarning = now;
        this.options.logger.warn({ err: describeError(error), store: this.options.store.kind }, 'cache store failed; reading from the database');
      }
      return { ok: false };
    }
  }
}

/** `flush` for a store without a cache around it (the CLI reaching a shared Redis). `scope` as stored: `user:<id>`. */
export async function flushTaskListScope(store: CacheStore, scope: string): Promise<number> {
  if (scope === 'all' || scope === 'tasks') return store.deleteByPrefix('tasks:');
  if (scope.startsWith('user:')) return store.deleteByPrefix(`tasks:${scope.slice('user:'.length)}:`);
  return 0;
}

/** Stores hold strings (Redis too): the deflated body in base64. zlib's checksum makes a damaged entry a miss. */
function pack(body: string): string {
  return deflateSync(body).toString('base64');
}

function unpack(stored: string): string | undefined {
  try {
    return inflateSync(Buffer.from(stored, 'base64')).toString();
  } catch {
    return undefined;
  }
}
