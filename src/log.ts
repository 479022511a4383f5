/**
 * The one logger factory. JSON lines on stderr (stdout belongs to command output and
 * `--json` documents), with every field that can carry a secret redacted at the source.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { REDACTED } from './redact.ts';

export type { Logger };

/** Paths pino censors wherever they appear in a log record. */
export const redactedPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.password',
  '*.newPassword',
  '*.token',
  '*.adminToken',
  '*.secret',
  '*.databaseUrl',
  'password',
  'token',
  'authorization',
];

export function createLogger(level: LevelWithSilent = 'info', destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino(
    {
      level,
      base: { service: 'shipshape' },
      redact: { paths: redactedPaths, censor: REDACTED },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
