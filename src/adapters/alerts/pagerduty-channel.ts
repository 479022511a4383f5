/**
 * PagerDuty Events API v2: `POST {baseUrl}/v2/enqueue` with
 * `{routing_key, event_action, dedup_key, payload}`; PagerDuty answers 202
 * `{status: "success", message, dedup_key}`, 400 for an invalid event, 429 when the routing
 * key is rate limited. A trigger and the resolve that closes it carry the same dedup key.
 */
import { ShipError } from '../../errors.ts';
import { truncate } from './format.ts';
import { defaultRetryPolicy, defaultTimeoutMs, postJson, type RetryPolicy } from './post-json.ts';
import { createRedactor, type Redact } from '../../redact.ts';
import type { Alert, AlertChannel, AlertSeverity } from './types.ts';

export const defaultPagerDutyBaseUrl = 'https://events.pagerduty.com';

// Documented limits: summary ≤ 1024 characters, dedup_key ≤ 255.
const SUMMARY_MAX = 1024;
const DEDUP_KEY_MAX = 255;

export interface PagerDutyChannelOptions {
  /** The Events API v2 integration key (32 characters). A secret. */
  routingKey: string;
  /** Defaults to https://events.pagerduty.com; tests point it at a loopback fake. */
  baseUrl?: string;
  /** `payload.source`: the affected system, preferably a hostname. */
  source: string;
  /** Names the channel without the key: `pagerduty:<label>`. */
  label: string;
  /** `payload.component`; defaults to `shipshape`. */
  component?: string;
  timeoutMs?: number;
  retry?: RetryPolicy;
  redact?: Redact;
}

export type PagerDutyEventAction = 'trigger' | 'acknowledge' | 'resolve';

export interface PagerDutyEvent {
  routing_key: string;
  event_action: PagerDutyEventAction;
  dedup_key?: string;
  client?: string;
  payload?: {
    summary: string;
    source: string;
    severity: AlertSeverity;
    timestamp?: string;
    component?: string;
    group?: string;
    class?: string;
    custom_details?: Record<string, string | number | boolean>;
  };
}

export function createPagerDutyChannel(options: PagerDutyChannelOptions): AlertChannel {
  const own = createRedactor([options.routingKey]);
  const extra = options.redact;
  const redact: Redact = extra === undefined ? own : (text) => own(extra(text));
  const url = `${(options.baseUrl ?? defaultPagerDutyBaseUrl).replace(/\/+$/, '')}/v2/enqueue`;
  return {
    name: `pagerduty:${options.label}`,
    async send(alert) {
      await postJson({
        provider: 'PagerDuty',
        url,
        body: pagerDutyEvent(alert, options),
        timeoutMs: options.timeoutMs ?? defaultTimeoutMs,
        retry: options.retry ?? defaultRetryPolicy,
        redact,
        advise: advisePagerDuty,
      });
    },
  };
}

/** The event sent for an alert: a trigger (the default) or a resolve of `alert.dedupKey`. */
export function pagerDutyEvent(alert: Alert, options: Pick<PagerDutyChannelOptions, 'routingKey' | 'source' | 'component'>): PagerDutyEvent {
  const action = alert.page ?? 'trigger';
  const dedupKey = alert.dedupKey;
  if (dedupKey !== undefined && dedupKey.length > DEDUP_KEY_MAX) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `The alert's dedupKey is ${dedupKey.length} characters; PagerDuty accepts at most ${DEDUP_KEY_MAX}. Use a shorter key such as the run id.`,
    );
  }
  if (action === 'resolve') {
    if (dedupKey === undefined || dedupKey === '') {
      throw new ShipError(
        'SHIP_ERR_VALIDATION',
        'A PagerDuty resolve needs the dedupKey of the page it closes. Pass the dedupKey returned when the page was triggered.',
      );
    }
    return { routing_key: options.routingKey, event_action: 'resolve', dedup_key: dedupKey };
  }
  return {
    routing_key: options.routingKey,
    event_action: 'trigger',
    ...(dedupKey === undefined ? {} : { dedup_key: dedupKey }),
    client: 'Shipshape',
    payload: {
      summary: truncate(alert.title, SUMMARY_MAX),
      source: options.source,
      severity: alert.severity,
      timestamp: new Date().toISOString(),
      component: options.component ?? 'shipshape',
      group: alert.issueType,
      class: alert.event,
      custom_details: { text: alert.text, ...alert.details },
    },
  };
}

function advisePagerDuty(status: number): string {
  if (status === 400) {
    return 'PagerDuty rejected the event. Check that the routing key is a 32-character Events API v2 integration key.';
  }
  if (status === 429) {
    return 'PagerDuty is rate limiting this routing key; the page was not sent. Page the on-call by phone.';
  }
  return 'PagerDuty had a server error; the page was not sent. Page the on-call by phone and check https://status.pagerduty.com.';
}
