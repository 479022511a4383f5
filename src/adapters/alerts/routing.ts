/**
 * The runbook's Escalation Matrix as configuration: who owns each issue type, where its alerts
 * go, and which PagerDuty service pages its on-call.
 *
 * Routing file (ALERT_ROUTING_FILE), JSON; every part is optional and merges over the
 * built-in default, which is the runbook's matrix with each issue type alerting `#incidents`:
 *
 * ```jsonc
 * {
 *   // Named destinations. A name is what procedures hint (`channelHints`) and what matrix
 *   // entries list. Each has a Slack incoming-webhook URL, email recipients, or both.
 *   "channels": {
 *     "#ops-backups": { "slack": "https://hooks.slack.com/services/T0/B0/xxx" },
 *     "#incidents":   { "slack": "https://hooks.slack.com/services/T0/B1/yyy" },
 *     "ops-team":     { "email": ["ops-team@example.com"] }
 *   },
 *   // One entry per issue type (database, security, infrastructure, application).
 *   "matrix": {
 *     "database": {
 *       "primary": "DBA On-Call",                        // first contact
 *       "escalation": ["Engineering Lead", "CTO"],       // then these, in order
 *       "pagerdutyRoutingKey": "<32-character Events API v2 integration key>",
 *       "channels": ["#incidents"],                      // where this issue type's alerts go
 *       "minSeverity": "warning"                         // …from this severity up
 *     }
 *   }
 * }
 * ```
 *
 * Resolution of one alert: its `channelHints`, then (when its severity reaches the entry's
 * `minSeverity`, default `warning`, so routine notices stay out of #incidents) the issue
 * type's `channels`. A name listed under `channels` uses what is configured there; a name not
 * listed that starts with `#` uses the default webhook (SLACK_WEBHOOK_URL) if there is one;
 * anything else is reported as unrouted. `page` uses the entry's `pagerdutyRoutingKey`, or
 * the default key (PAGERDUTY_ROUTING_KEY).
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ShipError } from '../../errors.ts';
import { alertSeverities, issueTypes, type Alert, type AlertSeverity, type IssueType, type PageAction } from './types.ts';

/** Where one named channel delivers. */
export interface ChannelRoute {
  /** Slack incoming-webhook URL (a secret). */
  readonly slack?: string;
  readonly email?: readonly string[];
}

/** One row of the escalation matrix. */
export interface EscalationPolicy {
  readonly primary: string;
  readonly escalation: readonly string[];
  /** Events API v2 integration key for this issue type's on-call (a secret). */
  readonly pagerdutyRoutingKey?: string;
  readonly channels: readonly string[];
  /** The lowest severity that goes to `channels` (hinted channels get every severity). */
  readonly minSeverity: AlertSeverity;
}

export interface AlertRouting {
  readonly channels: Readonly<Record<string, ChannelRoute>>;
  readonly matrix: Readonly<Record<IssueType, EscalationPolicy>>;
  /** `built-in` or the routing file's path, for messages. */
  readonly source: string;
}

/** The runbook's Escalation Matrix; its contact method is "Slack: #incidents channel". */
export const defaultAlertRouting: AlertRouting = {
  source: 'built-in',
  channels: {},
  matrix: {
    database: policy('DBA On-Call', ['Engineering Lead', 'CTO']),
    security: policy('Security Team', ['CISO', 'CTO']),
    infrastructure: policy('DevOps On-Call', ['Infrastructure Lead', 'CTO']),
    application: policy('Dev On-Call', ['Engineering Lead', 'CTO']),
  },
};

function policy(primary: string, escalation: string[]): EscalationPolicy {
  return { primary, escalation, channels: ['#incidents'], minSeverity: 'warning' };
}

/** `DBA On-Call → Engineering Lead → CTO` */
export function escalationPath(entry: EscalationPolicy): string {
  return [entry.primary, ...entry.escalation].join(' → ');
}

const channelName = z.string().regex(/^\S{1,80}$/, { message: 'must be a channel name without spaces, e.g. "#incidents" or "ops-team"' });

const channelRouteSchema = z
  .strictObject({
    slack: z.url({ protocol: /^https?$/, message: 'must be an http(s) Slack incoming-webhook URL' }).optional(),
    email: z
      .array(z.email({ message: 'must be an email address' }))
      .min(1, { message: 'must list at least one address' })
      .optional(),
  })
  .refine((route) => route.slack !== undefined || route.email !== undefined, {
    message: 'needs "slack", "email" or both',
  });

