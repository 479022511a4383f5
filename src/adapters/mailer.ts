/**
 * Outgoing email. With SMTP_URL it goes over SMTP (nodemailer); without, each message is
 * written to the log so the embedded default still shows what would have been sent.
 */
import type { Logger } from '../log.ts';
import { loadOnce } from './load-once.ts';

export interface OutgoingMail {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html?: string | undefined;
}

export interface SentMail {
  readonly messageId: string;
  /** Recipients the server accepted. */
  readonly accepted: string[];
}

export interface Mailer {
  send(mail: OutgoingMail): Promise<SentMail>;
  close(): void;
}

/** How long the mailer waits to connect, for the greeting, and on a silent socket. */
const SMTP_TIMEOUT_MS = 10_000;

export function createMailer(options: { smtpUrl: string | undefined; from: string }, logger: Logger): Mailer {
  if (!options.smtpUrl) {
    let sequence = 0;
    return {
      send: async (mail) => {
        logger.info({ mail: { to: mail.to, subject: mail.subject, text: mail.text } }, 'email (no SMTP_URL configured, so it was logged instead of sent)');
        return { messageId: `logged-${Date.now()}-${++sequence}`, accepted: [mail.to] };
      },
      close: () => undefined,
    };
  }
  const { smtpUrl } = options;
  let created: { close(): void } | undefined;
  const transport = loadOnce(async () => {
    const { default: nodemailer } = await import('nodemailer');
    // Bounded at every stage: nodemailer's own defaults wait up to 2 min to connect and 10 min on
    // a silent socket, and a stalled server would hold every email queued behind this one.
    return (created = nodemailer.createTransport({
      url: smtpUrl,
      connectionTimeout: SMTP_TIMEOUT_MS,
      greetingTimeout: SMTP_TIMEOUT_MS,
      socketTimeout: SMTP_TIMEOUT_MS,
    }));
  });
  return {
    send: async (mail) => {
      const info = await (await transport()).sendMail({ from: options.from, ...mail });
      return { messageId: info.messageId, accepted: info.accepted.map(String) };
    },
    close: () => created?.close(),
  };
}
