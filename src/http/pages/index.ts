/**
 * The web pages (issue 16), in their own encapsulated scope: form bodies are read here only,
 * errors are answered as pages, and every answer carries the pages' Content Security Policy.
 *
 * - /reset-password — where the reset email links (reset-password.ts)
 * - /status, /status.json — the public status page (status.ts)
 * - /console — the operator console (console.ts)
 * - /pages/assets/* — the stylesheet and the console's script
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { StatusBoard } from '../../domain/public-status.ts';
import type { ApiContext } from '../context.ts';
import { CONSOLE_JS, PAGES_CSS } from './assets.ts';
import { consolePages } from './console.ts';
import { resetPasswordPage } from './reset-password.ts';
import { acceptForms, pageErrors, pageHeaders } from './respond.ts';
import { statusPages } from './status.ts';

export async function webPages(scope: FastifyInstance, context: ApiContext): Promise<void> {
  acceptForms(scope);
  pageErrors(scope);

  // The board re-reads its figures on a timer and samples uptime once a minute: started with the
  // server, stopped with it.
  const board = new StatusBoard({ db: context.database.pool, appState: context.appState, logger: context.logger });
  scope.addHook('onReady', async () => board.start());
  scope.addHook('onClose', async () => board.stop());

  const asset = (body: string, type: string) => ({
    config: { page: true, maintenanceExempt: true, probe: true },
    handler: async (_request: unknown, reply: FastifyReply) => pageHeaders(reply, 'public, max-age=3600').type(type).send(body),
  });
  scope.get('/pages/assets/pages.css', asset(PAGES_CSS, 'text/css; charset=utf-8'));
  scope.get('/pages/assets/console.js', asset(CONSOLE_JS, 'text/javascript; charset=utf-8'));

  resetPasswordPage(scope, context);
  statusPages(scope, board);
  consolePages(scope, context);
}
