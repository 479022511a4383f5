/**
 * A loopback Slack incoming-webhook service that holds requests to Slack's documented contract
 * (https://api.slack.com/messaging/webhooks, "Handling errors"):
 *
 * - `POST` with `Content-type: application/json` → `200 ok`;
 * - a body that is not JSON, or not a JSON object → `400 invalid_payload`;
 * - no `text` and no `blocks` → `400 no_text`; malformed Block Kit or blocks over Slack's
 *   limits (50 blocks, header 150 chars, text 3000, 10 context elements) → `400 invalid_blocks`;
 * - an unknown webhook path → `404 no_service`.
 *
 * One server hosts any number of webhooks (`hookUrl(label)`), so a test can give `#incidents`
 * and `#ops-backups` their own URLs. `failWith` makes it answer like a struggling Slack
 * (500 `rollup_error`, 429 with Retry-After, …) for the next N requests or until cleared.
 *
 * ```ts
 * const slack = await startSlackWebhook();
 * const url = slack.hookUrl('#incidents');
 * // … send …
 * assert.equal(slack.messagesFor('#incidents')[0]?.payload.text, '…');
 * await slack.close();
 * ```
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenOnLoopback, readBody } from './loopback.ts';

export interface SlackMessage {
  /** The label the webhook was created with. */
  hook: string;
  payload: { text?: string; blocks?: unknown[]; [field: string]: unknown };
}

export interface SlackWebhookRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  rawBody: string;
  /** What the fake answered. */
  status: number;
  response: string;
}

export interface SlackFailure {
  status: number;
  /** Defaults to Slack's body for the status: `rate_limited`, `rollup_error`, `no_service`, … */
  body?: string;
  /** Sent as Retry-After (Slack sends it with 429). */
  retryAfterSeconds?: number;
  /** How many requests fail; omitted → every request until `clearFailure()`. */
  times?: number;
}

export interface FakeSlackWebhook {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** The URL of the webhook called `default` (created at start). */
  readonly url: string;
  /** Returns the webhook URL for `label`, creating it on first use. */
  hookUrl(label: string): string;
  /** Accepted messages, in arrival order. */
  readonly messages: SlackMessage[];
  messagesFor(label: string): SlackMessage[];
  /** Every request, accepted or not. */
  readonly requests: SlackWebhookRequest[];
  failWith(failure: SlackFailure): void;
  clearFailure(): void;
  close(): Promise<void>;
}

const defaultBodies: Record<number, string> = {
  400: 'invalid_payload',
  403: 'action_prohibited',
  404: 'no_service',
  410: 'channel_is_archived',
  429: 'rate_limited',
  500: 'rollup_error',
};

const MAX_BLOCKS = 50;
const HEADER_MAX = 150;
const TEXT_MAX = 3000;
const CONTEXT_ELEMENTS_MAX = 10;

export async function startSlackWebhook(): Promise<FakeSlackWebhook> {
  const hooks = new Map<string, string>(); // path → label
  const messages: SlackMessage[] = [];
  const requests: SlackWebhookRequest[] = [];
  let failure: SlackFailure | undefined;

  const server = createServer((req, res) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const record: SlackWebhookRequest = {
      method: req.method ?? '',
      path,
      contentType: req.headers['content-type'],
      rawBody,
      status: 0,
      response: '',
    };
    requests.push(record);
    const answer = (status: number, body: string, headers: Record<string, string> = {}): void => {
      record.status = status;
      record.response = body;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
      res.end(body);
    };

    if (failure !== undefined) {
      const current = failure;
      if (current.times !== undefined) {
        current.times -= 1;
        if (current.times <= 0) failure = undefined;
      }
      const headers: Record<string, string> = current.retryAfterSeconds === undefined ? {} : { 'retry-after': String(current.retryAfterSeconds) };
      answer(current.status, current.body ?? defaultBodies[current.status] ?? 'error', headers);
      return;
    }

    const hook = hooks.get(path);
    if (hook === undefined) return answer(404, 'no_service');
    if (req.method !== 'POST') return answer(405, 'invalid_method');
    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (mediaType !== 'application/json') return answer(400, 'invalid_payload');
    let payload: unknown;
    try {
      payload = JSON.parse(rawBody);
    } catch {
      return answer(400, 'invalid_payload');
    }
    if (!isRecord(payload)) return answer(400, 'invalid_payload');
    const { text, blocks } = payload;
    if (text !== undefined && typeof text !== 'string') return answer(400, 'invalid_payload');
    if ((text === undefined || text.trim() === '') && blocks === undefined) return answer(400, 'no_text');
    if (blocks !== undefined && !validBlocks(blocks)) return answer(400, 'invalid_blocks');

    messages.push({
      hook,
      payload: { ...payload, text, blocks: Array.isArray(blocks) ? blocks : undefined },
    });
    answer(200, 'ok');
  }

  const origin = await listenOnLoopback(server);

  const hookUrl = (label: string): string => {
    for (const [path, existing] of hooks) if (existing === label) return `${origin}${path}`;
    // Same shape as real webhook paths: /services/T…/B…/<24-char secret>.
    const path = `/services/T${randomBytes(4).toString('hex').toUpperCase()}/B${randomBytes(4).toString('hex').toUpperCase()}/${randomBytes(12).toString('hex')}`;
    hooks.set(path, label);
    return `${origin}${path}`;
  };
  const url = hookUrl('default');

  return {
    origin,
    url,
    hookUrl,
    messages,
    messagesFor: (label) => messages.filter((m) => m.hook === label),
    requests,
    failWith(next) {
      failure = { ...next };
    },
    clearFailure() {
      failure = undefined;
    },
    close: () => closeServer(server),
  };
}

function validBlocks(blocks: unknown): boolean {
  if (!Array.isArray(blocks) || blocks.length > MAX_BLOCKS) return false;
  return blocks.every((block) => {
    if (!isRecord(block) || typeof block['type'] !== 'string') return false;
    switch (block['type']) {
      case 'header':
        return isTextObject(block['text'], HEADER_MAX, ['plain_text']);
      case 'section':
        return block['text'] !== undefined
          ? isTextObject(block['text'], TEXT_MAX, ['plain_text', 'mrkdwn'])
          : Array.isArray(block['fields']) && block['fields'].length > 0;
      case 'context': {
        const elements = block['elements'];
        return (
          Array.isArray(elements) &&
          elements.length > 0 &&
          elements.length <= CONTEXT_ELEMENTS_MAX &&
          elements.every((el) => isTextObject(el, TEXT_MAX, ['plain_text', 'mrkdwn']) || (isRecord(el) && el['type'] === 'image'))
        );
      }
      case 'divider':
        return true;
      default:
        // Other block types exist; this fake only checks the ones Shipshape sends.
        return true;
    }
  });
}

function isTextObject(value: unknown, max: number, types: string[]): boolean {
  if (!isRecord(value)) return false;
  const { type, text } = value;
  return typeof type === 'string' && types.includes(type) && typeof text === 'string' && text.length > 0 && text.length <= max;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
