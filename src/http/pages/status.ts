/**
 * GET /status and GET /status.json: the public status page. Everything comes from the
 * StatusBoard's memory (src/domain/public-status.ts), so neither costs a query, and both answer
 * during maintenance — which is when people look.
 */
import type { FastifyInstance } from 'fastify';
import { UPTIME_DAYS, type PublicState, type StatusBoard } from '../../domain/public-status.ts';
import { html, page } from './html.ts';
import { sendPage } from './respond.ts';

const HEADLINE: Record<PublicState, string> = {
  operational: 'All systems operational',
  'read-only': 'Read-only: you can see your tasks, changes are paused for a few minutes',
  maintenance: 'Down for maintenance',
  emergency: 'Temporarily disabled while we deal with an incident',
};

/** Browsers and proxies may reuse an answer this long; the page itself refreshes every 30 s without JavaScript. */
const CACHE = 'public, max-age=5';

export function statusPages(app: FastifyInstance, board: StatusBoard): void {
  app.get('/status.json', { config: { page: true, maintenanceExempt: true, probe: true } }, async (_request, reply) => {
    const { state, appState, slow } = board.current;
    const { maintenance, banner } = appState;
    return reply.header('cache-control', CACHE).send({
      state,
      headline: HEADLINE[state],
      message: maintenance.enabled ? maintenance.message : null,
      since: maintenance.enabled ? maintenance.since : null,
      banner: banner ? { message: banner.message, until: banner.until } : null,
      maintenanceWindow: slow.window,
      incidents: slow.incidents,
      uptime: { days: slow.uptime, percent: slow.uptimePercent },
      updatedAt: new Date().toISOString(),
      figuresReadAt: slow.readAt.toISOString(),
    });
  });

  app.get('/status', { config: { page: true, maintenanceExempt: true, probe: true } }, async (_request, reply) => {
    const { state, appState, slow } = board.current;
    const { maintenance, banner } = appState;
    const day = (iso: string) => new Date(`${iso}T00:00:00Z`).toLocaleDateString('en', { timeZone: 'UTC', month: 'short', day: 'numeric' });
    const when = (date: Date) => `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
    const body = html`<h1>Service status</h1>
<p><span class="state ${state}" id="state" data-state="${state}">${HEADLINE[state]}</span></p>
${maintenance.enabled && maintenance.message ? html`<p id="message">${maintenance.message}</p>` : ''}
${maintenance.enabled && maintenance.since ? html`<p class="muted">Since ${when(maintenance.since)}.</p>` : ''}
${banner ? html`<div class="banner" role="note"><p>${banner.message}</p></div>` : ''}
<h2>Planned maintenance</h2>
${
  slow.window
    ? html`<p id="window">${slow.window.subject}: from <time datetime="${slow.window.startsAt.toISOString()}">${when(slow.window.startsAt)}</time> to <time datetime="${slow.window.endsAt.toISOString()}">${when(slow.window.endsAt)}</time>.</p>`
    : html`<p id="window">None announced.</p>`
}
<h2>Uptime, last ${UPTIME_DAYS} days</h2>
${
  slow.uptimePercent === null
    ? html`<p>No samples yet: uptime is measured from when this server first ran.</p>`
    : html`<p><strong>${slow.uptimePercent.toFixed(2)} %</strong> <span class="muted">(planned maintenance not counted)</span></p>
<div class="uptime" role="img" aria-label="Uptime per day">${slow.uptime.map((d) => {
        const level = d.percent === null ? '' : d.percent >= 99.9 ? 'up' : d.percent >= 95 ? 'partial' : 'down';
        return html`<span class="${level}" title="${day(d.day)}: ${d.percent === null ? 'no data' : `${d.percent.toFixed(2)} %`}"></span>`;
      })}</div>
${
  slow.uptime.some((d) => d.percent !== null && d.percent < 99.9)
    ? html`<table><caption>Days below 99.9 %</caption><thead><tr><th scope="col">Day</th><th scope="col">Uptime</th></tr></thead><tbody>
${slow.uptime.filter((d) => d.percent !== null && d.percent < 99.9).map((d) => html`<tr><td>${day(d.day)}</td><td>${d.percent?.toFixed(2)} %</td></tr>`)}
</tbody></table>`
    : ''
}`
}
<h2>Recent incidents</h2>
${
  slow.incidents.length === 0
    ? html`<p>No incidents in the last ${UPTIME_DAYS} days.</p>`
    : html`<ul id="incidents">${slow.incidents.map((incident) => html`<li><strong>${when(incident.startedAt)}</strong>: ${incident.message ?? 'the service was disabled'} — ${incident.resolvedAt ? html`resolved ${when(incident.resolvedAt)}` : html`<strong>ongoing</strong>`}</li>`)}</ul>`
}
<p class="muted">Updated ${when(new Date())}. Also as <a href="/status.json">JSON</a>.</p>`;
    return sendPage(reply, 200, page({ title: `Status: ${HEADLINE[state]}`, body, refreshSeconds: 30 }), CACHE);
  });
}
