/**
 * A real SMTP server (the `smtp-server` package) on 127.0.0.1 and a random port, for any test
 * that sends email: alerts, password resets, exports.
 *
 * - Plain SMTP without STARTTLS, so `smtp://user:pass@127.0.0.1:<port>` works as SMTP_URL as is.
 * - AUTH (PLAIN, LOGIN, CRAM-MD5) is required and accepted only for the configured user and
 *   password (random ones unless given); anything else gets `535`. `authOptional: true` lets
 *   unauthenticated clients send too.
 * - Every accepted message is parsed just enough to assert on: envelope, decoded headers
 *   (RFC 2047 encoded words), Subject/From/To/Cc, and the text/plain and text/html bodies
 *   (multipart, base64 and quoted-printable handled; CRLF turned into LF). `raw` keeps the
 *   message as received.
 * - `failWith({responseCode, message})` refuses the next messages at DATA (e.g. 451 for a
 *   temporary failure, 550 for a permanent one).
 *
 * A message is recorded before the server answers DATA, so once `sendMail` resolves it is in
 * `messages`. Code that sends in the background (e.g. an HTTP handler that answers 202 first)
 * should be awaited with `waitForMessage`.
 *
 * ```ts
 * const smtp = await startSmtpServer();
 * // SMTP_URL = smtp.url
 * const mail = await smtp.waitForMessage((m) => m.to.includes('ada@example.com'));
 * assert.match(mail.subject, /reset/i);
 * await smtp.close();
 * ```
 */
import { randomBytes } from 'node:crypto';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';
import { HANG_GUARD_MS } from '../helpers/patience.ts';

export interface StartSmtpServerOptions {
  /** Defaults to `shipshape`. */
  user?: string;
  /** Defaults to a random URL-safe string. */
  password?: string;
  /** Accept mail from clients that did not authenticate. Default false. */
  authOptional?: boolean;
}

export interface ReceivedMail {
  /** SMTP envelope: MAIL FROM and RCPT TO addresses (Bcc recipients appear only here). */
  envelope: { from: string; to: string[] };
  /** The user the client authenticated as, if it did. */
  authUser: string | undefined;
  /** The message exactly as received (dot-unstuffed). */
  raw: string;
  /** Header names lower-cased; values unfolded and decoded; repeated headers keep every value. */
  headers: ReadonlyMap<string, readonly string[]>;
  /** First value of a header (any case), or undefined. */
  header(name: string): string | undefined;
  subject: string;
  from: string;
  /** Bare addresses from the To header. */
  to: string[];
  cc: string[];
  /** The first text/plain part that is not an attachment, with LF line endings. */
  text: string | undefined;
  html: string | undefined;
}

export interface SmtpFailure {
  /** 4xx: temporary (clients may retry); 5xx: permanent. */
  responseCode: number;
  message?: string;
  /** How many messages are refused; omitted → every message until `clearFailure()`. */
  times?: number;
}

export interface FakeSmtpServer {
  /** `smtp://user:password@127.0.0.1:port` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Accepted messages in arrival order. */
  readonly messages: ReceivedMail[];
  /** Resolves with the first message (already received or arriving later) that matches. */
  waitForMessage(predicate?: (mail: ReceivedMail) => boolean, options?: { timeoutMs?: number }): Promise<ReceivedMail>;
  failWith(failure: SmtpFailure): void;
  clearFailure(): void;
  close(): Promise<void>;
}

