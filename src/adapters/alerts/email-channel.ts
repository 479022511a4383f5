/**
 * Alert email over SMTP with nodemailer: a plain-text body plus a simple HTML one.
 *
 * The transport is created once from SMTP_URL (`smtp://user:pass@host:port`, or `smtps://`
 * for implicit TLS) and shared by every email channel; nodemailer opens one connection per
 * message, so there is nothing to close.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SendMailOptions } from 'nodemailer';
import { ShipError, describeError } from '../../errors.ts';
import { facts, headline } from './format.ts';
import { defaultRetryPolicy, defaultTimeoutMs, type RetryPolicy } from './post-json.ts';
import { createRedactor, type Redact } from '../../redact.ts';
import { loadOnce } from '../load-once.ts';
import type { Alert, AlertChannel } from './types.ts';

/** What the email channel needs of a transport: nodemailer's, or one that creates it when first used. */
export interface SmtpTransport {
  sendMail(mail: SendMailOptions): Promise<unknown>;
}

export interface SmtpTransportOptions {
  /** `smtp://user:pass@host:port` or `smtps://…`. A secret (it holds the password). */
  url: string;
  /** Applies to connecting, the greeting and each socket read. */
  timeoutMs?: number;
}

/** Validates the URL and creates the shared transport. Throws SHIP_ERR_CONFIG on a bad URL. */
export function createSmtpTransport(options: SmtpTransportOptions): SmtpTransport {
  let parsed: URL;
  try {
    parsed = new URL(options.url);
  } catch {
    throw smtpUrlError('is not a valid URL');
  }
  if (parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:') {
    throw smtpUrlError(`uses ${parsed.protocol}// but only smtp:// and smtps:// are supported`);
  }
  if (parsed.hostname === '') throw smtpUrlError('has no host');
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  const transport = loadOnce(async () => {
    const { default: nodemailer } = await import('nodemailer');
    return nodemailer.createTransport({
      url: options.url,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
    });
  });
  return { sendMail: async (mail) => (await transport()).sendMail(mail) };
}

function smtpUrlError(problem: string): ShipError {
  // The URL itself is never quoted: it carries the SMTP password.
  return new ShipError('SHIP_ERR_CONFIG', `SMTP_URL ${problem}. Set it to smtp://user:password@host:port (or smtps:// for implicit TLS).`);
}

export interface EmailChannelOptions {
  transport: SmtpTransport;
  /** Sender, e.g. `Shipshape <shipshape@example.com>`. */
  from: string;
  to: readonly string[];
  /** Names the channel: `email:<label>`, e.g. the routing channel name `ops-team`. */
  label: string;
  retry?: RetryPolicy;
  /** Redacts secrets that may surface in SMTP errors; pass one built from SMTP_URL. */
  redact?: Redact;
}

export function createEmailChannel(options: EmailChannelOptions): AlertChannel {
  const redact = options.redact ?? createRedactor([]);
  const retry = options.retry ?? defaultRetryPolicy;
  return {
    name: `email:${options.label}`,
    async send(alert) {
      const message = alertEmail(alert);
      const attempts = retry.retries + 1;
      for (let attempt = 1; ; attempt += 1) {
        try {
          await options.transport.sendMail({
            from: options.from,
            to: [...options.to],
            subject: message.subject,
            text: message.text,
            html: message.html,
            priority: alert.severity === 'error' || alert.severity === 'critical' ? 'high' : 'normal',
            headers: { 'X-Shipshape-Event': alert.event, 'X-Shipshape-Severity': alert.severity },
          });
          return;
        } catch (error) {
          if (attempt >= attempts || !isTransientSmtpError(error)) {
            const tries = attempt === 1 ? '' : ` (tried ${attempt} times)`;
            throw new ShipError('SHIP_ERR_PROVIDER_FAILED', redact(`SMTP delivery failed: ${describeError(error)}${tries}. ${adviseSmtp(error)}`), {
              details: { provider: 'smtp' },
            });
          }
          await sleep(Math.min(retry.maxDelayMs, retry.backoffMs * 2 ** (attempt - 1)));
        }
      }
    },
  };
}

export interface AlertEmail {
  subject: string;
  text: string;
  html: string;
}

/** Subject, text and HTML for an alert. */
export function alertEmail(alert: Alert): AlertEmail {
  const factList = facts(alert);
  const text = [alert.text, '', ...factList.map(([label, value]) => `${label}: ${value}`), '', '-- ', 'Sent by Shipshape', ''].join('\n');
  const rows = factList.map(([label, value]) => `<tr><th align="left">${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`).join('');
  const html = [
    '<!doctype html><html><body>',
    `<h2>${escapeHtml(alert.title)}</h2>`,
    `<p>${escapeHtml(alert.text).replace(/\r?\n/g, '<br>')}</p>`,
    `<table>${rows}</table>`,
    '<p style="color:#888">Sent by Shipshape</p>',
    '</body></html>',
  ].join('');
  // Header injection is not possible (nodemailer folds and encodes), but newlines in a
  // subject would still be mangled, so flatten them.
  return { subject: `[Shipshape] ${headline(alert)}`.replace(/\s*\r?\n\s*/g, ' '), text, html };
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function errorField(error: unknown, field: 'code' | 'responseCode'): string | number | undefined {
  if (typeof error !== 'object' || error === null || !(field in error)) return undefined;
  const value: unknown = Reflect.get(error, field);
  return typeof value === 'string' || typeof value === 'number' ? value : undefined;
}

/** Dropped connections and 4yz replies may succeed on a new attempt; 5yz and auth failures won't. */
function isTransientSmtpError(error: unknown): boolean {
  const responseCode = errorField(error, 'responseCode');
  if (typeof responseCode === 'number') return responseCode >= 400 && responseCode < 500;
  const code = errorField(error, 'code');
  return code === 'ECONNECTION' || code === 'ETIMEDOUT' || code === 'ESOCKET';
}

function adviseSmtp(error: unknown): string {
  const code = errorField(error, 'code');
  if (code === 'EAUTH' || code === 'ENOAUTH') return 'Check the user and password in SMTP_URL.';
  if (code === 'EENVELOPE') return 'Check the sender (MAIL_FROM) and the recipients in the alert routing file.';
  if (code === 'EMESSAGE') return 'The SMTP server refused the message; its reply above says why.';
  if (code === 'ECONNECTION' || code === 'ESOCKET' || code === 'ETIMEDOUT' || code === 'EDNS') {
    return 'Check that the SMTP server in SMTP_URL is reachable from this host.';
  }
  return 'Check the SMTP server and SMTP_URL.';
}
