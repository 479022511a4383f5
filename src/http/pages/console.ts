/**
 * /console: the operator console. Everything it shows or does goes through the functions the
 * CLI uses — `listRuns`/`loadRun`/`presentRunJournal` (`shipshape runs`), `approveRun`
 * (`shipshape approve`), `refuseRun` (`shipshape refuse`), `listBackups` (`shipshape db backups`), `gatherHealth` and `runDoctor`
 * (`shipshape health`, `shipshape doctor`), `queryAudit` (`shipshape audit`), `pauseSchedule` /
 * `resumeSchedule` (`shipshape schedule pause|resume`) and `cancelScheduledNotification`
 * (`shipshape notify cancel`), and `runProcedure` with the registered `db restore` procedure
 * (`shipshape db restore`: it stops awaiting approval; the restore runs when the requester
 * resumes it with `shipshape runs resume`), each audited as the CLI audits it — so there is no
 * second implementation to drift.
 *
 * Sign-in: an operator name and an admin token (ADMIN_TOKEN or one from `shipshape admin-token`),
 * posted once and exchanged for a console session (src/domain/console-sessions.ts) in a cookie
 * that is HttpOnly, SameSite=Strict, limited to /console and Secure behind https. The admin token
 * is never put in a URL, a page or the cookie. Every form carries the session's CSRF token and is
 * refused from another site; the operator's name goes into the run journal (approvals) and the
 * audit trail (sign-in, sign-out, approvals) of everything done here.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { verifyAdminToken } from '../../domain/admin-tokens.ts';
import { queryAudit } from '../../domain/audit-query.ts';
import { readMetricsSeries, type MetricsMinute } from '../../domain/metrics-series.ts';
import { recordAudit } from '../../domain/audit.ts';
import {
  csrfMatches,
  csrfTokenFor,
  endConsoleSession,
  findConsoleSession,
  openConsoleSession,
  OPERATOR_NAME,
  type ConsoleSession,
} from '../../domain/console-sessions.ts';
import { ShipError, describeError } from '../../errors.ts';
import { loadOnce } from '../../adapters/load-once.ts';
import { formatBytes } from '../../bytes.ts';
import { cancelScheduledNotification, listNotifications } from '../../domain/scheduled-notifications.ts';
import { ensureDefaultSchedules, listSchedules, pauseSchedule, resumeSchedule } from '../../scheduler/schedules.ts';
import { thresholds } from '../../ops/diagnostics/thresholds.ts';
import type { RunRecord } from '../../ops/engine/index.ts';
import { isRunId } from '../../ops/engine/run-id.ts';
import { applicationDatabaseName } from '../../ops/backups/database-target.ts';
import { presentRunJournal, runSummary } from '../../ops/present/present.ts';
import type { ApiContext } from '../context.ts';
import { attemptLimiter } from '../plugins/attempt-limits.ts';
import { html, page, type SafeHtml } from './html.ts';
import { refuseCrossSite, sendPage } from './respond.ts';

/**
 * The engine, backups, diagnostics and the restore procedure, loaded with the first console page
 * that needs them: every API server registers the console, few ever serve it, and this code
 * (about a hundred modules) would otherwise sit in every idle server's memory.
 */
const ops = loadOnce(() => import('./console-ops.ts'));

const COOKIE = 'shipshape_console';
const PAGE_CONFIG = { page: true, maintenanceExempt: true } as const;
/** Sign-in attempts: per address, and per operator name. */
const LOGIN_LIMITS = { perIp: { max: 20, timeWindow: 60_000 }, perAccount: { max: 10, timeWindow: 15 * 60_000 } } as const;
const RUN_POLL_MS = 500;

const loginForm = z.object({ operator: z.string().trim().max(200).default(''), token: z.string().max(1000).default('') });
const csrfForm = z.object({ csrf: z.string().max(200).optional() });
const runParams = z.object({ runId: z.string().max(64) });

/** Path parameters the console's routes read; anything else is a page that does not exist. */
function pathParams<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ShipError('SHIP_ERR_NOT_FOUND', 'There is no such console page. Start again from /console.');
  return parsed.data;
}

