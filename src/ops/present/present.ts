/**
 * Turning engine results into what the operator reads: the run report (and its exit
 * code), the list of runs, and a run's journal. Results go to stdout — one JSON document
 * with `--json` — and the error line (`error[CODE]: …`) to stderr.
 */
import type { ExitCode } from '../../errors.ts';
import type { ApprovalResult, RefusalResult } from '../engine/approve.ts';
import type { JournalEntry } from '../engine/journal.ts';
import { stepUnverified, type RunReport } from '../engine/report.ts';
import type { RunRecord } from '../engine/run-record.ts';
import { checkMarker, checkText, formatDuration, marker, paint, type Style } from './style.ts';

export interface Presented {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: ExitCode;
}

export interface PresentOptions extends Style {
  readonly json: boolean;
}

/** The one mapping from a run report to output and exit code. */
export function presentReport(report: RunReport, options: PresentOptions): Presented {
  const stderr = report.error ? `error[${report.error.code}]: ${report.error.message}\n` : '';
  if (options.json) return { stdout: `${JSON.stringify(report, null, 2)}\n`, stderr, exitCode: report.exitCode };
  const text = report.mode === 'dry-run' ? planText(report, options) : reportText(report, options);
  return { stdout: `${text}\n`, stderr, exitCode: report.exitCode };
}

