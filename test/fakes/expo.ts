/**
 * A loopback Expo push service that holds requests to Expo's documented contract
 * (https://docs.expo.dev/push-notifications/sending-notifications/):
 *
 * - `POST /--/api/v2/push/send` with a JSON array of at most 100 messages (or one message
 *   object) → `200 {data:[ticket…]}`, one ticket per message in order: `{status:'ok', id}`, or
 *   `{status:'error', message, details:{error:'DeviceNotRegistered'}}` for tokens marked
 *   unregistered. More than 100 → `400 PUSH_TOO_MANY_NOTIFICATIONS`; a message without a
 *   valid Expo push token in `to`, or without a `title`/`body` string → `400 VALIDATION_ERROR`.
 * - `POST /--/api/v2/push/getReceipts {ids}` with at most 1000 ids → `200 {data:{id: receipt}}`
 *   (ids it never issued are absent); more → `400 PUSH_TOO_MANY_RECEIPTS`.
 * - 600 notifications per second per project, as a token bucket (`rateLimit`, switchable off):
 *   a request that would exceed it → `429 TOO_MANY_REQUESTS`, and none of it is delivered.
 * - With `accessToken` set, requests without `Authorization: Bearer <it>` → `401 UNAUTHORIZED`.
 *
 * Test hooks: `failNext` answers the next N send requests with a status (500, 429, 502…);
 * `holdSend(n)` takes the n-th send request in (its messages count as delivered, as they would
 * at Expo) but never answers it, so a test can kill the sender while it waits.
 *
 * ```ts
 * const expo = await startFakeExpo({ unregistered: ['ExponentPushToken[gone]'] });
 * // EXPO_PUSH_URL = expo.pushUrl
 * assert.equal(expo.deliveriesTo('ExponentPushToken[abc]'), 1);
 * await expo.close();
 * ```
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenOnLoopback, readBody } from './loopback.ts';

export const SEND_PATH = '/--/api/v2/push/send';
export const RECEIPTS_PATH = '/--/api/v2/push/getReceipts';
const MAX_MESSAGES = 100;
const MAX_RECEIPT_IDS = 1000;
const TOKEN_PATTERN = /^Expo(nent)?PushToken\[[^\]]+\]$/;

export interface FakeExpoOptions {
  /** Required bearer token; unset → no Authorization check (Expo's default). */
  accessToken?: string;
  /** Notifications per second, enforced as a token bucket holding one second's worth; `false` turns it off. */
  rateLimit?: number | false;
  /** Tokens whose ticket comes back as DeviceNotRegistered. */
  unregistered?: Iterable<string>;
  /** Tokens that get an ok ticket but a DeviceNotRegistered receipt. */
  unregisteredOnReceipt?: Iterable<string>;
}

export interface ExpoRequestRecord {
  path: string;
  status: number;
  /** Messages in a send request; ids in a receipts request. */
  count: number;
  authorization: string | undefined;
}

export interface ExpoDelivery {
  to: string;
  title: unknown;
  body: unknown;
  priority: unknown;
  data: unknown;
  ticketId: string | undefined;
}

export interface FakeExpo {
  readonly origin: string;
  /** Use as EXPO_PUSH_URL. */
  readonly pushUrl: string;
  /** Every request, in arrival order. */
  readonly requests: ExpoRequestRecord[];
  /** Every message Expo accepted (or took in and held), in arrival order. */
  readonly deliveries: ExpoDelivery[];
  deliveriesTo(token: string): number;
  /** Send requests answered 429 because the rate limit was exceeded. */
  readonly rateLimited: number;
  /** Largest number of notifications accepted in any one-second window. */
  readonly peakPerSecond: number;
  setRateLimit(perSecond: number | false): void;
  markUnregistered(token: string, when: 'ticket' | 'receipt'): void;
  failNext(failure: { status: number; times?: number; code?: string }): void;
  /** The n-th send request from now (1 = the next) is taken in but never answered; resolves when it arrives. */
  holdSend(n: number): Promise<void>;
  close(): Promise<void>;
}

interface Failure {
  status: number;
  times: number;
  code: string | undefined;
}

