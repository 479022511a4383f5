/**
 * What every page answer carries: the strict Content Security Policy, no caching of pages that
 * hold a token or a session's view, no framing, no referrer (a reset link's token must not leak
 * to another site through Referer). Errors on a page are answered as a page, not JSON.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { databaseFailureOf, describeError, isShipError, ShipError } from '../../errors.ts';
import { html, page, PAGE_CSP } from './html.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A web page, not part of the JSON API: left out of `app.routeTable` (the fuzzer asserts the
     * API's JSON error envelope, which pages do not use) and tested in test/web.
     */
    page?: boolean;
  }
}

export function pageHeaders(reply: FastifyReply, cache = 'no-store'): FastifyReply {
  return reply
    .header('content-security-policy', PAGE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cache-control', cache);
}

export function sendPage(reply: FastifyReply, status: number, document: string, cache?: string): FastifyReply {
  return pageHeaders(reply, cache).status(status).type('text/html; charset=utf-8').send(document);
}

/**
 * Refuses a form posted from another site. Browsers say where a request comes from
 * (`Sec-Fetch-Site`, else `Origin`); a request that says neither (an old browser, curl) is let
 * through, because the form's own secret (the reset token, the console's CSRF token) still has
 * to be right.
 */
export function refuseCrossSite(request: FastifyRequest): void {
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string') {
    if (site === 'same-origin' || site === 'none') return;
    throw new ShipError('SHIP_ERR_FORBIDDEN', 'This form can only be sent from this site. Open the page again and send it from there.');
  }
  const origin = request.headers.origin;
  if (typeof origin === 'string' && origin !== 'null' && origin !== `${request.protocol}://${request.host}`) {
    throw new ShipError('SHIP_ERR_FORBIDDEN', 'This form can only be sent from this site. Open the page again and send it from there.');
  }
  if (origin === 'null') throw new ShipError('SHIP_ERR_FORBIDDEN', 'This form can only be sent from this site. Open the page again and send it from there.');
}

/** Forms post `application/x-www-form-urlencoded`; in the pages' scope only (the API stays JSON-only, see plugins/json-from-curl.ts). */
export function acceptForms(scope: FastifyInstance): void {
  scope.addContentTypeParser<string>('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_request, body, done) => {
    const fields: Record<string, string> = {};
    for (const [name, value] of new URLSearchParams(body)) if (!(name in fields)) fields[name] = value;
    done(null, fields);
  });
}

/**
 * Errors met on a page: a browser (Accept: text/html) gets a page with the status and message; any
 * other client the API's `{"error":{"code","message"}}` envelope, as everywhere else.
 */
export function pageErrors(scope: FastifyInstance): void {
  scope.setErrorHandler((error: FastifyError, request, reply) => {
    let status = 500;
    let code = 'SHIP_ERR_INTERNAL';
    let message = `Something went wrong on our side. Quote request id ${request.id} when reporting it.`;
    if (isShipError(error)) {
      status = error.httpStatus;
      code = error.code;
      message = error.message;
      if (status >= 500) request.log.error({ err: error }, error.message);
    } else if (databaseFailureOf(error) !== undefined) {
      status = 503;
      code = 'SHIP_ERR_DATABASE_UNAVAILABLE';
      message = 'The service is briefly unavailable. Try again in a few seconds.';
      reply.header('retry-after', '5');
      request.log.warn({ err: describeError(error) }, 'database unavailable; answered 503');
    } else if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      status = error.statusCode;
      code = status === 429 ? 'SHIP_ERR_RATE_LIMITED' : 'SHIP_ERR_VALIDATION';
      message = status === 429 ? 'Too many attempts. Wait a minute and try again.' : 'This request could not be read. Go back and try again.';
    } else {
      request.log.error({ err: error }, 'unhandled error on a page');
    }
    if (!(request.headers.accept ?? '').includes('text/html')) return reply.status(status).send({ error: { code, message } });
    return sendPage(
      reply,
      status,
      page({ title: 'Error: something went wrong', body: html`<h1>Something went wrong</h1><div class="error-summary" role="alert"><p>${message}</p></div>` }),
    );
  });
}