function planText(report: RunReport, style: Style): string {
  const p = report.procedure;
  const lines = [
    `${paint(style, 'bold', `Plan for \`shipshape ${p.command}\``)} — ${p.title} (${p.risk} risk). Dry run: nothing was changed.`,
    `Runbook section: ${p.runbookSection}`,
    `Parameters: ${JSON.stringify(report.params)}`,
    `Locks: ${report.locks.length === 0 ? 'none' : report.locks.join(', ')}`,
    `Gates: ${gates(report).join('; ')}`,
    '',
    'Prerequisites (checked now, read-only):',
    ...(report.prerequisites.length === 0 ? ['  (none)'] : report.prerequisites.map((c) => `  ${checkMarker(style, c)} ${c.name}: ${checkText(c)}`)),
    '',
    'Steps:',
  ];
  report.steps.forEach((step, index) => {
    const undo = step.irreversible ? paint(style, 'red', `IRREVERSIBLE: ${step.irreversible}`) : '';
    lines.push(`  ${index + 1}. ${step.id} — ${step.title}${undo ? `  [${undo}]` : ''}`);
    for (const line of step.describe) for (const part of line.split('\n')) lines.push(`       ${part}`);
  });
  lines.push('', 'Verification:', ...(report.plannedVerification.length === 0 ? ['  (none)'] : report.plannedVerification.map((name) => `  - ${name}`)));
  if (report.error) lines.push('', `Prerequisites are not met: the run would stop before changing anything.`);
  return lines.join('\n');
}

function gates(report: RunReport): string[] {
  const risk = report.procedure.risk;
  const out: string[] = [];
  if (risk === 'medium' || risk === 'high' || risk === 'critical') out.push('confirmation (--yes or a prompt)');
  if (risk === 'high' || risk === 'critical') out.push('approval by a second operator (`shipshape approve <run-id>`)');
  const irreversible = report.steps.filter((step) => step.irreversible).map((step) => step.id);
  if (irreversible.length > 0) out.push(`typed confirmation of irreversible step(s) ${irreversible.join(', ')} (or --yes-irreversible)`);
  return out.length === 0 ? ['none'] : out;
}

function reportText(report: RunReport, style: Style): string {
  const p = report.procedure;
  const header = report.runId
    ? `Run ${report.runId} · shipshape ${p.command} · ${stateText(report.state, style)}${report.durationMs === null ? '' : ` · ${formatDuration(report.durationMs)}`}`
    : `shipshape ${p.command} · not started`;
  const lines = [header];
  const notPassed = report.prerequisites.filter((check) => !check.ok);
  for (const check of notPassed) lines.push(`  ${checkMarker(style, check)} prerequisite ${check.name}: ${checkText(check)}`);
  const width = Math.max(0, ...report.steps.map((step) => step.id.length));
  for (const step of report.steps) {
    if (step.status === 'skipped' && step.notAsked !== null) {
      // Not asked for: never "✓ … (0 ms)", which would claim it ran.
      lines.push(`  ${marker(style, 'skipped')} ${step.id}: not asked (${step.notAsked})`);
      continue;
    }
    const facts = [formatDuration(step.durationMs)];
    if (step.undo?.status === 'undone')
      facts.push(`undone${step.undo.how === 'nothing-to-undo' ? ' (nothing to undo)' : ''} ${formatDuration(step.undo.durationMs)}`.trim());
    if (step.undo?.status === 'failed') facts.push(paint(style, 'red', `undo FAILED: ${step.undo.error?.message ?? ''}`));
    if (step.undo?.status === 'impossible') facts.push(paint(style, 'red', `NOT undone: ${step.undo.reason ?? ''}`));
    if (step.interrupted && step.status !== 'undone') facts.push('interrupted mid-step');
    if (step.error && step.status === 'failed') facts.push(step.error);
    if (step.status === 'skipped' || step.status === 'pending') facts.push(step.status);
    if (step.unverified !== null) facts.unshift(`unverified: ${step.unverified}`);
    const mark = step.unverified !== null ? checkMarker(style, { ok: false, unverified: true }) : marker(style, step.status);
    lines.push(`  ${mark} ${step.id.padEnd(width)}  ${step.title}${facts.filter(Boolean).length ? `  (${facts.filter(Boolean).join('; ')})` : ''}`);
  }
  for (const check of report.verification)
    lines.push(`  ${checkMarker(style, check)} verify ${check.name}: ${check.unverified ? checkText(check) : check.detail}`);
  if (report.next) lines.push(`Next: ${report.next}`);
  return lines.join('\n');
}

function stateText(state: RunReport['state'], style: Style): string {
  if (state === 'succeeded') return paint(style, 'green', state);
  if (state === 'needs-attention' || state === 'failed' || state === 'interrupted') return paint(style, 'red', state);
  if (state === 'rolled-back' || state === 'awaiting-approval' || state === 'unverified') return paint(style, 'yellow', state);
  return state;
}

export interface RunSummary {
  readonly runId: string;
  readonly procedure: string;
  readonly command: string;
  readonly risk: string;
  readonly operator: string;
  readonly state: string;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly durationMs: number | null;
  readonly exitCode: number | null;
}

export function runSummary(record: RunRecord): RunSummary {
  const endedAt = record.endedAt ?? null;
  return {
    runId: record.runId,
    procedure: record.created.procedure.id,
    command: record.created.procedure.command,
    risk: record.created.procedure.risk,
    operator: record.created.operator,
    state: record.state,
    startedAt: record.startedAt,
    endedAt,
    durationMs: endedAt === null ? null : Date.parse(endedAt) - Date.parse(record.startedAt),
    exitCode: endedAt === null ? null : (record.lastEnd?.exitCode ?? null),
  };
}

export function presentRunList(records: readonly RunRecord[], options: PresentOptions): string {
  const runs = records.map(runSummary);
  if (options.json) return `${JSON.stringify({ runs }, null, 2)}\n`;
  if (runs.length === 0) return 'No runs yet.\n';
  const rows = runs.map((run) => [
    run.runId,
    run.command,
    run.operator,
    run.state,
    run.startedAt.replace('T', ' ').slice(0, 19),
    formatDuration(run.durationMs),
  ]);
  const headers = ['run', 'procedure', 'operator', 'state', 'started (UTC)', 'duration'];
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return `${[line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')}\n`;
}

/** `runs show`: the run's summary and its journal, one line per event. */
export function presentRunJournal(record: RunRecord, options: PresentOptions): string {
  if (options.json) return `${JSON.stringify({ run: runSummary(record), params: record.created.params, events: record.entries }, null, 2)}\n`;
  const created = record.created;
  const start = Date.parse(created.at);
  const lines = [
    `Run ${record.runId} — ${created.procedure.title} (\`shipshape ${created.procedure.command}\`, ${created.procedure.risk} risk) — ${stateText(record.state, options)}`,
    `Requested by ${created.operator} at ${created.at}; parameters ${JSON.stringify(created.params)}`,
    '',
  ];
  for (const entry of record.entries) {
    const offset = `+${((Date.parse(entry.at) - start) / 1_000).toFixed(3)}s`.padStart(10);
    const [first, ...rest] = eventLines(entry, options);
    lines.push(`${offset}  ${first ?? ''}`);
    for (const line of rest) lines.push(`${' '.repeat(12)}${line}`);
  }
  if (record.unreadableLines > 0)
    lines.push('', `${record.unreadableLines} journal line(s) could not be read (a torn last line after a crash, or a newer Shipshape).`);
  if (
    record.lastEnd?.next &&
    (record.state === 'needs-attention' || record.state === 'unverified' || record.state === 'awaiting-approval' || record.state === 'rolled-back')
  )
    lines.push('', `Next: ${record.lastEnd.next}`);
  if (record.state === 'interrupted')
    lines.push('', `Next: \`shipshape runs resume ${record.runId}\` to continue, or \`shipshape runs rollback ${record.runId}\` to undo.`);
  return `${lines.join('\n')}\n`;
}

function eventLines(entry: JournalEntry, style: Style): string[] {
  switch (entry.type) {
    case 'run.created':
      return [`run created by ${entry.operator}: ${entry.plan.length} step(s), locks ${entry.locks.join(', ') || 'none'}`];
    case 'attempt.started':
      return [`${entry.mode} by ${entry.operator} (pid ${entry.pid} on ${entry.host})`];
    case 'lock.acquired':
      return [`locked ${entry.resources.join(', ')} (${entry.advisory ? 'lock file + PostgreSQL advisory lock' : 'lock file'})`];
    case 'prerequisite':
      return [`${checkMarker(style, entry)} prerequisite ${entry.name}: ${checkText(entry)}`];
    case 'gate':
      return [`gate ${entry.gate}: ${entry.outcome}${entry.by ? ` by ${entry.by}` : ''} (${entry.detail})`];
    case 'approval.granted':
      return [`approved by ${entry.by} (${entry.how}), valid until ${entry.expiresAt}`];
    case 'step.started':
      return [
        `${marker(style, 'running')} step ${entry.step}: ${entry.title}`,
        ...entry.describe.flatMap((line) => line.split('\n').map((part) => `  ${part}`)),
      ];
    case 'step.done':
      if (stepUnverified(entry.output) !== null)
        return [
          `${checkMarker(style, { ok: false, unverified: true })} step ${entry.step} done in ${formatDuration(entry.durationMs)}, unverified: ${stepUnverified(entry.output) ?? ''}`,
        ];
      return [
        `${marker(style, 'done')} step ${entry.step} done in ${formatDuration(entry.durationMs)}${Object.keys(entry.output).length ? ` → ${JSON.stringify(entry.output)}` : ''}`,
      ];
    case 'step.skipped':
      return [`${marker(style, 'skipped')} step ${entry.step}: not asked (${entry.reason})`];
    case 'step.failed':
      return [`${marker(style, 'failed')} step ${entry.step} failed after ${formatDuration(entry.durationMs)}: [${entry.error.code}] ${entry.error.message}`];
    case 'note':
      return [`note${entry.step ? ` (${entry.step})` : ''}: ${entry.message}${entry.data ? ` ${JSON.stringify(entry.data)}` : ''}`];
    case 'rollback.started':
      return [`rollback started: ${entry.reason}`];
    case 'step.undo.started':
      return [`undoing ${entry.step}…`];
    case 'step.undone':
      return [
        `${marker(style, 'undone')} ${entry.step} ${entry.how === 'nothing-to-undo' ? 'had nothing to undo' : `undone in ${formatDuration(entry.durationMs)}`}`,
      ];
    case 'step.undo.failed':
      return [`${marker(style, 'failed')} undo of ${entry.step} failed: [${entry.error.code}] ${entry.error.message}`];
    case 'step.undo.impossible':
      return [`${marker(style, 'failed')} ${entry.step} cannot be undone: ${entry.reason}`];
    case 'verification':
      return [`${checkMarker(style, entry)} verify ${entry.name}: ${checkText(entry)}`];
    case 'alert':
      return [`alert ${entry.event} (${entry.severity})${entry.page ? `, page ${entry.page}` : ''}`];
    case 'run.ended':
      return [`ended: ${entry.state} (exit ${entry.exitCode})${entry.error ? ` — [${entry.error.code}] ${entry.error.message}` : ''}`];
  }
}

/** `shipshape refuse`: who refused the run and why; the requester reads it (also on their waiting terminal). */
export function presentRefusal(result: RefusalResult, options: PresentOptions): string {
  if (options.json) return `${JSON.stringify(result, null, 2)}\n`;
  const what = result.withdrawn ? `Withdrew your run ${result.runId}` : `Refused run ${result.runId}`;
  return `${what}: \`shipshape ${result.procedure.command}\` (${result.procedure.risk} risk), requested by ${result.requestedBy}.\nReason: ${result.reason}\nIt ended failed; no step ran, nothing changed.\n`;
}

export function presentApproval(result: ApprovalResult, options: PresentOptions): string {
  if (options.json) return `${JSON.stringify(result, null, 2)}\n`;
  const lines = [
    `Approved run ${result.runId}: \`shipshape ${result.procedure.command}\` (${result.procedure.risk} risk), requested by ${result.requestedBy} at ${result.requestedAt}.`,
    `Parameters: ${JSON.stringify(result.params)}`,
    'Plan:',
  ];
  result.plan.forEach((step, index) => {
    lines.push(`  ${index + 1}. ${step.id} — ${step.title}${step.irreversible ? `  [IRREVERSIBLE: ${step.irreversible}]` : ''}`);
    for (const line of step.describe) lines.push(`       ${line}`);
  });
  lines.push(`Approved by ${result.approvedBy}, valid until ${result.expiresAt}.`, `Next: ${result.next}`);
  return `${lines.join('\n')}\n`;
}