const policySchema = z.strictObject({
  primary: z.string().min(1, { message: 'must not be empty' }).optional(),
  escalation: z.array(z.string().min(1, { message: 'must not be empty' })).optional(),
  pagerdutyRoutingKey: z
    .string()
    .regex(/^[A-Za-z0-9]{32}$/, { message: 'must be a 32-character PagerDuty Events API v2 integration key' })
    .optional(),
  channels: z.array(channelName).optional(),
  minSeverity: z.enum(alertSeverities, { message: `must be one of ${alertSeverities.join(', ')}` }).optional(),
});

const routingFileSchema = z
  .strictObject({
    channels: z.record(channelName, channelRouteSchema).optional(),
    matrix: z
      .strictObject({
        database: policySchema.optional(),
        security: policySchema.optional(),
        infrastructure: policySchema.optional(),
        application: policySchema.optional(),
      })
      .optional(),
  })
  .superRefine((file, ctx) => {
    // A name that is neither defined nor a Slack channel for the default webhook can never be
    // delivered: that is a typo, and 3 a.m. is the wrong time to find out.
    for (const type of issueTypes) {
      file.matrix?.[type]?.channels?.forEach((name, index) => {
        if (file.channels?.[name] !== undefined || name.startsWith('#')) return;
        ctx.addIssue({
          code: 'custom',
          path: ['matrix', type, 'channels', index],
          message: `"${name}" is not defined under "channels" (only "#…" names may fall back to the default Slack webhook)`,
        });
      });
    }
  });

/**
 * Reads and validates the routing file; `undefined` gives the built-in default. Throws
 * SHIP_ERR_ALERT_ROUTING_INVALID naming the file, the JSON path and the problem.
 */
export async function loadAlertRouting(path: string | undefined): Promise<AlertRouting> {
  if (path === undefined || path === '') return defaultAlertRouting;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const missing = error instanceof Error && 'code' in error && error.code === 'ENOENT';
    throw new ShipError(
      'SHIP_ERR_ALERT_ROUTING_INVALID',
      missing
        ? `Alert routing file ${path} does not exist. Create it or fix ALERT_ROUTING_FILE.`
        : `Alert routing file ${path} cannot be read (${error instanceof Error ? error.message : String(error)}). Fix its permissions or ALERT_ROUTING_FILE.`,
      { cause: error, details: { file: path } },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ShipError('SHIP_ERR_ALERT_ROUTING_INVALID', `Alert routing file ${path} is not valid JSON: ${describeJsonError(error)}. Fix the file.`, {
      details: { file: path },
    });
  }
  return parseAlertRouting(value, path);
}

/** Validates an already-parsed routing document and merges it over the default. */
export function parseAlertRouting(value: unknown, source: string): AlertRouting {
  const result = routingFileSchema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const where = jsonPath(issue.path);
      if (issue.code === 'unrecognized_keys') {
        const keys = issue.keys.map((key) => `"${key}"`).join(', ');
        return `${where}: unknown key ${keys}${knownKeysHint(issue.path)}`;
      }
      if (issue.code === 'invalid_key') {
        return `${where}: the name ${issue.issues[0]?.message ?? 'is invalid'}`;
      }
      return `${where}: ${issue.message}`;
    });
    throw new ShipError(
      'SHIP_ERR_ALERT_ROUTING_INVALID',
      `Alert routing file ${source} is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}\nFix the file or point ALERT_ROUTING_FILE at a valid one.`,
      { details: { file: source, problems } },
    );
  }
  const file = result.data;
  const channels: Record<string, ChannelRoute> = { ...defaultAlertRouting.channels };
  for (const [name, route] of Object.entries(file.channels ?? {})) {
    channels[name] = {
      ...(route.slack === undefined ? {} : { slack: route.slack }),
      ...(route.email === undefined ? {} : { email: route.email }),
    };
  }
  const matrix = { ...defaultAlertRouting.matrix };
  for (const type of issueTypes) {
    const override = file.matrix?.[type];
    if (override === undefined) continue;
    const base = defaultAlertRouting.matrix[type];
    const key = override.pagerdutyRoutingKey ?? base.pagerdutyRoutingKey;
    matrix[type] = {
      primary: override.primary ?? base.primary,
      escalation: override.escalation ?? base.escalation,
      channels: override.channels ?? base.channels,
      minSeverity: override.minSeverity ?? base.minSeverity,
      ...(key === undefined ? {} : { pagerdutyRoutingKey: key }),
    };
  }
  return { source, channels, matrix };
}