interface Signed {
  readonly session: ConsoleSession;
  readonly csrf: string;
}

function cookieOf(request: FastifyRequest, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return decodeURIComponent(value.join('='));
  }
  return undefined;
}

function sessionCookie(request: FastifyRequest, value: string, maxAgeSeconds: number): string {
  const secure = request.protocol === 'https' ? '; Secure' : '';
  return `${COOKIE}=${encodeURIComponent(value)}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}

export function consolePages(app: FastifyInstance, context: ApiContext): void {
  const { pool } = context.database;
  const { config } = context;
  const limiter = attemptLimiter(app, 'consoleLogin', LOGIN_LIMITS);
  const streams = new Set<() => void>();
  // Before the server waits for its connections to finish: a log stream would otherwise hold it open.
  app.addHook('preClose', async () => {
    for (const end of streams) end();
  });

  /** The signed-in operator, or undefined after answering with the sign-in page's address. */
  async function signedIn(request: FastifyRequest, reply: FastifyReply): Promise<Signed | undefined> {
    const token = cookieOf(request, COOKIE);
    const session = await findConsoleSession(pool, token);
    if (!session || !token) {
      await reply.redirect('/console/login', 303);
      return undefined;
    }
    return { session, csrf: csrfTokenFor(token) };
  }

  /** For POSTs: a signed-in session, a form from this site, and the session's CSRF token. */
  async function signedForm(request: FastifyRequest, reply: FastifyReply): Promise<Signed | undefined> {
    refuseCrossSite(request);
    const signed = await signedIn(request, reply);
    if (!signed) return undefined;
    const token = cookieOf(request, COOKIE) ?? '';
    if (!csrfMatches(token, csrfForm.parse(request.body ?? {}).csrf)) {
      throw new ShipError('SHIP_ERR_FORBIDDEN', 'This form is out of date or did not come from the console. Open the page again and repeat the action.');
    }
    return signed;
  }

  const actor = (session: ConsoleSession) => `operator:${session.operator}`;

  function consolePage(signed: Signed, title: string, body: SafeHtml, options: { scripts?: string[]; refreshSeconds?: number } = {}): string {
    return page({
      title: `${title} — Shipshape console`,
      ...options,
      body: html`<nav aria-label="Console"><ul>
<li><a href="/console">Runs</a></li><li><a href="/console/backups">Backups</a></li><li><a href="/console/health">Health</a></li><li><a href="/console/schedules">Schedules</a></li><li><a href="/console/audit">Audit trail</a></li><li><a href="/status">Status page</a></li>
<li class="muted">Signed in as <strong id="operator">${signed.session.operator}</strong></li>
<li><form class="inline" method="post" action="/console/logout"><input type="hidden" name="csrf" value="${signed.csrf}"><button class="secondary" type="submit">Sign out</button></form></li>
</ul></nav>
<h1>${title}</h1>
${body}`,
    });
  }

  // --- sign-in and sign-out -------------------------------------------------------------

  const loginPage = (error?: string, operator = '') =>
    page({
      title: `${error ? 'Error: ' : ''}Sign in — Shipshape console`,
      body: html`<h1>Operator console</h1>
${error ? html`<div class="error-summary" role="alert"><p>${error}</p></div>` : ''}
<form class="stacked" method="post" action="/console/login">
<label for="operator">Your name</label>
<p class="hint" id="operator-hint">Recorded with everything you do here, as SHIPSHAPE_OPERATOR is in the CLI.</p>
<input type="text" id="operator" name="operator" value="${operator}" required autocomplete="username" aria-describedby="operator-hint">
<label for="token">Admin token</label>
<p class="hint" id="token-hint">ADMIN_TOKEN, or a token from <code>shipshape admin-token rotate</code>. It is checked once and not kept in the browser.</p>
<input type="password" id="token" name="token" required autocomplete="off" aria-describedby="token-hint">
<button type="submit">Sign in</button>
</form>`,
    });

  app.get('/console/login', { config: PAGE_CONFIG }, async (_request, reply) => sendPage(reply, 200, loginPage()));

  app.post('/console/login', { config: PAGE_CONFIG }, async (request, reply) => {
    refuseCrossSite(request);
    const input = loginForm.parse(request.body ?? {});
    if (!OPERATOR_NAME.test(input.operator))
      return sendPage(reply, 422, loginPage('Enter your name: letters, digits, dot, dash, underscore or @, at most 64.', input.operator));
    await limiter.check(request, reply, input.operator);
    const check = await verifyAdminToken(pool, input.token, config.adminToken);
    if (!check.ok) {
      await recordAudit(pool, { actor: `operator:${input.operator}`, action: 'console.login.failed', ip: request.ip, details: { reason: check.reason } });
      const why =
        check.reason === 'disabled'
          ? 'No admin token is configured: set ADMIN_TOKEN or run `shipshape admin-token rotate`.'
          : `That admin token is not valid (${check.reason}).`;
      return sendPage(reply, 401, loginPage(why, input.operator));
    }
    const session = await openConsoleSession(pool, { operator: input.operator, adminTokenId: check.tokenId, ip: request.ip });
    await recordAudit(pool, {
      actor: `operator:${session.operator}`,
      action: 'console.login',
      ip: request.ip,
      details: { session: session.id, via: check.via },
    });
    reply.header('set-cookie', sessionCookie(request, session.token, Math.floor((session.expiresAt.getTime() - Date.now()) / 1000)));
    return reply.redirect('/console', 303);
  });

  app.post('/console/logout', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedForm(request, reply);
    if (!signed) return reply;
    await endConsoleSession(pool, signed.session.id);
    await recordAudit(pool, { actor: actor(signed.session), action: 'console.logout', ip: request.ip, details: { session: signed.session.id } });
    reply.header('set-cookie', sessionCookie(request, '', 0));
    return reply.redirect('/console/login', 303);
  });

  // --- runs and approvals ---------------------------------------------------------------

  const database = applicationDatabaseName(config);
  const runLink = (runId: string) => html`<a href="/console/runs/${runId}">${runId}</a>`;

  app.get('/console', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedIn(request, reply);
    if (!signed) return reply;
    const runs = (await (await ops()).listRuns(config.stateDir, 100)).map(runSummary);
    const waiting = runs.filter((run) => run.state === 'awaiting-approval');
    const body = html`<h2>Waiting for approval</h2>
${
  waiting.length === 0
    ? html`<p>No run is waiting for a second operator.</p>`
    : html`<ul id="waiting">${waiting.map((run) => html`<li>${runLink(run.runId)} — <code>shipshape ${run.command}</code> (${run.risk} risk), requested by ${run.operator} at ${run.startedAt}</li>`)}</ul>`
}
<h2>Recent runs</h2>
<table><thead><tr><th scope="col">Run</th><th scope="col">Procedure</th><th scope="col">Operator</th><th scope="col">State</th><th scope="col">Started (UTC)</th></tr></thead><tbody>
${runs.map((run) => html`<tr><td>${runLink(run.runId)}</td><td>${run.command}</td><td>${run.operator}</td><td>${run.state}</td><td>${run.startedAt.replace('T', ' ').slice(0, 19)}</td></tr>`)}
</tbody></table>`;
    return sendPage(reply, 200, consolePage(signed, 'Runs', body, { refreshSeconds: 15 }));
  });

  async function runOr404(runId: string): Promise<RunRecord> {
    if (!isRunId(runId)) throw new ShipError('SHIP_ERR_NOT_FOUND', `There is no run ${runId}. The runs list shows every run.`);
    return (await ops()).loadRun(config.stateDir, runId);
  }

  app.get('/console/runs/:runId', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedIn(request, reply);
    if (!signed) return reply;
    const record = await runOr404(pathParams(runParams, request.params).runId);
    const summary = runSummary(record);
    const requester = record.created.operator;
    const approvalLive = record.approval !== undefined && Date.parse(record.approval.expiresAt) > Date.now();
    const canApprove = record.state === 'awaiting-approval' && requester !== signed.session.operator && !approvalLive;
    const body = html`<p><code>shipshape ${summary.command}</code> — ${record.created.procedure.title} (${summary.risk} risk). Requested by <strong>${requester}</strong> at ${summary.startedAt}.</p>
<p role="status">State: <strong id="run-state">${summary.state}</strong>${summary.exitCode === null ? '' : html` (exit ${summary.exitCode})`}</p>
<p id="run-changed" hidden>The run has moved on: <a href="/console/runs/${record.runId}">reload</a> for its steps.</p>
<p>Parameters: <code>${JSON.stringify(record.created.params)}</code></p>
${
  record.state === 'awaiting-approval' && !approvalLive
    ? canApprove
      ? html`<form class="stacked" method="post" action="/console/runs/${record.runId}/approve"><input type="hidden" name="csrf" value="${signed.csrf}">
<p>Approving lets ${requester} go ahead with this run (<code>shipshape runs resume ${record.runId}</code>) within the approval's validity.</p>
<button type="submit">Approve as ${signed.session.operator}</button></form>`
      : html`<p class="notice" id="own-run">You requested this run: a different operator must approve it.</p>`
    : ''
}
${
  record.state === 'awaiting-approval'
    ? html`<form class="stacked" method="post" action="/console/runs/${record.runId}/refuse"><input type="hidden" name="csrf" value="${signed.csrf}">
<label for="reason">${requester === signed.session.operator ? 'Why you withdraw it' : 'Why you refuse it'}</label>
<p class="hint" id="reason-hint">Recorded in the run's journal and shown to ${requester}. The run ends failed; no step runs.</p>
<input type="text" id="reason" name="reason" required maxlength="500" aria-describedby="reason-hint">
<button class="secondary" type="submit">${requester === signed.session.operator ? 'Withdraw my run' : `Refuse as ${signed.session.operator}`}</button></form>`
    : ''
}
${record.approval ? html`<p>Approved by <strong id="approved-by">${record.approval.by}</strong> (${record.approval.how}), valid until ${record.approval.expiresAt}.</p>` : ''}
<h2>Steps</h2>
<ol id="steps">${record.steps.map((step) => html`<li><strong>${step.title}</strong> — ${step.status}${step.error ? html`: ${step.error.message}` : ''}</li>`)}</ol>
<h2>Log</h2>
<pre class="log" id="log" data-run-events="/console/runs/${record.runId}/events">${logLines(record).join('\n')}
</pre>`;
    return sendPage(reply, 200, consolePage(signed, `Run ${record.runId}`, body, { scripts: ['console.js'] }));
  });

  // The run's log as the CLI shows it (`shipshape runs show`), line by line as the journal grows.
  app.get('/console/runs/:runId/events', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedIn(request, reply);
    if (!signed) return reply;
    const first = await runOr404(pathParams(runParams, request.params).runId);
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      connection: 'keep-alive',
    });
    let sent = logLines(first).length;
    let state = first.state;
    let timer: NodeJS.Timeout | undefined;
    const end = () => {
      clearTimeout(timer);
      streams.delete(end);
      if (!raw.writableEnded) raw.end('event: end\ndata: null\n\n');
    };
    streams.add(end);
    request.raw.on('close', end);
    const tick = async () => {
      try {
        const record = await (await ops()).loadRun(config.stateDir, first.runId);
        const lines = logLines(record);
        for (const line of lines.slice(sent)) raw.write(`event: line\ndata: ${JSON.stringify(line)}\n\n`);
        sent = lines.length;
        if (record.state !== state) raw.write(`event: state\ndata: ${JSON.stringify(record.state)}\n\n`);
        state = record.state;
      } catch (error) {
        request.log.warn({ err: describeError(error) }, 'could not read a run journal for the console');
      }
      if (streams.has(end)) timer = setTimeout(() => void tick(), RUN_POLL_MS);
    };
    timer = setTimeout(() => void tick(), RUN_POLL_MS);
  });

  app.post('/console/runs/:runId/approve', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedForm(request, reply);
    if (!signed) return reply;
    const record = await runOr404(pathParams(runParams, request.params).runId);
    // The engine's own approval: it refuses the requester, a run not waiting, and records the approver in the journal.
    const result = await (await ops()).approveRun(record.runId, { config: { ...config, operator: signed.session.operator } });
    await recordAudit(pool, {
      actor: actor(signed.session),
      action: 'console.run.approved',
      ip: request.ip,
      details: { runId: result.runId, procedure: result.procedure.id, requestedBy: result.requestedBy, expiresAt: result.expiresAt },
    });
    return reply.redirect(`/console/runs/${record.runId}`, 303);
  });

  const refuseForm = z.object({ reason: z.string().trim().max(500).default('') });
  app.post('/console/runs/:runId/refuse', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedForm(request, reply);
    if (!signed) return reply;
    const record = await runOr404(pathParams(runParams, request.params).runId);
    const { reason } = refuseForm.parse(request.body ?? {});
    // The engine's own refusal (as `shipshape refuse`): it ends only a run still waiting, and journals who and why.
    const result = await (await ops()).refuseRun(record.runId, { by: signed.session.operator, reason }, { config });
    await recordAudit(pool, {
      actor: actor(signed.session),
      action: result.withdrawn ? 'console.run.withdrawn' : 'console.run.refused',
      ip: request.ip,
      details: { runId: result.runId, procedure: result.procedure.id, requestedBy: result.requestedBy, reason: result.reason },
    });
    return reply.redirect(`/console/runs/${record.runId}`, 303);
  });

  // --- backups, health, audit -------------------------------------------------------------

  app.get('/console/backups', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedIn(request, reply);
    if (!signed) return reply;
    return sendPage(reply, 200, await backupsPage(signed));
  });

  async function backupsPage(signed: Signed, restoreError?: string, restoreInput: { backup?: string; confirm?: string } = {}): Promise<string> {
    const { withBackupStore, listBackups } = await ops();
    const { location, entries } = await withBackupStore(config, async (store) => ({ location: store.location, entries: await listBackups(store) }));
    const csrf = html`<input type="hidden" name="csrf" value="${signed.csrf}">`;
    const now = Date.now();
    const age = (date: Date) => {
      const hours = (now - date.getTime()) / 3_600_000;
      return hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(1)} days`;
    };
    const body = html`<p>In <code>${location}</code>. <strong>Verify</strong> re-reads a backup from storage and checks it as <code>shipshape db verify &lt;id&gt;</code> does (add <code>--restore</code> in the CLI for a scratch restore). Restore with the form below or <code>shipshape db restore &lt;id&gt;</code>: either way it waits for a second operator's approval, given on its run page here.</p>
${
  entries.length === 0
    ? html`<p>No backups yet: <code>shipshape db backup</code> takes one.</p>`
    : html`<table id="backups"><thead><tr><th scope="col">Backup</th><th scope="col">State</th><th scope="col">Age</th><th scope="col">Size</th><th scope="col">Last verified</th><th scope="col"></th></tr></thead><tbody>
