/**
 * One error envelope for every failure: `{"error":{"code","message"}}`. Client mistakes
 * get a 4xx that says what was wrong; anything unforeseen is a 500 that names the
 * request id and never leaks a stack trace.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
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
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'SHIP_ERR_BAD_JSON', message: 'The request body is empty but Content-Type says JSON. Send a JSON body or drop the header.' },
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
