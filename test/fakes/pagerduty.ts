/**
 * A loopback PagerDuty Events API v2 that holds events to the documented contract
 * (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/):
 *
 * - only `POST /v2/enqueue` with `Content-Type: application/json` and a JSON object body;
 * - `routing_key`: 32 characters; `event_action`: trigger | acknowledge | resolve;
 *   `dedup_key`: ≤ 255 characters, required for acknowledge and resolve;
 * - trigger: `payload.summary` (1–1024 chars), `payload.source`, `payload.severity`
 *   (critical | error | warning | info) required; `timestamp` ISO 8601, `component`, `group`,
 *   `class` strings and `custom_details` an object when present;
 * - valid → `202 {status: "success", message: "Event processed", dedup_key}` (a key is made up
 *   for a trigger without one); invalid → `400 {status: "invalid event", message: "Event object
 *   is invalid", errors: [...]}`.
 *
 * It also keeps incidents by dedup key, as PagerDuty does: a trigger opens one (or adds to the
 * open one), resolve closes it, so a test can assert "paged, then resolved with the same key".
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenOnLoopback, readBody } from './loopback.ts';

export type PagerDutyAction = 'trigger' | 'acknowledge' | 'resolve';

export interface PagerDutyAcceptedEvent {
  routingKey: string;
  action: PagerDutyAction;
  dedupKey: string;
  /** The whole request body as received. */
  body: Record<string, unknown>;
}

export interface PagerDutyIncident {
  dedupKey: string;
  routingKey: string;
  status: 'triggered' | 'acknowledged' | 'resolved';
  /** From the latest trigger. */
  summary: string;
  severity: string;
  source: string;
  events: PagerDutyAcceptedEvent[];
}

export interface PagerDutyRequest {
  method: string;
  path: string;
  rawBody: string;
  status: number;
  response: unknown;
}

export interface PagerDutyFailure {
  /** 429 (rate limited) or a 5xx. */
  status: number;
  retryAfterSeconds?: number;
  /** How many requests fail; omitted → every request until `clearFailure()`. */
  times?: number;
}

export interface FakePagerDutyOptions {
  /** When given, other (well-formed) routing keys are refused with 400 "Invalid routing key". */
  routingKeys?: readonly string[];
}

export interface FakePagerDuty {
  /** Pass as the Events API base URL; events go to `${baseUrl}/v2/enqueue`. */
  readonly baseUrl: string;
  /** Accepted events in arrival order. */
  readonly events: PagerDutyAcceptedEvent[];
  readonly requests: PagerDutyRequest[];
  readonly incidents: ReadonlyMap<string, PagerDutyIncident>;
  /** Incidents not resolved. */
  openIncidents(): PagerDutyIncident[];
  failWith(failure: PagerDutyFailure): void;
  clearFailure(): void;
  close(): Promise<void>;
}

const actions: readonly string[] = ['trigger', 'acknowledge', 'resolve'];
const severities: readonly string[] = ['critical', 'error', 'warning', 'info'];

/** A random key in the shape PagerDuty issues (32 hex characters). */
export function fakeRoutingKey(): string {
  return randomBytes(16).toString('hex');
}

