/**
 * A loopback status page webhook: takes `POST /hooks/<secret>` with a JSON body
 * `{"status": "maintenance"|"operational", "message": string}` and records it; anything else
 * is refused (400 bad body, 404 wrong path, 415 not JSON). `failNext` makes it answer 500.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { closeServer, listenOnLoopback } from './loopback.ts';

export interface StatusPageUpdateRecord {
  readonly status: string;
  readonly message: string;
}

export interface FakeStatusPage {
  /** The webhook URL (its path is the secret). */
  readonly url: string;
  readonly updates: StatusPageUpdateRecord[];
  /** Status of the page now: the last accepted update's. */
  current(): string | undefined;
  failNext(times?: number): void;
  close(): Promise<void>;
}

export async function startFakeStatusPage(): Promise<FakeStatusPage> {
  const secretPath = `/hooks/${randomBytes(12).toString('hex')}`;
  const updates: StatusPageUpdateRecord[] = [];
  let failures = 0;
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== secretPath) return void res.writeHead(404).end();
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return void res.writeHead(415).end();
      if (failures > 0) {
        failures--;
        return void res.writeHead(500).end('{"error":"down"}');
      }
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        return void res.writeHead(400).end();
      }
      if (typeof body !== 'object' || body === null) return void res.writeHead(400).end();
      const record: Record<string, unknown> = { ...body };
      if ((record.status !== 'maintenance' && record.status !== 'operational') || typeof record.message !== 'string' || Object.keys(record).length !== 2) {
        return void res.writeHead(400).end();
      }
      updates.push({ status: record.status, message: record.message });
      res.writeHead(204).end();
    });
  });
  const origin = await listenOnLoopback(server);
  return {
    url: `${origin}${secretPath}`,
    updates,
    current: () => updates.at(-1)?.status,
    failNext: (times = 1) => {
      failures = times;
    },
    close: () => closeServer(server),
  };
}