${entries.map(
  (
    entry,
  ) => html`<tr><td>${entry.id}</td><td>${entry.state}${entry.problem ? html`<br><span class="muted">${entry.problem}</span>` : ''}</td><td>${age(entry.createdAt)}</td><td>${formatBytes(entry.objects.reduce((sum, object) => sum + object.bytes, 0))}</td><td>${entry.lastVerification ? (entry.lastVerification.ok ? `ok at ${entry.lastVerification.at}${entry.lastVerification.restoreTested ? ' (scratch restore)' : ''}` : `FAILED at ${entry.lastVerification.at}: ${entry.lastVerification.problem ?? ''}`) : '—'}</td>
<td>${entry.manifest ? html`<form class="inline" method="post" action="/console/backups/${entry.id}/verify">${csrf}<button class="secondary" type="submit" aria-label="Verify ${entry.id}">Verify</button></form>` : ''}</td></tr>`,
)}
</tbody></table>`
}
<h2>Restore…</h2>
<p>Starts <code>shipshape db restore &lt;backup&gt;</code> as you, through the same engine: its prerequisites are checked now (the backup is re-read and verified), then, being critical, the run <strong>waits for a second operator's approval</strong> on its run page. Nothing is restored by this form. Once approved, the requester runs <code>shipshape runs resume &lt;run-id&gt; --yes</code>, which restores beside the live database and swaps.</p>
${restoreError ? html`<div class="error-summary" role="alert"><p>${restoreError}</p></div>` : ''}
<form class="stacked" method="post" action="/console/restore">${csrf}
<label for="restore-backup">Backup</label>
<select id="restore-backup" name="backup" required>${entries
      .filter((entry) => entry.manifest)
      .map((entry) => html`<option value="${entry.id}"${entry.id === restoreInput.backup ? html` selected` : ''}>${entry.id}</option>`)}</select>
<label for="restore-confirm">Type the database name, <code>${database}</code>, to confirm</label>
<p class="hint" id="restore-confirm-hint">The restore replaces this database (the replaced one is kept, renamed).</p>
<input type="text" id="restore-confirm" name="confirm" required autocomplete="off" value="${restoreInput.confirm ?? ''}" aria-describedby="restore-confirm-hint"${restoreError ? html` aria-invalid="true"` : ''}>
<button type="submit">Ask for approval to restore</button>
</form>`;
    return consolePage(signed, 'Backups', body);
  }

  const restoreForm = z.object({ backup: z.string().trim().max(200).default(''), confirm: z.string().trim().max(200).default('') });
  app.post('/console/restore', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedForm(request, reply);
    if (!signed) return reply;
    const input = restoreForm.parse(request.body ?? {});
    if (input.confirm !== database) {
      return sendPage(reply, 422, await backupsPage(signed, `To confirm, type the database name exactly: ${database}.`, input));
    }
    // The registered procedure through the engine, as `shipshape db restore <backup> --yes --yes-irreversible`
    // by this operator (typing the name is the confirmation): critical, so it stops awaiting approval
    // after the prerequisites. The restore itself runs only when the requester resumes the run.
    const operatorConfig = { ...config, operator: signed.session.operator };
    const { runProcedure, dbRestore, configuredAlerter } = await ops();
    const report = await runProcedure(
      dbRestore,
      { backup: input.backup },
      { yes: true, yesIrreversible: true },
      { config: operatorConfig, logger: context.logger, alerts: await configuredAlerter(operatorConfig, context.logger) },
    );
    await recordAudit(pool, {
      actor: actor(signed.session),
      action: 'console.restore.requested',
      ip: request.ip,
      details: { backupId: input.backup, runId: report.runId, state: report.state },
    });
    if (report.state === 'awaiting-approval' && report.runId !== null) return reply.redirect(`/console/runs/${report.runId}`, 303);
    const why = report.error?.message ?? `The restore run ended ${report.state}.`;
    return sendPage(reply, 409, await backupsPage(signed, report.runId ? `${why} (run ${report.runId})` : why, input));
  });

  const backupParams = z.object({
    backupId: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[A-Za-z0-9._:-]+$/),
  });
  app.post('/console/backups/:backupId/verify', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedForm(request, reply);
    if (!signed) return reply;
    const { backupId } = pathParams(backupParams, request.params);
    let ok = false;
    try {
      ok = (await (await ops()).verifyAndRecord(config, backupId, { restoreTest: false })).ok;
    } catch (error) {
      // A failed verification is recorded beside the backup and shown in the list; anything else is the page's error.
      if (!(error instanceof ShipError && error.code === 'SHIP_ERR_BACKUP_NOT_VERIFIED')) throw error;
    }
    await recordAudit(pool, { actor: actor(signed.session), action: 'backup.verified', ip: request.ip, details: { backupId, ok, via: 'console' } });
    return reply.redirect('/console/backups', 303);
  });

  app.get('/console/health', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedIn(request, reply);
    if (!signed) return reply;
    const { gatherHealth, runDoctor } = await ops();
    const [health, doctor, series] = await Promise.all([gatherHealth(config, context.logger), runDoctor(config, context.logger), readMetricsSeries(pool)]);
    const body = html`<h2>Health (<code>shipshape health</code>): ${health.healthy ? 'healthy' : 'NOT healthy'}</h2>
<table id="health"><thead><tr><th scope="col">Check</th><th scope="col">Status</th><th scope="col">Found</th></tr></thead><tbody>
${health.checks.map((check) => html`<tr><td>${check.name}</td><td>${check.status}</td><td>${check.summary}${check.remedy ? html`<br><span class="muted">${check.remedy}</span>` : ''}</td></tr>`)}
</tbody></table>
<h2>The last hour, minute by minute</h2>
${
  series.length === 0
    ? html`<p>No request metrics in the last hour (the instances write them every METRICS_FLUSH_INTERVAL).</p>`
    : html`${chart(
        'Requests per minute',
        series,
        (m) => m.requests,
        undefined,
        (v) => String(Math.round(v)),
      )}
${chart(
  'Error rate',
  series,
  (m) => m.errorRate,
  thresholds.errorRate,
  (v) => `${(v * 100).toFixed(2)} %`,
)}
${chart(
  'p95 response time',
  series,
  (m) => m.p95Ms,
  thresholds.p95Ms,
  (v) => `${Math.round(v)} ms`,
)}`
}
<h2>Doctor (<code>shipshape doctor</code>): ${doctor.healthy ? 'no findings' : 'findings'}</h2>
<table id="doctor"><thead><tr><th scope="col">Check</th><th scope="col">Status</th><th scope="col">Detail</th></tr></thead><tbody>
${doctor.checks.map((check) => html`<tr><td>${check.name}</td><td>${check.status}</td><td>${check.detail}${check.remedy ? html`<br><span class="muted">${check.remedy}</span>` : ''}</td></tr>`)}
</tbody></table>`;
    return sendPage(reply, 200, consolePage(signed, 'Health and doctor', body));
  });

  app.get('/console/schedules', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedIn(request, reply);
    if (!signed) return reply;
    // As `shipshape schedule list`: the built-in schedules exist before anyone looks at them.
    await ensureDefaultSchedules(pool, config, actor(signed.session));
    const [schedules, notifications] = await Promise.all([listSchedules(pool), listNotifications(pool, { status: 'pending', limit: 100 })]);
    const csrf = html`<input type="hidden" name="csrf" value="${signed.csrf}">`;
    const when = (date: Date | null) => (date ? date.toISOString().replace('T', ' ').slice(0, 16) : '—');
    const body = html`<h2>Recurring schedules</h2>
<table id="schedules"><thead><tr><th scope="col">Name</th><th scope="col">Task</th><th scope="col">When</th><th scope="col">Next (UTC)</th><th scope="col">Last outcome</th><th scope="col"></th></tr></thead><tbody>
${schedules.map(
  (
    schedule,
  ) => html`<tr><td>${schedule.name}</td><td>${schedule.task}</td><td>${schedule.recurrence} (${schedule.timeZone})</td><td>${schedule.paused ? 'paused' : when(schedule.nextOccurrenceAt)}</td><td>${schedule.lastOutcome ?? '—'}</td>
<td><form class="inline" method="post" action="/console/schedules/${schedule.name}/${schedule.paused ? 'resume' : 'pause'}">${csrf}<button class="secondary" type="submit" aria-label="${schedule.paused ? 'Resume' : 'Pause'} ${schedule.name}">${schedule.paused ? 'Resume' : 'Pause'}</button></form></td></tr>`,
)}
</tbody></table>
<h2>Scheduled notifications (pending)</h2>
${
  notifications.length === 0
    ? html`<p>None pending.</p>`
    : html`<table id="notifications"><thead><tr><th scope="col">For (UTC)</th><th scope="col">Title</th><th scope="col">Requested by</th><th scope="col"></th></tr></thead><tbody>
${notifications.map((n) => html`<tr><td>${when(n.scheduledFor)}</td><td>${n.title}</td><td>${n.requestedBy}</td><td>${n.kind === 'scheduled' ? html`<form class="inline" method="post" action="/console/notifications/${n.id}/cancel">${csrf}<button class="secondary" type="submit" aria-label="Cancel ${n.title}">Cancel</button></form>` : ''}</td></tr>`)}
</tbody></table>`
}`;
    return sendPage(reply, 200, consolePage(signed, 'Schedules', body));
  });

  const scheduleParams = z.object({ name: z.string().max(200), action: z.enum(['pause', 'resume']) });
  app.post('/console/schedules/:name/:action', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedForm(request, reply);
    if (!signed) return reply;
    const { name, action } = pathParams(scheduleParams, request.params);
    if (action === 'pause') await pauseSchedule(pool, name, actor(signed.session));
    else await resumeSchedule(pool, name, actor(signed.session));
    await recordAudit(pool, {
      actor: actor(signed.session),
      action: action === 'pause' ? 'schedule.paused' : 'schedule.resumed',
      ip: request.ip,
      details: { name, via: 'console' },
    });
    return reply.redirect('/console/schedules', 303);
  });

  const notificationParams = z.object({ id: z.string().max(100) });
  app.post('/console/notifications/:id/cancel', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedForm(request, reply);
    if (!signed) return reply;
    const { id } = pathParams(notificationParams, request.params);
    await cancelScheduledNotification(pool, id, actor(signed.session));
    await recordAudit(pool, {
      actor: actor(signed.session),
      action: 'admin.notifications.cancelled',
      ip: request.ip,
      details: { notification: id, via: 'console' },
    });
    return reply.redirect('/console/schedules', 303);
  });

  app.get('/console/audit', { config: PAGE_CONFIG }, async (request, reply) => {
    const signed = await signedIn(request, reply);
    if (!signed) return reply;
    const entries = await queryAudit(pool, { limit: 200 });
    const body = html`<table id="audit"><thead><tr><th scope="col">When (UTC)</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Details</th></tr></thead><tbody>
${entries.map((entry) => html`<tr><td>${entry.at.toISOString().replace('T', ' ').slice(0, 19)}</td><td>${entry.actor}</td><td>${entry.action}</td><td><code>${JSON.stringify(entry.details)}</code></td></tr>`)}
</tbody></table>`;
    return sendPage(reply, 200, consolePage(signed, 'Audit trail', body));
  });
}

