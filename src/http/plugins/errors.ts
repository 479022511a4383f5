/**
 * One error envelope for every failure: `{"error":{"code","message"}}`. Client mistakes
 * get a 4xx that says what was wrong; anything unforeseen is a 500 that names the
 * request id and never leaks a stack trace.
 *
 * That includes what Fastify and Node answer before any route runs: a malformed or over-long
 * URL (`frameworkErrors`, 400/414) and a request head too large or unparseable (`clientError`,
 * 431/400/408), which otherwise come in Fastify's own `{"error","message","statusCode"}` shape.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { databaseFailureOf, describeError, isShipError, type ErrorCode } from '../../errors.ts';

/**
 * What a client is told to wait when the database is away: a terminated session is back at
 * the next request, a restore's swap or a server restart takes seconds.
 */
export const DATABASE_RETRY_AFTER_SECONDS = 5;
const DATABASE_UNAVAILABLE_MESSAGE = `The service cannot reach its database right now. Retry in ${DATABASE_RETRY_AFTER_SECONDS} seconds.`;

/** Fastify's own error codes, mapped into the catalogue. */
const fastifyCodes: Record<string, { code: ErrorCode; message: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'SHIP_ERR_BAD_JSON', message: 'The request body is not valid JSON.' },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: 'SHIP_ERR_BAD_JSON',
    message: 'The request body is empty but Content-Type says JSON. Send a JSON body or drop the header.',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'SHIP_ERR_BODY_TOO_LARGE', message: 'The request body is too large.' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'SHIP_ERR_UNSUPPORTED_MEDIA_TYPE', message: 'Send the body as application/json.' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'SHIP_ERR_BAD_JSON', message: 'Content-Length does not match the body.' },
};

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isShipError(error)) {
      if (error.httpStatus >= 500) request.log.error({ err: error }, error.message);
      if (error.code === 'SHIP_ERR_DATABASE_UNAVAILABLE') reply.header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
      return reply.status(error.httpStatus).send({ error: { code: error.code, message: error.message } });
    }
    // The database stopped, refused us or dropped the session mid-request: the pool reconnects
    // by itself, so the client is told to come back rather than that something broke.
    const failure = databaseFailureOf(error);
    if (failure !== undefined) {
      request.log.warn({ failure, err: describeError(error) }, 'database unavailable; answered 503');
      return reply
        .status(503)
        .header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS))
        .send({ error: { code: 'SHIP_ERR_DATABASE_UNAVAILABLE', message: DATABASE_UNAVAILABLE_MESSAGE } });
    }
    // Safety net: the schemas should refuse a value before PostgreSQL does, but a value it
    // refuses as data (SQLSTATE class 22: out of range, bad encoding, invalid text for its
    // type) is still the client's to fix, not a failure of the service.
    const dataError = sqlDataErrorOf(error);
    if (dataError !== undefined) {
      request.log.warn(
        { sqlState: dataError, err: describeError(error) },
        'the database refused a value from the request; answered 400 (a schema should have refused it first)',
      );
      return reply.status(400).send({
        error: {
          code: 'SHIP_ERR_VALIDATION',
          message: `A value in this request cannot be stored (database error ${dataError}). Check the values sent against the API's documented shapes.`,
        },
      });
    }
    const known = fastifyCodes[error.code];
    if (known) {
      return reply.status(error.statusCode ?? 400).send({ error: known });
    }
    if (error.statusCode === 429) {
      return reply.status(429).send({ error: { code: 'SHIP_ERR_RATE_LIMITED', message: error.message } });
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.status(error.statusCode).send({ error: { code: 'SHIP_ERR_VALIDATION', message: error.message } });
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.status(500).send({
      error: { code: 'SHIP_ERR_INTERNAL', message: `Internal error. Quote request id ${request.id} when reporting it.` },
    });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ error: { code: 'SHIP_ERR_NOT_FOUND', message: `No route ${request.method} ${request.url.split('?')[0]}.` } });
  });
}

/** The SQLSTATE of a PostgreSQL data exception (class 22) behind `error`, if that is what it is. */
export function sqlDataErrorOf(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    const code = 'code' in current ? current.code : undefined;
    if (typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code)) return code;
  }
  return undefined;
}

/** Fastify's `frameworkErrors`: a URL it cannot route (bad percent-encoding, a parameter over maxParamLength). */
export function frameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    reply.status(414).send({ error: { code: 'SHIP_ERR_URI_TOO_LONG', message: 'A path segment of this URL is too long for any route of this API.' } });
    return;
  }
  if (error.code === 'FST_ERR_BAD_URL') {
    reply.status(400).send({ error: { code: 'SHIP_ERR_VALIDATION', message: 'The URL is not valid: it has a malformed percent-encoding.' } });
    return;
  }
  request.log.error({ err: error }, 'framework error before routing');
  reply.status(500).send({ error: { code: 'SHIP_ERR_INTERNAL', message: `Internal error. Quote request id ${request.id} when reporting it.` } });
}

/**
 * Node's `clientError`: the request could not even be parsed (head over the size limit,
 * malformed HTTP, a client too slow to send it). Answered in the envelope, then the socket is
 * closed as Node would.
 */
export function clientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message]: [number, ErrorCode, string] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'SHIP_ERR_HEADERS_TOO_LARGE', 'The request head (URL and headers) is larger than this server accepts. Send fewer or shorter headers.']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'SHIP_ERR_REQUEST_TIMEOUT', 'The request took too long to arrive.']
        : [400, 'SHIP_ERR_VALIDATION', 'The request is not valid HTTP/1.1.'];
  if (socket.writable) {
    const body = JSON.stringify({ error: { code, message } });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
