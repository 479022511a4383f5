/**
 * The one logger factory. JSON lines on stderr (stdout belongs to command output and
 * `--json` documents), with every field that can carry a secret redacted at the source.
 */
import { createRequire } from 'node:module';
import type { Logger, LevelWithSilent } from 'pino';
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

// pino (about 25 modules) is loaded when something first logs, not when a command starts:
// most CLI commands never log. `require` because a logger must be usable synchronously.
const require = createRequire(import.meta.url);
let loadedPino: typeof import('pino').pino | undefined;
const loadPino = () => (loadedPino ??= (require('pino') as typeof import('pino')).pino);

/**
 * The logger, created on first use: the object returned stands in for it, forwarding every
 * property (method calls, `level`, `child`) to a pino logger built the first time one is read.
 */
export function createLogger(level: LevelWithSilent = 'info', destination: NodeJS.WritableStream = process.stderr): Logger {
  let real: Logger | undefined;
  const load = () => (real ??= buildLogger(level, destination));
  return new Proxy({} as Logger, {
    get: (_target, property) => {
      const logger = load();
      const value: unknown = Reflect.get(logger, property, logger);
      return typeof value === 'function' ? value.bind(logger) : value;
    },
    set: (_target, property, value) => Reflect.set(load(), property, value),
    has: (_target, property) => Reflect.has(load(), property),
  });
}

function buildLogger(level: LevelWithSilent, destination: NodeJS.WritableStream): Logger {
  const pino = loadPino();
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