export async function startSmtpServer(options: StartSmtpServerOptions = {}): Promise<FakeSmtpServer> {
  const user = options.user ?? 'shipshape';
  const password = options.password ?? randomBytes(12).toString('base64url');
  const messages: ReceivedMail[] = [];
  const waiters = new Set<(mail: ReceivedMail) => void>();
  let failure: SmtpFailure | undefined;

  const server = new SMTPServer({
    logger: false,
    // No STARTTLS: the built-in certificate is not trusted by clients, and loopback needs no TLS.
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: options.authOptional ?? false,
    authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
    disableReverseLookup: true,
    // Clients close their connection after QUIT; this only bounds close() if one did not.
    closeTimeout: 500,
    onAuth(auth: SMTPServerAuthentication, _session: SMTPServerSession, callback) {
      const ok = auth.username === user && (auth.method === 'CRAM-MD5' ? auth.validatePassword(password) : auth.password === password);
      if (ok) return callback(null, { user });
      callback(smtpError(535, 'Authentication credentials invalid'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (error: Error) => callback(error));
      stream.on('end', () => {
        if (failure !== undefined) {
          const current = failure;
          if (current.times !== undefined) {
            current.times -= 1;
            if (current.times <= 0) failure = undefined;
          }
          return callback(smtpError(current.responseCode, current.message ?? 'Message refused by the test server'));
        }
        const mailFrom = session.envelope.mailFrom;
        const mail = parseMail(
          Buffer.concat(chunks).toString('utf8'),
          {
            from: mailFrom === false ? '' : mailFrom.address,
            to: session.envelope.rcptTo.map((r) => r.address),
          },
          typeof session.user === 'string' ? session.user : undefined,
        );
        messages.push(mail);
        for (const waiter of waiters) waiter(mail);
        callback(null, 'Message queued');
      });
    },
  });
  // Client resets and the like must not crash the test process.
  server.on('error', () => {});

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('SMTP fake is not listening on TCP');
  const host = '127.0.0.1';
  const port = address.port;

  return {
    url: `smtp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}`,
    host,
    port,
    user,
    password,
    messages,
    waitForMessage(predicate = () => true, { timeoutMs = HANG_GUARD_MS } = {}) {
      const already = messages.find(predicate);
      if (already !== undefined) return Promise.resolve(already);
      return new Promise<ReceivedMail>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`No matching email arrived within ${timeoutMs} ms (${messages.length} received).`));
        }, timeoutMs);
        const waiter = (mail: ReceivedMail): void => {
          if (!predicate(mail)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(mail);
        };
        waiters.add(waiter);
      });
    },
    failWith(next) {
      failure = { ...next };
    },
    clearFailure() {
      failure = undefined;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function smtpError(responseCode: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode });
}

// ---- minimal MIME parsing (RFC 5322 headers, RFC 2045/2046 bodies, RFC 2047 words) ----

interface MimePart {
  headers: Map<string, string[]>;
  body: string;
}

/** Parses a raw RFC 5322 message into a `ReceivedMail`. Exported for tests of the parser itself. */
export function parseMail(raw: string, envelope: { from: string; to: string[] }, authUser?: string): ReceivedMail {
  const top = splitPart(raw);
  const first = (name: string): string | undefined => top.headers.get(name.toLowerCase())?.[0];
  const leaves = collectLeaves(top);
  const pick = (type: string): string | undefined => {
    const part = leaves.find(
      (leaf) => mediaType(leaf) === type && !(leaf.headers.get('content-disposition')?.[0] ?? '').toLowerCase().startsWith('attachment'),
    );
    return part === undefined ? undefined : decodeBody(part);
  };
  return {
    envelope,
    authUser,
    raw,
    headers: top.headers,
    header: first,
    subject: first('subject') ?? '',
    from: first('from') ?? '',
    to: addresses(first('to')),
    cc: addresses(first('cc')),
    text: pick('text/plain'),
    html: pick('text/html'),
  };
}

function splitPart(raw: string): MimePart {
  const match = /\r?\n\r?\n/.exec(raw);
  const headerBlock = match === null ? raw : raw.slice(0, match.index);
  const body = match === null ? '' : raw.slice(match.index + match[0].length);
  const headers = new Map<string, string[]>();
  // Unfold: a line starting with whitespace continues the previous header.
  const unfolded = headerBlock.replace(/\r?\n(?=[ \t])/g, '');
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = decodeEncodedWords(line.slice(colon + 1).trim());
    const list = headers.get(name);
    if (list === undefined) headers.set(name, [value]);
    else list.push(value);
  }
  return { headers, body };
}