function knownKeysHint(path: readonly PropertyKey[]): string {
  const at = path.map(String).join('.');
  if (at === '') return ' (expected "channels" and "matrix")';
  if (at === 'matrix') return ` (expected ${issueTypes.join(', ')})`;
  if (path.length === 2 && path[0] === 'matrix') {
    return ' (expected primary, escalation, pagerdutyRoutingKey, channels, minSeverity)';
  }
  if (path.length === 2 && path[0] === 'channels') return ' (expected slack, email)';
  return '';
}

/** `$.matrix.database.escalation[1]`, `$.channels["#ops-backups"].slack` */
export function jsonPath(path: readonly PropertyKey[]): string {
  let out = '$';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && /^[A-Za-z_$][\w$]*$/.test(part)) out += `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

function describeJsonError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // V8 quotes the surrounding source ("…" is not valid JSON), which may hold a webhook URL.
  return message.replace(/,\s*".*"\s+is not valid JSON$/s, '');
}

/** Where one alert goes, before any channel is built. */
export interface AlertRoute {
  escalation: EscalationPolicy;
  /** One entry per distinct webhook; `shared` when it is the default webhook standing in. */
  slack: Array<{ webhookUrl: string; channels: string[]; shared: boolean }>;
  /** All email recipients of the alert, deduplicated, and the channel names they came from. */
  email?: { recipients: string[]; channels: string[] };
  pagerduty?: { routingKey: string; action: PageAction };
  /** Channel names (and `pagerduty`) that had nowhere to deliver. */
  unrouted: string[];
}

export interface RouteDefaults {
  slackWebhook?: string | undefined;
  pagerDutyRoutingKey?: string | undefined;
}

const severityRank: Record<AlertSeverity, number> = { info: 0, warning: 1, error: 2, critical: 3 };

export function resolveAlertRoute(routing: AlertRouting, alert: Alert, defaults: RouteDefaults = {}): AlertRoute {
  const escalation = routing.matrix[alert.issueType];
  const names = [...(alert.channelHints ?? [])];
  if (severityRank[alert.severity] >= severityRank[escalation.minSeverity]) names.push(...escalation.channels);

  const slack = new Map<string, { webhookUrl: string; channels: string[]; shared: boolean }>();
  const recipients = new Set<string>();
  const emailChannels: string[] = [];
  const unrouted: string[] = [];

  for (const name of new Set(names)) {
    const route = Object.hasOwn(routing.channels, name) ? routing.channels[name] : undefined;
    if (route === undefined) {
      if (name.startsWith('#') && defaults.slackWebhook !== undefined && defaults.slackWebhook !== '') {
        addSlack(slack, defaults.slackWebhook, name, true);
      } else {
        unrouted.push(name);
      }
      continue;
    }
    if (route.slack !== undefined) addSlack(slack, route.slack, name, false);
    if (route.email !== undefined) {
      for (const address of route.email) recipients.add(address);
      emailChannels.push(name);
    }
  }

  const route: AlertRoute = { escalation, slack: [...slack.values()], unrouted };
  if (recipients.size > 0) route.email = { recipients: [...recipients], channels: emailChannels };
  if (alert.page !== undefined) {
    const routingKey = escalation.pagerdutyRoutingKey ?? defaults.pagerDutyRoutingKey;
    if (routingKey !== undefined && routingKey !== '') route.pagerduty = { routingKey, action: alert.page };
    else unrouted.push('pagerduty');
  }
  return route;
}

function addSlack(slack: Map<string, { webhookUrl: string; channels: string[]; shared: boolean }>, webhookUrl: string, name: string, shared: boolean): void {
  const existing = slack.get(webhookUrl);
  if (existing === undefined) slack.set(webhookUrl, { webhookUrl, channels: [name], shared });
  else {
    existing.channels.push(name);
    existing.shared ||= shared;
  }
}
