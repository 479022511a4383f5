/**
 * The Expo push API (https://docs.expo.dev/push-notifications/sending-notifications/).
 *
 * - `POST …/push/send` takes at most 100 messages and answers one ticket per message, in
 *   order: `{status:'ok', id}` (the id of a receipt to fetch later) or `{status:'error',
 *   message, details:{error:'DeviceNotRegistered'|…}}`.
 * - `POST …/push/getReceipts {ids}` takes at most 1000 ids and answers `{data:{id: receipt}}`;
 *   receipts appear once Expo has handed the message to Apple/Google (allow up to 30 min)
 *   and are kept for about a day.
 * - A project may send 600 notifications per second; beyond that requests fail with 429.
 * - An error with the whole request is a 4xx/5xx with `{errors:[{code, message}]}`: nothing
 *   in it was accepted. Expo asks for retries with exponential backoff on 429 and 5xx.
 * - With "Enhanced Security for Push Notifications" on, requests need
 *   `Authorization: Bearer <access token>`.
 *
 * `send` never throws for Expo's answers; it says what became of the messages, because the
 * caller must record exactly that: accepted (tickets), rejected (certainly not delivered,
 * so safe to send again), or in doubt (the request may have reached Expo; sending it again
 * could deliver it twice). The access token never appears in errors or logs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ShipError } from '../errors.ts';
import { TokenBucket, type Clock } from './token-bucket.ts';

export const EXPO_MAX_MESSAGES_PER_REQUEST = 100;
export const EXPO_MAX_RECEIPT_IDS_PER_REQUEST = 1000;
export const EXPO_MAX_MESSAGES_PER_SECOND = 600;

export type ExpoPriority = 'default' | 'normal' | 'high';
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface ExpoMessage {
  readonly to: string;
  readonly title: string;
  readonly body: string;
  readonly priority: ExpoPriority;
  readonly sound?: 'default';
  readonly data?: { readonly [key: string]: JsonValue } | undefined;
}

export type ExpoTicket =
  | { readonly status: 'ok'; readonly id: string }
  | { readonly status: 'error'; readonly message: string; readonly error: string | undefined };

export type ExpoReceipt = { readonly status: 'ok' } | { readonly status: 'error'; readonly message: string; readonly error: string | undefined };

export type SendOutcome =
  /** Expo took the request; one ticket per message, in the order sent. */
  | { readonly kind: 'accepted'; readonly tickets: readonly ExpoTicket[] }
  /**
   * Certainly not delivered. `fatal` when every further request would fail the same way
   * (bad access token), so the caller should stop rather than burn through the audience.
   */
  | { readonly kind: 'rejected'; readonly status: number | undefined; readonly code: string; readonly message: string; readonly fatal: boolean }
  /** The request may have reached Expo and we cannot know; never send it again. */
  | { readonly kind: 'in-doubt'; readonly message: string }
  /** Stopped (aborted, or the caller's `beforeRequest` said no) with nothing delivered. */
  | { readonly kind: 'not-sent' };

/**
 * Lets a caller keep a durable record of exactly which requests may have reached Expo (see
 * src/domain/notifications.ts). Both run once per attempt.
 */
export interface SendHooks {
  /** Right before a request is made (after any wait for the rate limit). Returning false cancels it: `not-sent`. */
  beforeRequest?(): Promise<boolean>;
  /** After an answer that proves Expo took nothing (429, 5xx, refused connection), before waiting to retry. */
  afterRefused?(): Promise<void>;
}

export interface SendOptions {
  /** Stops waiting (rate limit, backoff); never cancels a request already made. */
  readonly signal?: AbortSignal | undefined;
  readonly hooks?: SendHooks | undefined;
}

export interface ExpoRetryPolicy {
  /** Extra attempts after the first, for 429, 5xx and failures to connect. */
  readonly retries: number;
  readonly backoffMs: number;
  readonly maxDelayMs: number;
}

export interface ExpoPushOptions {
  /** The send endpoint, e.g. https://exp.host/--/api/v2/push/send; receipts are read beside it. */
  readonly pushUrl: string;
  readonly accessToken?: string | undefined;
  readonly timeoutMs?: number;
  /** Messages per second across every `send` of this client (Expo allows 600 per project). */
  readonly messagesPerSecond?: number;
  readonly retry?: ExpoRetryPolicy;
  readonly clock?: Clock;
}

