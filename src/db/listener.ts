/**
 * LISTEN on a dedicated connection. Pooled connections come and go and are shared, so they
 * cannot hold a LISTEN; this one is opened outside the pool (one more connection per process
 * counted against max_connections) and reopened with backoff whenever it drops.
 *
 * Notifications sent while the connection is down are lost, never queued for us: every
 * (re)connect calls `onConnected`, and the caller re-reads whatever it was listening for.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../log.ts';
import { quoteIdent, type Queryable } from './pool.ts';
import { describeError } from '../errors.ts';

export interface ListenerOptions {
  readonly connectionString: string;
  readonly channel: string;
  /** More channels on the same connection (one connection per process, whatever it listens to). */
  readonly alsoListen?: readonly string[];
  readonly connectTimeoutMs: number;
  readonly logger: Logger;
  readonly applicationName?: string;
  onNotification(payload: string, channel: string): void;
  onConnected(): void;
  /** The connection dropped: notifications are being lost until `onConnected` is called again. */
  onDisconnected?(): void;
}

export interface Listener {
  readonly connected: boolean;
  /**
   * Sends a NOTIFY through `db` (another connection) and reports whether it came back within
   * `timeoutMs`. It does not behind PgBouncer in transaction mode, which accepts LISTEN but
   * never delivers; callers then know to rely on polling.
   */
  probe(db: Queryable, timeoutMs: number): Promise<boolean>;
  /**
   * `probe` through the listening connection itself: no wait for a pooled connection, so a
   * busy server still answers it promptly. Tells whether this connection is alive and
   * receiving, not whether a proxy passes notifications between sessions (`probe` does).
   */
  ping(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

const MAX_BACKOFF_MS = 30_000;

export async function startListener(options: ListenerOptions): Promise<Listener> {
  const listener = new PgListener(options);
  await listener.connect().catch((error: unknown) => {
    options.logger.warn({ err: describeError(error), channel: options.channel }, 'could not LISTEN yet; retrying in the background');
    listener.scheduleReconnect();
  });
  return listener;
}

class PgListener implements Listener {
  private client: pg.Client | undefined;
  private closed = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly probes = new Map<string, (arrived: boolean) => void>();

  private readonly options: ListenerOptions;

  constructor(options: ListenerOptions) {
    this.options = options;
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      connectionTimeoutMillis: this.options.connectTimeoutMs,
      application_name: this.options.applicationName ?? 'shipshape-listen',
      keepAlive: true,
    });
    client.on('notification', (message) => {
      const payload = message.payload ?? '';
      if (message.channel !== this.options.channel) {
        if (this.options.alsoListen?.includes(message.channel)) this.options.onNotification(payload, message.channel);
        return;
      }
      const probe = this.probes.get(payload);
      if (probe) return probe(true);
      this.options.onNotification(payload, message.channel);
    });
    const lost = (reason: string) => {
      if (this.client !== client) return;
      this.client = undefined;
      client.end().catch(() => undefined);
      this.options.onDisconnected?.();
      if (this.closed) return;
      this.options.logger.warn({ channel: this.options.channel, reason }, 'LISTEN connection lost; reconnecting (the poll covers the gap)');
      this.scheduleReconnect();
    };
    client.on('error', (error) => lost(error.message));
    client.on('end', () => lost('connection ended'));
    try {
      await client.connect();
      for (const channel of [this.options.channel, ...(this.options.alsoListen ?? [])]) await client.query(`LISTEN ${quoteIdent(channel)}`);
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.attempt = 0;
    this.options.onConnected();
  }

  scheduleReconnect(): void {
    if (this.closed || this.retryTimer) return;
    this.attempt += 1;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (this.attempt - 1));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect().catch((error: unknown) => {
        this.options.logger.warn({ err: describeError(error), channel: this.options.channel, attempt: this.attempt }, 'LISTEN reconnect failed');
        this.scheduleReconnect();
      });
    }, delay);
    this.retryTimer.unref();
  }

  async probe(db: Queryable, timeoutMs: number): Promise<boolean> {
    const payload = `probe:${randomUUID()}`;
    let timer: NodeJS.Timeout | undefined;
    const arrived = new Promise<boolean>((resolve) => {
      this.probes.set(payload, resolve);
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      await db.query('SELECT pg_notify($1::text, $2::text)', [this.options.channel, payload]);
      return await arrived;
    } finally {
      clearTimeout(timer);
      this.probes.delete(payload);
    }
  }

  async ping(timeoutMs: number): Promise<boolean> {
    const client = this.client;
    if (!client) return false;
    return this.probe(client, timeoutMs).catch(() => false);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const settle of this.probes.values()) settle(false);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