function mediaType(part: MimePart): string {
  return (part.headers.get('content-type')?.[0] ?? 'text/plain').split(';')[0]?.trim().toLowerCase() ?? 'text/plain';
}

function parameter(headerValue: string | undefined, name: string): string | undefined {
  if (headerValue === undefined) return undefined;
  const match = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, 'i').exec(headerValue);
  return match?.[1] ?? match?.[2];
}

function collectLeaves(part: MimePart): MimePart[] {
  if (!mediaType(part).startsWith('multipart/')) return [part];
  const boundary = parameter(part.headers.get('content-type')?.[0], 'boundary');
  if (boundary === undefined) return [part];
  const leaves: MimePart[] = [];
  const delimiter = `--${boundary}`;
  const sections = part.body.split(new RegExp(`\\r?\\n?${escapeRegExp(delimiter)}`));
  // sections[0] is the preamble; a section starting with "--" is the close delimiter's epilogue.
  for (const section of sections.slice(1)) {
    if (section.startsWith('--')) break;
    leaves.push(...collectLeaves(splitPart(section.replace(/^[ \t]*\r?\n/, ''))));
  }
  return leaves;
}

function decodeBody(part: MimePart): string {
  const encoding = (part.headers.get('content-transfer-encoding')?.[0] ?? '7bit').trim().toLowerCase();
  const charset = parameter(part.headers.get('content-type')?.[0], 'charset') ?? 'utf-8';
  let bytes: Buffer;
  if (encoding === 'base64') bytes = Buffer.from(part.body.replace(/\s+/g, ''), 'base64');
  else if (encoding === 'quoted-printable') bytes = decodeQuotedPrintable(part.body);
  else bytes = Buffer.from(part.body, 'utf8');
  return decodeCharset(bytes, charset).replace(/\r\n/g, '\n');
}

function decodeQuotedPrintable(text: string): Buffer {
  const softBreaksRemoved = text.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < softBreaksRemoved.length; i += 1) {
    const char = softBreaksRemoved[i] ?? '';
    const hex = softBreaksRemoved.slice(i + 1, i + 3);
    if (char === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(char, 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

function decodeCharset(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset).decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

/** RFC 2047: `=?UTF-8?Q?Caf=C3=A9?=` / `=?UTF-8?B?Q2Fmw6k=?=`; whitespace between words is dropped. */
function decodeEncodedWords(value: string): string {
  return value.replace(/(\?=)\s+(=\?)/g, '$1$2').replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_whole, charset: string, kind: string, data: string) => {
    const bytes = kind.toUpperCase() === 'B' ? Buffer.from(data, 'base64') : decodeQuotedPrintable(data.replace(/_/g, ' '));
    return decodeCharset(bytes, charset.split('*')[0] ?? charset);
  });
}

/** Bare addresses from an address-list header: `"Ops" <ops@x.com>, b@y.com` → both addresses. */
function addresses(value: string | undefined): string[] {
  if (value === undefined || value.trim() === '') return [];
  const out: string[] = [];
  let current = '';
  let quoted = false;
  let angle = 0;
  for (const char of value) {
    if (char === '"') quoted = !quoted;
    else if (!quoted && char === '<') angle += 1;
    else if (!quoted && char === '>') angle -= 1;
    if (char === ',' && !quoted && angle === 0) {
      out.push(current);
      current = '';
    } else current += char;
  }
  out.push(current);
  return out
    .map((entry) => {
      const bracketed = /<([^>]*)>/.exec(entry);
      return (bracketed?.[1] ?? entry).trim();
    })
    .filter((address) => address !== '');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