// Expo's SDK waits at least a second before retrying.
const DEFAULT_RETRY: ExpoRetryPolicy = { retries: 5, backoffMs: 1_000, maxDelayMs: 30_000 };
const DEFAULT_TIMEOUT_MS = 30_000;
/** Connection failures that happen before a byte is sent: retrying cannot deliver twice. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/** `…/push/send` → `…/push/getReceipts` on the same host. */
export function receiptsUrlFor(pushUrl: string): string {
  const url = new URL(pushUrl);
  if (!url.pathname.endsWith('/push/send')) {
    throw new ShipError(
      'SHIP_ERR_CONFIG',
      `EXPO_PUSH_URL=${url.origin}${url.pathname} does not end in /push/send, so the receipts endpoint beside it cannot be found. Use https://exp.host/--/api/v2/push/send (or a test server's equivalent).`,
    );
  }
  url.pathname = `${url.pathname.slice(0, -'/send'.length)}/getReceipts`;
  return url.toString();
}

export class ExpoPushClient {
  readonly pushUrl: string;
  readonly receiptsUrl: string;
  private readonly bucket: TokenBucket;
  private readonly retry: ExpoRetryPolicy;
  private readonly timeoutMs: number;

  private readonly options: ExpoPushOptions;

  constructor(options: ExpoPushOptions) {
    this.options = options;
    this.pushUrl = options.pushUrl;
    this.receiptsUrl = receiptsUrlFor(options.pushUrl);
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const rate = options.messagesPerSecond ?? EXPO_MAX_MESSAGES_PER_SECOND;
    // Bursts of at most one full request: the rate then holds over any window, not just on average.
    this.bucket = new TokenBucket({
      ratePerSecond: rate,
      capacity: Math.min(rate, EXPO_MAX_MESSAGES_PER_REQUEST),
      ...(options.clock ? { clock: options.clock } : {}),
    });
  }

  /** Sends up to 100 messages, retrying while Expo says it took nothing. */
  async send(messages: readonly ExpoMessage[], options: SendOptions = {}): Promise<SendOutcome> {
    const { signal, hooks } = options;
    if (messages.length === 0) return { kind: 'accepted', tickets: [] };
    if (messages.length > EXPO_MAX_MESSAGES_PER_REQUEST) {
      throw new RangeError(`Expo takes at most ${EXPO_MAX_MESSAGES_PER_REQUEST} messages per request; got ${messages.length}`);
    }
    const body = JSON.stringify(messages);
    let last: SendOutcome = { kind: 'not-sent' };
    for (let attempt = 0; attempt <= this.retry.retries; attempt += 1) {
      try {
        // Retries spend tokens too: a 429 means we were already too fast.
        await this.bucket.take(messages.length, signal);
      } catch {
        // Aborted. Every earlier attempt was refused, so nothing of this went out.
        return { kind: 'not-sent' };
      }
      if (hooks?.beforeRequest && !(await hooks.beforeRequest())) return { kind: 'not-sent' };
      const answer = await this.post(this.pushUrl, body);
      if (answer.kind === 'network') {
        if (!answer.beforeSending) return { kind: 'in-doubt', message: `Expo did not answer: ${answer.message}` };
        last = { kind: 'rejected', status: undefined, code: 'UNREACHABLE', message: `could not connect to Expo: ${answer.message}`, fatal: false };
      } else if (answer.status === 200) {
        return parseTickets(answer.text, messages.length);
      } else {
        const problem = parseErrors(answer.text);
        const fatal = answer.status === 401 || answer.status === 403;
        last = { kind: 'rejected', status: answer.status, code: problem.code, message: `Expo answered HTTP ${answer.status}: ${problem.message}`, fatal };
        if (!(answer.status === 429 || answer.status >= 500)) return last;
      }
      await hooks?.afterRefused?.();
      if (attempt < this.retry.retries && !(await this.pause(attempt, answer.kind === 'http' ? answer.retryAfterMs : undefined, signal)))
        return { kind: 'not-sent' };
    }
    return last;
  }

  /** Receipts for up to 1000 ticket ids; ids Expo has no receipt for (yet) are absent from the result. */
  async getReceipts(ids: readonly string[]): Promise<Map<string, ExpoReceipt>> {
    if (ids.length === 0) return new Map();
    if (ids.length > EXPO_MAX_RECEIPT_IDS_PER_REQUEST) {
      throw new RangeError(`Expo takes at most ${EXPO_MAX_RECEIPT_IDS_PER_REQUEST} receipt ids per request; got ${ids.length}`);
    }
    const body = JSON.stringify({ ids });
    let problem = '';
    // Reading receipts changes nothing at Expo, so any failure may be retried.
    for (let attempt = 0; attempt <= this.retry.retries; attempt += 1) {
      const answer = await this.post(this.receiptsUrl, body);
      if (answer.kind === 'http' && answer.status === 200) return parseReceipts(answer.text);
      if (answer.kind === 'http') {
        problem = `answered HTTP ${answer.status}: ${parseErrors(answer.text).message}`;
        if (!(answer.status === 429 || answer.status >= 500)) break;
      } else {
        problem = `could not be reached: ${answer.message}`;
      }
      if (attempt < this.retry.retries && !(await this.pause(attempt, answer.kind === 'http' ? answer.retryAfterMs : undefined, undefined))) break;
    }
    throw new ShipError(
      'SHIP_ERR_PROVIDER_FAILED',
      `Expo's receipts endpoint (${new URL(this.receiptsUrl).origin}) ${problem}. The receipts stay due and are fetched again on the next check; check EXPO_ACCESS_TOKEN if this persists.`,
      { details: { provider: 'expo' } },
    );
  }

