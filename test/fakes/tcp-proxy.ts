/**
 * A loopback TCP proxy a fault test puts between a process and a real server (Redis,
 * PostgreSQL) to make that server misbehave without touching it — the server is shared with
 * every other test:
 *
 * - `pass`: bytes flow both ways (optionally each chunk held back `delayMs`: a slow server);
 * - `stall`: connections are accepted and bytes swallowed, nothing ever answers (a hung server);
 * - `refuse`: every new connection is closed at once (a server that is down).
 *
 * `cut()` drops every open connection (a restart, or sessions terminated); switching to
 * `refuse` does too, while `stall` hangs the open connections where they are.
 */
import net from 'node:net';

export type ProxyMode = 'pass' | 'stall' | 'refuse';

export interface TcpProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  /** Connections accepted so far (in any mode). */
  readonly accepted: number;
  setMode(mode: ProxyMode, options?: { delayMs?: number }): void;
  /** Drops every open connection; new ones follow the mode. */
  cut(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: ProxyMode = 'pass';
  let delayMs = 0;
  let accepted = 0;
  const open = new Set<net.Socket>();

  const forward = (from: net.Socket, to: net.Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (mode === 'stall') return;
      if (delayMs === 0) {
        to.write(chunk);
        return;
      }
      // Held back, not reordered: a paused source keeps later chunks behind this one.
      from.pause();
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
        from.resume();
      }, delayMs);
    });
  };

  const server = net.createServer((client) => {
    accepted += 1;
    if (mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    open.add(client);
    client.on('error', () => undefined);
    client.on('close', () => open.delete(client));
    if (mode === 'stall') {
      client.on('data', () => undefined);
      return;
    }
    const upstream = net.connect(target.port, target.host);
    open.add(upstream);
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => {
      open.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no port');

  const cut = () => {
    for (const socket of open) socket.resetAndDestroy();
    open.clear();
  };
  return {
    port: address.port,
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    setMode(next, options = {}) {
      mode = next;
      delayMs = options.delayMs ?? 0;
      if (next === 'refuse') cut();
    },
    cut,
    close: async () => {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
