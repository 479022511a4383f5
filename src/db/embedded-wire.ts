/**
 * A PostgreSQL wire-protocol front for PGlite that is safe for many connections.
 *
 * PGlite is one backend. `@electric-sql/pglite-socket`'s own multiplexer interleaves
 * connections message by message, so one client's Bind can land on another client's
 * unnamed statement ("unnamed prepared statement does not exist") and one client's
 * statements can run inside another client's transaction. Here a connection takes the
 * backend for a whole protocol exchange — from its first message until the backend
 * answers ReadyForQuery with status Idle — so extended-protocol batches, open
 * transactions and COPY all stay with the connection that began them.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { PGlite } from '@electric-sql/pglite';

const SSL_REQUEST = 80_877_103;
const GSSENC_REQUEST = 80_877_104;
const CANCEL_REQUEST = 80_877_102;
const PROTOCOL_V3 = 196_608;

/** Client messages after which the backend owes a reply, so the batch is flushed. */
const FLUSH_POINTS = new Set(['S', 'Q', 'H', 'c', 'f', 'X']);

/** Serialises use of the single backend; the holder keeps it across a whole transaction. */
export class BackendLease {
  private tail: Promise<void> = Promise.resolve();

  /** Resolves with a release function once the backend is ours. */
  acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => held);
    return previous.then(() => release);
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

export interface WireServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function serveWireProtocol(db: PGlite, lease: BackendLease, host = '127.0.0.1', port = 0): Promise<WireServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    new WireConnection(db, lease, socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

class WireConnection {
  private buffer: Buffer = Buffer.alloc(0);
  private started = false;
  private pending: Buffer[] = [];
  private release: (() => void) | undefined;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  private readonly db: PGlite;
  private readonly lease: BackendLease;
  private readonly socket: Socket;

  constructor(db: PGlite, lease: BackendLease, socket: Socket) {
    this.db = db;
    this.lease = lease;
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      this.chain = this.chain.then(() => this.abandon());
    });
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const message = this.nextMessage();
      if (message === undefined) return;
      if (message.kind === 'reply') {
        this.socket.write(message.bytes);
        continue;
      }
      if (message.kind === 'close') {
        this.socket.end();
        return;
      }
      this.pending.push(message.bytes);
      if (message.flush) {
        const batch = this.pending;
        this.pending = [];
        this.chain = this.chain.then(() => this.execute(batch));
      }
    }
  }

  private nextMessage(): { kind: 'reply'; bytes: Buffer } | { kind: 'close' } | { kind: 'forward'; bytes: Buffer; flush: boolean } | undefined {
    if (!this.started) {
      if (this.buffer.length < 8) return undefined;
      const length = this.buffer.readInt32BE(0);
      if (this.buffer.length < length) return undefined;
      const code = this.buffer.readInt32BE(4);
      const bytes = this.buffer.subarray(0, length);
      this.buffer = this.buffer.subarray(length);
      // PGlite speaks plain TCP only: decline encryption so the client continues unencrypted.
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) return { kind: 'reply', bytes: Buffer.from('N') };
      if (code === CANCEL_REQUEST) return { kind: 'close' };
      if (code !== PROTOCOL_V3) return { kind: 'close' };
      this.started = true;
      return { kind: 'forward', bytes: Buffer.from(bytes), flush: true };
    }
    if (this.buffer.length < 5) return undefined;
    const length = 1 + this.buffer.readInt32BE(1);
    if (this.buffer.length < length) return undefined;
    const bytes = Buffer.from(this.buffer.subarray(0, length));
    this.buffer = this.buffer.subarray(length);
    const type = String.fromCharCode(bytes[0] ?? 0);
    if (type === 'X') return { kind: 'close' };
    return { kind: 'forward', bytes, flush: FLUSH_POINTS.has(type) };
  }

  private async execute(batch: Buffer[]): Promise<void> {
    if (this.closed) return;
    this.release ??= await this.lease.acquire();
    let tail: Buffer = Buffer.alloc(0);
    try {
      for (const message of batch) {
        await this.db.execProtocolRawStream(new Uint8Array(message), {
          onRawData: (data: Uint8Array) => {
            if (data.length === 0) return;
            const chunk = Buffer.from(data);
            if (!this.closed) this.socket.write(chunk);
            tail = Buffer.concat([tail, chunk]).subarray(-6);
          },
        });
      }
    } catch {
      this.socket.destroy();
      return;
    }
    // ReadyForQuery 'Z' with status 'I' means no transaction is open: the backend is free.
    if (tail.length === 6 && tail[0] === 0x5a && tail.readInt32BE(1) === 5 && tail[5] === 0x49) {
      this.release();
      this.release = undefined;
    }
  }

  /** A client that vanished mid-transaction must not leave the backend in its transaction. */
  private async abandon(): Promise<void> {
    if (!this.release) return;
    try {
      if (this.db.isInTransaction()) await this.db.exec('ROLLBACK');
    } finally {
      this.release();
      this.release = undefined;
    }
  }
}
