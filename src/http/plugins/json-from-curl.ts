/**
 * JSON sent with curl's default content type, read as JSON — on the admin routes only.
 *
 * `curl -d '{"enabled": true}'` without `-H 'Content-Type: application/json'` labels the body
 * `application/x-www-form-urlencoded`. The runbook's own `maintenance.sh` and its T-72 h
 * "Notify users" call do exactly that; answered 415, curl still exits 0, so under `set -e` the
 * maintenance window went ahead with the app open. Admin routes therefore read such a body as
 * JSON, with Fastify's own JSON parser (same prototype-poisoning checks, same body limit), and
 * refuse one that is not JSON with a 415 that names the header to send.
 *
 * Why only the admin routes: they are what operators call from a shell, and they need a bearer
 * token, which a browser cannot attach to a cross-site request without a CORS preflight that
 * this API never grants. The app's routes are called by the app, which always sends
 * application/json; a form content type is what a hostile web page can send from a visitor's
 * browser without a preflight (`fetch(…, {mode: 'no-cors'})` with any body), so accepting it
 * on `/auth/login`, `/auth/register` or `/auth/password-reset` would let any site spread
 * guessing or mail-bombing across its visitors' addresses. There they stay a 415.
 */
import type { FastifyInstance } from 'fastify';
import { ShipError } from '../../errors.ts';

const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';

/** Registers the parser in `scope`: call it inside the encapsulated plugin that holds the admin routes. */
export function acceptJsonSentAsForm(scope: FastifyInstance): void {
  const parseJson = scope.getDefaultJsonParser('error', 'error');
  scope.addContentTypeParser<string>(FORM_CONTENT_TYPE, { parseAs: 'string' }, (request, body, done) => {
    // `curl -d ''`: no body, as if none was sent; the route's validation names what is missing.
    if (body.trim() === '') return done(null, undefined);
    const outcome = parseJson(request, body, (error, value: unknown) => {
      if (error) return done(notJson(), undefined);
      done(null, value);
    });
    // Fastify's default JSON parser is the callback form; this guards against it ever becoming async.
    if (outcome instanceof Promise)
      outcome.then(
        (value: unknown) => done(null, value),
        () => done(notJson(), undefined),
      );
  });
}

function notJson(): ShipError {
  return new ShipError(
    'SHIP_ERR_UNSUPPORTED_MEDIA_TYPE',
    `The body came as ${FORM_CONTENT_TYPE} (what curl -d sends by default) and is not JSON. Send JSON, and say so: -H 'Content-Type: application/json'.`,
  );
}