export async function startPagerDuty(options: FakePagerDutyOptions = {}): Promise<FakePagerDuty> {
  const events: PagerDutyAcceptedEvent[] = [];
  const requests: PagerDutyRequest[] = [];
  const incidents = new Map<string, PagerDutyIncident>();
  let failure: PagerDutyFailure | undefined;

  const server = createServer((req, res) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const record: PagerDutyRequest = { method: req.method ?? '', path, rawBody, status: 0, response: undefined };
    requests.push(record);
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      record.response = body;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const invalid = (...errors: string[]): void => answer(400, { status: 'invalid event', message: 'Event object is invalid', errors });

    if (path !== '/v2/enqueue') return answer(404, { status: 'not found', message: 'Not Found' });
    if (req.method !== 'POST') return answer(405, { status: 'method not allowed', message: 'Method Not Allowed' });

    if (failure !== undefined) {
      const current = failure;
      if (current.times !== undefined) {
        current.times -= 1;
        if (current.times <= 0) failure = undefined;
      }
      const headers: Record<string, string> = current.retryAfterSeconds === undefined ? {} : { 'retry-after': String(current.retryAfterSeconds) };
      const body =
        current.status === 429
          ? { status: 'throttle event', message: 'Requests for this service are arriving too quickly. Please retry later.' }
          : { status: 'error', message: 'Internal Server Error' };
      return answer(current.status, body, headers);
    }

    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (mediaType !== 'application/json') return invalid("Content-Type must be 'application/json'");

    let body: unknown;
    try {
      body = JSON.parse(rawBody);
    } catch {
      return invalid('Invalid JSON');
    }
    if (!isRecord(body)) return invalid('Event object must be a JSON object');

    const errors = validate(body);
    if (errors.length > 0) return invalid(...errors);
    const routingKey = String(body['routing_key']);
    if (options.routingKeys !== undefined && !options.routingKeys.includes(routingKey)) {
      return invalid('Invalid routing key');
    }

    const action = String(body['event_action']);
    const given = body['dedup_key'];
    const dedupKey = typeof given === 'string' && given !== '' ? given : randomBytes(16).toString('hex');
    const event: PagerDutyAcceptedEvent = {
      routingKey,
      action: action === 'trigger' || action === 'acknowledge' ? action : 'resolve',
      dedupKey,
      body,
    };
    events.push(event);
    track(event);
    answer(202, { status: 'success', message: 'Event processed', dedup_key: dedupKey });
  }

  function track(event: PagerDutyAcceptedEvent): void {
    const existing = incidents.get(event.dedupKey);
    if (event.action === 'trigger') {
      const payload = isRecord(event.body['payload']) ? event.body['payload'] : {};
      const facts = {
        summary: String(payload['summary']),
        severity: String(payload['severity']),
        source: String(payload['source']),
      };
      if (existing !== undefined && existing.status !== 'resolved') {
        Object.assign(existing, facts);
        existing.events.push(event);
      } else {
        incidents.set(event.dedupKey, {
          dedupKey: event.dedupKey,
          routingKey: event.routingKey,
          status: 'triggered',
          ...facts,
          events: [event],
        });
      }
      return;
    }
    // Acknowledging or resolving an unknown or closed incident is accepted and does nothing.
    if (existing === undefined || existing.status === 'resolved') return;
    existing.events.push(event);
    existing.status = event.action === 'acknowledge' ? 'acknowledged' : 'resolved';
  }

  const baseUrl = await listenOnLoopback(server);

  return {
    baseUrl,
    events,
    requests,
    incidents,
    openIncidents: () => [...incidents.values()].filter((incident) => incident.status !== 'resolved'),
    failWith(next) {
      failure = { ...next };
    },
    clearFailure() {
      failure = undefined;
    },
    close: () => closeServer(server),
  };
}

/** The documented field rules, with messages in PagerDuty's wording. */
function validate(body: Record<string, unknown>): string[] {
  const errors: string[] = [];
  const routingKey = body['routing_key'];
  if (typeof routingKey !== 'string' || routingKey === '') errors.push("'routing_key' is missing or blank");
  else if (routingKey.length !== 32) errors.push("Length of 'routing_key' is incorrect (should be 32 characters)");

  const action = body['event_action'];
  if (typeof action !== 'string' || action === '') errors.push("'event_action' is missing or blank");
  else if (!actions.includes(action)) {
    errors.push("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')");
  }

  const dedupKey = body['dedup_key'];
  if (dedupKey !== undefined && (typeof dedupKey !== 'string' || dedupKey.length > 255)) {
    errors.push("'dedup_key' must be a string of at most 255 characters");
  }
  if ((action === 'acknowledge' || action === 'resolve') && (typeof dedupKey !== 'string' || dedupKey === '')) {
    errors.push("'dedup_key' is missing or blank");
  }

  if (action === 'trigger') {
    const payload = body['payload'];
    if (!isRecord(payload)) {
      errors.push("'payload' is missing or blank");
      return errors;
    }
    const summary = payload['summary'];
    if (typeof summary !== 'string' || summary === '') errors.push("'payload.summary' is missing or blank");
    else if (summary.length > 1024) errors.push("'payload.summary' must be at most 1024 characters");
    const source = payload['source'];
    if (typeof source !== 'string' || source === '') errors.push("'payload.source' is missing or blank");
    const severity = payload['severity'];
    if (typeof severity !== 'string' || !severities.includes(severity)) {
      errors.push("'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')");
    }
    const timestamp = payload['timestamp'];
    if (timestamp !== undefined && (typeof timestamp !== 'string' || Number.isNaN(Date.parse(timestamp)))) {
      errors.push("'payload.timestamp' must be an ISO 8601 date-time");
    }
    for (const field of ['component', 'group', 'class']) {
      const value = payload[field];
      if (value !== undefined && typeof value !== 'string') errors.push(`'payload.${field}' must be a string`);
    }
    const details = payload['custom_details'];
    if (details !== undefined && !isRecord(details)) errors.push("'payload.custom_details' must be an object");
  }
  return errors;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
