/**
 * Slack incoming webhooks: POST `{text, blocks}` as application/json to the webhook URL;
 * Slack answers 200 `ok`, or 400 `invalid_payload`/`invalid_blocks`/`no_text`, 403
 * `action_prohibited`/`invalid_token`, 404 `no_service`/`channel_not_found`, 410
 * `channel_is_archived`, 429 with Retry-After, 5xx `rollup_error`.
 *
 * The webhook, not the payload, decides the channel (modern webhooks ignore `channel`), so
 * one webhook per Slack channel is configured in the routing file.
 */
import { facts, headline, severityMark, truncate } from './format.ts';
import { defaultRetryPolicy, defaultTimeoutMs, postJson, type RetryPolicy } from './post-json.ts';
import { createRedactor, type Redact } from '../../redact.ts';
import type { Alert, AlertChannel } from './types.ts';

// Block Kit limits: header text 150 chars, section/context text 3000, 10 context elements.
const HEADER_MAX = 150;
const SECTION_MAX = 3000;
const CONTEXT_TEXT_MAX = 3000;
// Notifications show `text`; Slack truncates messages far above this, but a page of text is plenty.
const FALLBACK_TEXT_MAX = 3000;

export interface SlackChannelOptions {
  /** The incoming-webhook URL. A secret: it never appears in names, logs or errors. */
  webhookUrl: string;
  /** Slack channel names this webhook posts to; only used to name the channel (`slack:#incidents`). */
  channels: readonly string[];
  /** A line added under the message, e.g. which channels a shared webhook stands in for. */
  note?: string;
  timeoutMs?: number;
  retry?: RetryPolicy;
  /** Extra redaction (other secrets in play); the webhook URL is always redacted. */
  redact?: Redact;
}

export interface SlackBlock {
  type: string;
  [field: string]: unknown;
}

export interface SlackPayload {
  text: string;
  blocks?: SlackBlock[];
}

export function createSlackChannel(options: SlackChannelOptions): AlertChannel {
  const own = createRedactor([options.webhookUrl]);
  const extra = options.redact;
  const redact: Redact = extra === undefined ? own : (text) => own(extra(text));
  const name = `slack:${options.channels.join(',')}`;
  return {
    name,
    async send(alert) {
      await postJson({
        provider: 'Slack',
        url: options.webhookUrl,
        body: slackPayload(alert, options.note),
        timeoutMs: options.timeoutMs ?? defaultTimeoutMs,
        retry: options.retry ?? defaultRetryPolicy,
        redact,
        advise: adviseSlack,
      });
    },
  };
}

/** The JSON body posted for an alert: a plain `text` fallback plus Block Kit blocks. */
export function slackPayload(alert: Alert, note?: string): SlackPayload {
  const mark = severityMark(alert.severity);
  const factLine = facts(alert)
    .map(([label, value]) => `*${escapeMrkdwn(label)}:* ${escapeMrkdwn(value)}`)
    .join('  ·  ');
  const blocks: SlackBlock[] = [
    {
      type: 'header',
      text: { type: 'plain_text', text: truncate(`${mark} ${alert.title}`, HEADER_MAX), emoji: true },
    },
  ];
  if (alert.text.trim() !== '') {
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: truncate(escapeMrkdwn(alert.text), SECTION_MAX) },
    });
  }
  const contextElements = [{ type: 'mrkdwn', text: truncate(factLine, CONTEXT_TEXT_MAX) }];
  if (note !== undefined) {
    contextElements.push({ type: 'mrkdwn', text: truncate(escapeMrkdwn(note), CONTEXT_TEXT_MAX) });
  }
  blocks.push({ type: 'context', elements: contextElements });

  const text = truncate(escapeMrkdwn(`${mark} ${headline(alert)}\n${alert.text}`.trim()), FALLBACK_TEXT_MAX);
  return { text, blocks };
}

/** Slack treats `&`, `<` and `>` as control characters in mrkdwn and in `text`. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function adviseSlack(status: number, body: string): string {
  const code = body.trim();
  if (status === 400) {
    return `Slack rejected the message (${code || 'bad request'}); this is a Shipshape bug, please report it.`;
  }
  if (status === 403 || status === 401) {
    return 'The webhook is not allowed to post. Re-create the incoming webhook in Slack and update the alert routing file or SLACK_WEBHOOK_URL.';
  }
  if (status === 404 || status === 410) {
    return 'The webhook or its channel no longer exists. Create a new incoming webhook and update the alert routing file or SLACK_WEBHOOK_URL.';
  }
  if (status === 429) {
    return 'Slack is rate limiting this webhook (about one message per second); send fewer alerts to it or split channels across webhooks.';
  }
  return 'Slack had a server error; the alert was not posted. Check https://slack-status.com.';
}