  private async post(
    url: string,
    body: string,
  ): Promise<{ kind: 'http'; status: number; text: string; retryAfterMs: number | undefined } | { kind: 'network'; message: string; beforeSending: boolean }> {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          accept: 'application/json',
          'accept-encoding': 'gzip, deflate',
          'content-type': 'application/json',
          ...(this.options.accessToken ? { authorization: `Bearer ${this.options.accessToken}` } : {}),
        },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      return { kind: 'http', status: response.status, text: await response.text(), retryAfterMs: parseRetryAfter(response.headers.get('retry-after')) };
    } catch (error) {
      return { kind: 'network', ...describeNetworkError(error, this.timeoutMs) };
    }
  }

  /** Waits before the next attempt; false when aborted. */
  private async pause(attempt: number, retryAfterMs: number | undefined, signal: AbortSignal | undefined): Promise<boolean> {
    const exponential = this.retry.backoffMs * 2 ** attempt;
    // Jitter keeps several senders from retrying in lock-step.
    const delay = Math.min(this.retry.maxDelayMs, Math.max(retryAfterMs ?? 0, Math.round(exponential * (0.5 + Math.random() / 2))));
    try {
      await (this.options.clock ? this.options.clock.sleep(delay, signal) : sleep(delay, undefined, signal ? { signal } : undefined));
      return true;
    } catch {
      return false;
    }
  }
}

function parseTickets(text: string, expected: number): SendOutcome {
  const json = parseJson(text);
  const data = isRecord(json) ? json.data : undefined;
  if (isRecord(json) && Array.isArray(json.errors) && json.errors.length > 0) {
    const problem = parseErrors(text);
    return { kind: 'rejected', status: 200, code: problem.code, message: `Expo refused the request: ${problem.message}`, fatal: false };
  }
  if (!Array.isArray(data) || data.length !== expected) {
    // Expo took the request but the answer does not say which messages it accepted.
    return { kind: 'in-doubt', message: `Expo answered 200 without ${expected} tickets` };
  }
  const tickets = data.map((ticket): ExpoTicket => {
    if (isRecord(ticket) && ticket.status === 'ok' && typeof ticket.id === 'string') return { status: 'ok', id: ticket.id };
    const message = isRecord(ticket) && typeof ticket.message === 'string' ? ticket.message : 'unrecognised ticket';
    return { status: 'error', message, error: detailError(ticket) };
  });
  return { kind: 'accepted', tickets };
}

function parseReceipts(text: string): Map<string, ExpoReceipt> {
  const json = parseJson(text);
  const data = isRecord(json) ? json.data : undefined;
  const receipts = new Map<string, ExpoReceipt>();
  if (!isRecord(data)) return receipts;
  for (const [id, receipt] of Object.entries(data)) {
    if (!isRecord(receipt)) continue;
    if (receipt.status === 'ok') receipts.set(id, { status: 'ok' });
    else if (receipt.status === 'error')
      receipts.set(id, { status: 'error', message: typeof receipt.message === 'string' ? receipt.message : '', error: detailError(receipt) });
  }
  return receipts;
}

function parseErrors(text: string): { code: string; message: string } {
  const json = parseJson(text);
  const first = isRecord(json) && Array.isArray(json.errors) ? json.errors[0] : undefined;
  if (isRecord(first)) {
    return { code: typeof first.code === 'string' ? first.code : 'UNKNOWN', message: typeof first.message === 'string' ? first.message : text.slice(0, 300) };
  }
  return { code: 'UNKNOWN', message: text.replace(/\s+/g, ' ').trim().slice(0, 300) || '(empty body)' };
}

function detailError(value: unknown): string | undefined {
  if (!isRecord(value) || !isRecord(value.details)) return undefined;
  return typeof value.details.error === 'string' ? value.details.error : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim()) * 1000;
}

function describeNetworkError(error: unknown, timeoutMs: number): { message: string; beforeSending: boolean } {
  if (error instanceof DOMException && error.name === 'TimeoutError') return { message: `no answer within ${timeoutMs} ms`, beforeSending: false };
  // undici reports "fetch failed" and keeps the useful part (ECONNREFUSED …) in `cause`.
  const cause: unknown = error instanceof Error ? error.cause : undefined;
  const code = isRecord(cause) && typeof cause.code === 'string' ? cause.code : undefined;
  const message = cause instanceof Error ? cause.message : error instanceof Error ? error.message : String(error);
  return { message, beforeSending: code !== undefined && NOT_SENT_CODES.has(code) };
}