/**
 * A bar chart as inline SVG (attributes only, nothing the CSP forbids), with the runbook's
 * threshold as a dashed line; each bar's <title> names its minute and figure.
 */
function chart(
  title: string,
  series: readonly MetricsMinute[],
  value: (m: MetricsMinute) => number,
  threshold: number | undefined,
  format: (v: number) => string,
): SafeHtml {
  const values = series.map(value);
  const max = Math.max(...values, threshold ?? 0) || 1;
  const width = 600;
  const height = 120;
  const bar = width / 60;
  const start = Date.now() - 3_600_000;
  const y = (v: number) => (height - (v / max) * (height - 10)).toFixed(1);
  return html`<figure class="chart"><figcaption>${title} (highest ${format(Math.max(...values))}${threshold === undefined ? '' : `, runbook threshold ${format(threshold)}`})</figcaption>
<svg viewBox="0 0 ${width} ${height}" width="100%" height="${height}" role="img" aria-label="${title}, last hour">
<rect x="0" y="0" width="${width}" height="${height}" fill="none" stroke="currentColor" stroke-opacity="0.2"></rect>
${series.map((m, i) => html`<rect x="${(((m.minute.getTime() - start) / 60_000) * bar).toFixed(1)}" y="${y(values[i] ?? 0)}" width="${(bar - 1).toFixed(1)}" height="${(height - Number(y(values[i] ?? 0))).toFixed(1)}" fill="currentColor" fill-opacity="0.6"><title>${m.minute.toISOString().slice(11, 16)} UTC: ${format(values[i] ?? 0)}</title></rect>`)}
${threshold === undefined ? '' : html`<line x1="0" x2="${width}" y1="${y(threshold)}" y2="${y(threshold)}" stroke="#cf222e" stroke-dasharray="4 3"></line>`}
</svg></figure>`;
}

/** The journal's event lines exactly as `shipshape runs show` prints them (no colour), without its header and hints. */
function logLines(record: RunRecord): string[] {
  const text = presentRunJournal(record, { json: false, color: false });
  const lines = text.split('\n').slice(3);
  const endOfEvents = lines.indexOf('');
  return endOfEvents === -1 ? lines : lines.slice(0, endOfEvents);
}