export async function startFakeExpo(options: FakeExpoOptions = {}): Promise<FakeExpo> {
  const requests: ExpoRequestRecord[] = [];
  const deliveries: ExpoDelivery[] = [];
  const receipts = new Map<string, { token: string }>();
  const unregistered = new Set(options.unregistered ?? []);
  const unregisteredOnReceipt = new Set(options.unregisteredOnReceipt ?? []);
  const acceptedAt: Array<{ at: number; count: number }> = [];
  let rateLimit: number | false = options.rateLimit ?? 600;
  let bucket = { tokens: rateLimit === false ? 0 : rateLimit, at: performance.now() };
  let rateLimited = 0;
  let peakPerSecond = 0;
  let failure: Failure | undefined;
  let sendCount = 0;
  let hold: { at: number; arrived: () => void } | undefined;
  const held: ServerResponse[] = [];

  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'INTERNAL_SERVER_ERROR', message: String(error) }] }));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const record: ExpoRequestRecord = { path, status: 0, count: 0, authorization: req.headers.authorization };
    requests.push(record);
    const answer = (status: number, body: unknown): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    };
    const error = (status: number, code: string, message: string): void => answer(status, { errors: [{ code, message }] });

    if (path !== SEND_PATH && path !== RECEIPTS_PATH) return error(404, 'NOT_FOUND', `no route ${path}`);
    if (req.method !== 'POST') return error(405, 'METHOD_NOT_ALLOWED', 'use POST');
    if (options.accessToken !== undefined && req.headers.authorization !== `Bearer ${options.accessToken}`) {
      return error(401, 'UNAUTHORIZED', 'The bearer token is invalid; check the access token of the project.');
    }
    if ((req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() !== 'application/json') {
      return error(400, 'VALIDATION_ERROR', 'Content-Type must be application/json');
    }
    let payload: unknown;
    try {
      payload = JSON.parse(raw);
    } catch {
      return error(400, 'VALIDATION_ERROR', 'The request body is not JSON');
    }

    if (path === RECEIPTS_PATH) {
      const ids = isRecord(payload) ? payload.ids : undefined;
      if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) return error(400, 'VALIDATION_ERROR', '"ids" must be an array of strings');
      record.count = ids.length;
      if (ids.length > MAX_RECEIPT_IDS)
        return error(400, 'PUSH_TOO_MANY_RECEIPTS', `You are trying to get more than ${MAX_RECEIPT_IDS} push receipts at once.`);
      const data: Record<string, unknown> = {};
      for (const id of ids) {
        const receipt = receipts.get(id);
        if (!receipt) continue;
        data[id] = unregisteredOnReceipt.has(receipt.token)
          ? { status: 'error', message: `"${receipt.token}" is not a registered push notification recipient`, details: { error: 'DeviceNotRegistered' } }
          : { status: 'ok' };
      }
      return answer(200, { data });
    }

    const messages = Array.isArray(payload) ? payload : [payload];
    record.count = messages.length;
    sendCount += 1;
    if (failure) {
      const current = failure;
      current.times -= 1;
      if (current.times <= 0) failure = undefined;
      return error(
        current.status,
        current.code ?? (current.status === 429 ? 'TOO_MANY_REQUESTS' : 'INTERNAL_SERVER_ERROR'),
        `injected failure ${current.status}`,
      );
    }
    if (messages.length > MAX_MESSAGES) {
      return error(400, 'PUSH_TOO_MANY_NOTIFICATIONS', `You are trying to send more than ${MAX_MESSAGES} push notifications in one request.`);
    }
    for (const message of messages) {
      if (!isRecord(message) || typeof message.to !== 'string' || !TOKEN_PATTERN.test(message.to)) {
        return error(400, 'VALIDATION_ERROR', '"to" must be an Expo push token');
      }
      if (typeof message.title !== 'string' || typeof message.body !== 'string') return error(400, 'VALIDATION_ERROR', 'title and body must be strings');
      if (message.priority !== undefined && !['default', 'normal', 'high'].includes(String(message.priority))) {
        return error(400, 'VALIDATION_ERROR', '"priority" must be default, normal or high');
      }
    }
    if (!takeTokens(messages.length)) {
      rateLimited += 1;
      return error(429, 'TOO_MANY_REQUESTS', 'You are sending too many notifications; slow down to at most 600 per second.');
    }
    recordAccepted(messages.length);

    const tickets = messages.map((message) => {
      const to = isRecord(message) && typeof message.to === 'string' ? message.to : '';
      const id = unregistered.has(to) ? undefined : randomUUID();
      if (id !== undefined) receipts.set(id, { token: to });
      deliveries.push({
        to,
        title: isRecord(message) ? message.title : undefined,
        body: isRecord(message) ? message.body : undefined,
        priority: isRecord(message) ? message.priority : undefined,
        data: isRecord(message) ? message.data : undefined,
        ticketId: id,
      });
      return id === undefined
        ? { status: 'error', message: `"${to}" is not a registered push notification recipient`, details: { error: 'DeviceNotRegistered' } }
        : { status: 'ok', id };
    });

    if (hold && sendCount === hold.at) {
      // Expo has the messages; the answer never leaves.
      record.status = -1;
      held.push(res);
      hold.arrived();
      hold = undefined;
      return;
    }
    answer(200, { data: tickets });
  }

  function takeTokens(count: number): boolean {
    if (rateLimit === false) return true;
    const now = performance.now();
    bucket = { tokens: Math.min(rateLimit, bucket.tokens + ((now - bucket.at) / 1000) * rateLimit), at: now };
    if (bucket.tokens < count) return false;
    bucket.tokens -= count;
    return true;
  }

  function recordAccepted(count: number): void {
    const now = performance.now();
    acceptedAt.push({ at: now, count });
    let inWindow = 0;
    for (const entry of acceptedAt) if (entry.at > now - 1000) inWindow += entry.count;
    peakPerSecond = Math.max(peakPerSecond, inWindow);
  }

  const origin = await listenOnLoopback(server);

  return {
    origin,
    pushUrl: `${origin}${SEND_PATH}`,
    requests,
    deliveries,
    deliveriesTo: (token) => deliveries.filter((delivery) => delivery.to === token).length,
    get rateLimited() {
      return rateLimited;
    },
    get peakPerSecond() {
      return peakPerSecond;
    },
    setRateLimit(perSecond) {
      rateLimit = perSecond;
      bucket = { tokens: perSecond === false ? 0 : perSecond, at: performance.now() };
    },
    markUnregistered(token, when) {
      (when === 'ticket' ? unregistered : unregisteredOnReceipt).add(token);
    },
    failNext({ status, times = 1, code }) {
      failure = { status, times, code };
    },
    holdSend(n) {
      return new Promise<void>((arrived) => {
        hold = { at: sendCount + n, arrived };
      });
    },
    close: () => {
      for (const res of held) res.destroy();
      return closeServer(server);
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
