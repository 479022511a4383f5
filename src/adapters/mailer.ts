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
    return (created = nodemailer.createTransport(smtpUrl));
  });
  return {
    send: async (mail) => {
      const info = await (await transport()).sendMail({ from: options.from, ...mail });
      return { messageId: info.messageId, accepted: info.accepted.map(String) };
    },
    close: () => created?.close(),
  };
}
