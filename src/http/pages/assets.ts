/**
 * The pages' stylesheet and the console's script, served from this origin so the Content
 * Security Policy can forbid everything inline. Kept in code: no files to find at run time, no
 * build step.
 */

export const PAGES_CSS = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #57606a; --line: #d0d7de; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --accent: #0969da; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #30363d; --ok: #3fb950; --warn: #d29922; --bad: #f85149; --accent: #4493f8; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 46rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
main.wide { max-width: 72rem; }
h1 { font-size: 1.6rem; margin: 0 0 1rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; }
a { color: var(--accent); }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: var(--bg); padding: .5rem; }
label { display: block; font-weight: 600; margin: 1rem 0 .25rem; }
.hint { color: var(--muted); font-size: .9rem; margin: 0 0 .25rem; }
input[type=password], input[type=text], input[type=email], select, textarea { width: 100%; max-width: 28rem; font: inherit; padding: .5rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
input[aria-invalid=true] { border-color: var(--bad); }
button { font: inherit; padding: .5rem 1rem; margin-top: 1rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
form.stacked > button { display: block; }
button.secondary { background: transparent; color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.error-summary, .notice { border: 2px solid var(--bad); border-radius: 6px; padding: .75rem 1rem; margin: 1rem 0; }
.notice { border-color: var(--warn); }
.success { border: 2px solid var(--ok); border-radius: 6px; padding: .75rem 1rem; margin: 1rem 0; }
.field-error { color: var(--bad); font-weight: 600; margin: .25rem 0; }
.state { display: inline-block; padding: .25rem .75rem; border-radius: 999px; font-weight: 700; color: #fff; }
.state.operational { background: var(--ok); } .state.read-only, .state.maintenance { background: var(--warn); } .state.emergency, .state.down { background: var(--bad); }
.banner { border-left: 4px solid var(--warn); padding: .5rem 1rem; margin: 1rem 0; }
.uptime { display: flex; gap: 1px; align-items: flex-end; height: 2rem; margin: .5rem 0; }
.uptime span { flex: 1; height: 100%; background: var(--line); }
.uptime span.up { background: var(--ok); } .uptime span.partial { background: var(--warn); } .uptime span.down { background: var(--bad); }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: .95rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 1rem; }
pre.log { background: rgba(127,127,127,.12); padding: .75rem; overflow-x: auto; max-height: 30rem; white-space: pre-wrap; }
.muted { color: var(--muted); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
form.inline { display: inline; }
`;

/**
 * The console's run page: follows the run's log over Server-Sent Events (GET /console/runs/:id/events)
 * and appends each line; when the run's state changes it updates the state shown and points to
 * a reload for the steps. Without JavaScript the page shows the log as of loading.
 */
export const CONSOLE_JS = `
'use strict';
(function () {
  var log = document.querySelector('[data-run-events]');
  if (!log || !window.EventSource) return;
  var status = document.getElementById('run-state');
  var source = new EventSource(log.getAttribute('data-run-events'));
  source.addEventListener('line', function (event) {
    log.appendChild(document.createTextNode(JSON.parse(event.data) + '\\n'));
  });
  source.addEventListener('state', function (event) {
    var state = JSON.parse(event.data);
    if (status) status.textContent = state;
    // The step list and buttons are drawn by the server: say so rather than reload under the reader.
    var notice = document.getElementById('run-changed');
    if (notice) { notice.hidden = false; }
  });
  source.addEventListener('end', function () { source.close(); });
})();
`;
