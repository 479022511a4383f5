/**
 * GET/POST /reset-password: the page the password-reset email links to.
 *
 * A plain HTML form that works with JavaScript off: it posts back here, and the handler calls
 * the same domain function as POST /auth/password-reset/confirm (`confirmPasswordReset`), under
 * the same rate limits. A link that no longer works says why (expired, used or replaced by a
 * newer one, incomplete) and what to do. Accessibility: every field has a label and a hint tied
 * to it, errors are listed in an alert region at the top (announced by screen readers) and named
 * at the field (`aria-invalid`, `aria-describedby`), and the page title starts with "Error:".
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { confirmPasswordReset, resetTokenState, type ResetTokenState } from '../../domain/auth.ts';
import { ShipError } from '../../errors.ts';
import type { ApiContext } from '../context.ts';
import { attemptLimiter } from '../plugins/attempt-limits.ts';
import { LIMITS } from '../routes/auth.ts';
import { password as passwordSchema } from '../schemas.ts';
import { html, page, type SafeHtml } from './html.ts';
import { refuseCrossSite, sendPage } from './respond.ts';

const TOKEN = z
  .string()
  .min(20)
  .max(200)
  .regex(/^[A-Za-z0-9_-]+$/);
const query = z.object({ token: z.string().max(400).optional() });
const form = z.object({ token: z.string().max(400).default(''), password: z.string().max(1000).default(''), confirm: z.string().max(1000).default('') });

interface FormErrors {
  password?: string;
  confirm?: string;
}

export function resetPasswordPage(app: FastifyInstance, context: ApiContext): void {
  const { pool } = context.database;
  // The same budget as the JSON route (counters shared by name): the page is no way around it.
  const limiter = attemptLimiter(app, 'passwordResetConfirm', LIMITS.passwordResetConfirm);

  app.get('/reset-password', { config: { page: true, maintenanceExempt: true } }, async (request, reply) => {
    const token = TOKEN.safeParse(query.safeParse(request.query).data?.token);
    if (!token.success) return sendPage(reply, 400, linkProblem('incomplete'));
    const state = await resetTokenState(pool, token.data);
    if (state !== 'valid') return sendPage(reply, 410, linkProblem(state));
    return sendPage(reply, 200, resetForm(token.data, {}, maintenanceNotice(context)));
  });

  app.post('/reset-password', { config: { page: true, maintenanceExempt: true } }, async (request, reply) => {
    refuseCrossSite(request);
    const input = form.parse(request.body ?? {});
    const token = TOKEN.safeParse(input.token);
    if (!token.success) return sendPage(reply, 400, linkProblem('incomplete'));
    const { maintenance } = context.appState.current;
    if (maintenance.enabled) {
      reply.header('retry-after', '120');
      return sendPage(reply, 503, resetForm(token.data, {}, maintenanceNotice(context)));
    }
    const errors = validate(input.password, input.confirm);
    if (errors.password || errors.confirm) return sendPage(reply, 422, resetForm(token.data, errors));
    await limiter.check(request, reply, token.data);
    try {
      await confirmPasswordReset(pool, { token: token.data, password: input.password }, request.ip);
    } catch (error) {
      if (!(error instanceof ShipError && error.code === 'SHIP_ERR_RESET_TOKEN_INVALID')) throw error;
      return sendPage(reply, 410, linkProblem(await resetTokenState(pool, token.data)));
    }
    return sendPage(reply, 200, done());
  });
}

function validate(password: string, confirm: string): FormErrors {
  const errors: FormErrors = {};
  const checked = passwordSchema.safeParse(password);
  if (password === '') errors.password = 'Enter a new password.';
  else if (!checked.success) errors.password = `The password ${checked.error.issues[0]?.message ?? 'is not allowed'}.`;
  if (!errors.password && confirm !== password) errors.confirm = 'The two passwords are not the same. Type the new password again.';
  return errors;
}

function maintenanceNotice(context: ApiContext): SafeHtml | undefined {
  const { maintenance } = context.appState.current;
  if (!maintenance.enabled) return undefined;
  return html`<div class="notice" role="status"><p><strong>We are doing maintenance right now.</strong> ${maintenance.message ?? ''}</p>
<p>Your link keeps working until it expires: try again in a few minutes. <a href="/status">See the status page.</a></p></div>`;
}

function resetForm(token: string, errors: FormErrors, notice?: SafeHtml): string {
  const failed = Boolean(errors.password || errors.confirm);
  const field = (name: 'password' | 'confirm', label: string, hint: string) => {
    const error = errors[name];
    return html`<label for="${name}">${label}</label>
<p class="hint" id="${name}-hint">${hint}</p>
${error ? html`<p class="field-error" id="${name}-error"><span class="visually-hidden">Error: </span>${error}</p>` : ''}
<input type="password" id="${name}" name="${name}" autocomplete="new-password" required minlength="8" maxlength="256"
  aria-describedby="${name}-hint${error ? ` ${name}-error` : ''}"${error ? html` aria-invalid="true"` : ''}>`;
  };
  return page({
    title: `${failed ? 'Error: ' : ''}Choose a new password`,
    body: html`<h1>Choose a new password</h1>
${notice ?? ''}
${
  failed
    ? html`<div class="error-summary" role="alert" aria-labelledby="error-title"><h2 id="error-title">There is a problem</h2><ul>
${errors.password ? html`<li><a href="#password">${errors.password}</a></li>` : ''}${errors.confirm ? html`<li><a href="#confirm">${errors.confirm}</a></li>` : ''}
</ul></div>`
    : ''
}
<form class="stacked" method="post" action="/reset-password" novalidate>
<input type="hidden" name="token" value="${token}">
${field('password', 'New password', 'At least 8 characters. A few unrelated words are easy to remember and hard to guess.')}
${field('confirm', 'Type the new password again', 'So a typing mistake does not lock you out.')}
<button type="submit">Change password</button>
</form>
<p class="muted">Changing your password signs you out on every device.</p>`,
  });
}

function linkProblem(state: ResetTokenState | 'incomplete'): string {
  const why: Record<Exclude<ResetTokenState, 'valid'> | 'incomplete' | 'valid', SafeHtml> = {
    expired: html`<p>This link has expired: reset links work for a limited time, so an old email cannot be used by someone else later.</p>`,
    used: html`<p>This link was already used, or a newer reset email replaced it. Only the most recent link works, and only once.</p>`,
    unknown: html`<p>This link is not valid. It may have been copied only in part: open it straight from the email.</p>`,
    incomplete: html`<p>This link is incomplete: the part after <code>?token=</code> is missing or cut short. Open the link straight from the email rather than copying it.</p>`,
    valid: html``,
  };
  return page({
    title: 'Error: This reset link does not work',
    body: html`<h1>This reset link does not work</h1>
<div class="error-summary" role="alert">${why[state]}</div>
<p>Ask for a new link from the app ("Forgot password?"), then open the newest email. If you remember your password, just sign in with it: nothing has changed.</p>`,
  });
}

function done(): string {
  return page({
    title: 'Your password was changed',
    body: html`<h1>Your password was changed</h1>
<div class="success" role="status"><p>Sign in to the app with your new password.</p></div>
<p>For your safety every device that was signed in has been signed out.</p>`,
  });
}
