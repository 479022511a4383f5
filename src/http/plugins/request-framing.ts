/**
 * The request's framing, checked before anything reads it:
 *
 * - Headers that name one thing (who is calling, what the body is, which request this is) must
 *   come once. Node keeps the first `Authorization` and drops the rest, so a request carrying
 *   two was served as whoever came first; a proxy that reads the last one would see someone
 *   else. Such a request is a 400.
 * - A body is read as UTF-8, so one declared in another charset (`charset=utf-16`) would be
 *   misread; it is a 415.
 * - A client's `X-Request-Id` is adopted only when short and plain (it goes into headers, logs
 *   and error messages); otherwise the server makes its own (`requestIdFrom`).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { ShipError } from '../../errors.ts';

/** Headers a request may carry at most once (lower case). */
const SINGLE_HEADERS = new Set([
  'authorization',
  'content-type',
  'content-length',
  'host',
  'x-request-id',
  'idempotency-key',
  'x-maintenance-bypass',
  'transfer-encoding',
]);

const PLAIN_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Fastify's `genReqId`: the client's `X-Request-Id` when it is at most 64 of [A-Za-z0-9._-], else a fresh UUID. */
export function requestIdFrom(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && PLAIN_REQUEST_ID.test(given) ? given : randomUUID();
}

export function checkRequestFraming(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    const { rawHeaders } = request.raw;
    const seen = new Set<string>();
    for (let index = 0; index < rawHeaders.length; index += 2) {
      const name = rawHeaders[index]!.toLowerCase();
      if (!SINGLE_HEADERS.has(name)) continue;
      if (seen.has(name)) throw new ShipError('SHIP_ERR_VALIDATION', `header ${rawHeaders[index]}: sent more than once; send it once.`);
      seen.add(name);
    }
    const contentType = request.headers['content-type'];
    const charset = contentType === undefined ? undefined : /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(contentType)?.[1];
    if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
      throw new ShipError(
        'SHIP_ERR_UNSUPPORTED_MEDIA_TYPE',
        'The body is declared in a charset other than UTF-8; this API reads JSON in UTF-8 only. Send it as application/json (UTF-8).',
      );
    }
  });
}
