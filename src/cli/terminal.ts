/**
 * Watching a run from a terminal (on stderr, so stdout stays for results and `--json`).
 *
 * On a TTY: a live step list redrawn in place — ✓ done, ✗ failed, ↺ undone, ▸ running
 * with its elapsed time — and, while a step reports byte progress, a bar with throughput.
 * Anything else (a pipe, a CI log): plain lines, one per event, progress at most every 10 %.
 */
import { createInterface } from 'node:readline/promises';
import type { Prompter, ProgressUpdate, RunObserver, RunView } from '../ops/engine/io.ts';
import type { JournalEntry } from '../ops/engine/journal.ts';
import type { StepStatus } from '../ops/engine/run-record.ts';
import { formatBytes } from '../bytes.ts';
import { checkMarker, checkText, formatDuration, marker, paint, type Style } from '../ops/present/style.ts';
import { stepUnverified } from '../ops/engine/report.ts';

export interface TerminalOptions extends Style {
  readonly stream: NodeJS.WritableStream & { readonly columns?: number | undefined };
  /** Redraw in place (a TTY) rather than append lines. */
  readonly live: boolean;
}

export function createTerminalObserver(options: TerminalOptions): RunObserver {
  return options.live ? new LiveObserver(options) : new LineObserver(options);
}

interface StepLine {
  readonly id: string;
  readonly title: string;
  status: StepStatus;
  durationMs: number | undefined;
  startedAt: number | undefined;
  note: string | undefined;
}

interface Progress {
  readonly step: string | undefined;
  readonly since: number;
  update: ProgressUpdate;
}

function otherEventLine(entry: JournalEntry, style: Style): string | undefined {
  switch (entry.type) {
    case 'prerequisite':
      return `${checkMarker(style, entry)} prerequisite ${entry.name}: ${checkText(entry)}`;
    case 'verification':
      return `${checkMarker(style, entry)} verify ${entry.name}: ${entry.unverified ? checkText(entry) : entry.detail}`;
    case 'step.skipped':
      return `${marker(style, 'skipped')} ${entry.step}: not asked (${entry.reason})`;
    case 'note':
      return `  ${paint(style, 'dim', `${entry.step ?? 'note'}:`)} ${entry.message}`;
    case 'gate':
      return entry.outcome === 'passed' ? undefined : `gate ${entry.gate}: ${entry.outcome}`;
    case 'rollback.started':
      return paint(style, 'yellow', `rolling back: ${entry.reason}`);
    case 'step.undo.failed':
      return `${marker(style, 'failed')} undo of ${entry.step} failed: ${entry.error.message}`;
    case 'step.undo.impossible':
      return `${marker(style, 'failed')} ${entry.step} cannot be undone: ${entry.reason}`;
    default:
      return undefined;
  }
}

/** Progress figures change in place, so they keep one decimal and their width. */
const PROGRESS = { fixedDecimal: true } as const;

function progressText(progress: Progress, now: number): string {
  const { bytes, totalBytes, label } = progress.update;
  const seconds = Math.max((now - progress.since) / 1_000, 0.001);
  const rate = `${formatBytes(bytes / seconds, PROGRESS)}/s`;
  const prefix = label ? `${label} ` : '';
  if (totalBytes === undefined || totalBytes <= 0) return `${prefix}${formatBytes(bytes, PROGRESS)} ${rate}`;
  const ratio = Math.min(bytes / totalBytes, 1);
  const width = 20;
  const filled = Math.round(ratio * width);
  return `${prefix}[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${Math.round(ratio * 100)}% ${formatBytes(bytes, PROGRESS)}/${formatBytes(totalBytes, PROGRESS)} ${rate}`;
}

class LineObserver implements RunObserver {
  private progressed = new Map<string, { since: number; lastTenth: number }>();

  private readonly options: TerminalOptions;

  constructor(options: TerminalOptions) {
    this.options = options;
  }

  private write(line: string): void {
    this.options.stream.write(`${line}\n`);
  }

  begin(view: RunView): void {
    this.write(`${view.mode} ${view.runId}: shipshape ${view.command} (${view.title})`);
  }

  event(entry: JournalEntry): void {
    const style = this.options;
    if (entry.type === 'step.started') this.write(`${marker(style, 'running')} ${entry.step}: ${entry.title}`);
    else if (entry.type === 'step.done') {
      const why = stepUnverified(entry.output);
      this.write(
        why === null
          ? `${marker(style, 'done')} ${entry.step} (${formatDuration(entry.durationMs)})`
          : `${checkMarker(style, { ok: false, unverified: true })} ${entry.step} (${formatDuration(entry.durationMs)}): unverified: ${why}`,
      );
    } else if (entry.type === 'step.failed')
      this.write(`${marker(style, 'failed')} ${entry.step} (${formatDuration(entry.durationMs)}): ${entry.error.message}`);
    else if (entry.type === 'step.undone')
      this.write(
        `${marker(style, 'undone')} ${entry.step} ${entry.how === 'nothing-to-undo' ? 'had nothing to undo' : `undone (${formatDuration(entry.durationMs)})`}`,
      );
    else if (entry.type === 'run.ended') this.write(`run ${entry.state} (exit ${entry.exitCode})`);
    else {
      const line = otherEventLine(entry, style);
      if (line !== undefined) this.write(line);
    }
  }

  progress(step: string | undefined, update: ProgressUpdate): void {
    const key = step ?? '';
    const now = Date.now();
    const seen = this.progressed.get(key) ?? { since: now, lastTenth: -1 };
    this.progressed.set(key, seen);
    const tenth = update.totalBytes ? Math.floor((update.bytes / update.totalBytes) * 10) : Math.floor(update.bytes / 100_000_000);
    if (tenth === seen.lastTenth) return;
    seen.lastTenth = tenth;
    this.write(`  ${step ?? 'progress'}: ${progressText({ step, since: seen.since, update }, now)}`);
  }

  end(): void {}
}

class LiveObserver implements RunObserver {
  private steps: StepLine[] = [];
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private progressState: Progress | undefined;
  private heading = '';

  private readonly options: TerminalOptions;

  constructor(options: TerminalOptions) {
    this.options = options;
  }

  begin(view: RunView): void {
    this.heading = `${paint(this.options, 'bold', `${view.mode} ${view.runId}`)}: shipshape ${view.command}`;
    this.steps = view.steps.map((step) => ({ ...step, startedAt: undefined, note: undefined }));
    this.draw();
    this.timer = setInterval(() => this.redraw(), 250);
    this.timer.unref();
  }

  event(entry: JournalEntry): void {
    const step = 'step' in entry && typeof entry.step === 'string' ? this.steps.find((s) => s.id === entry.step) : undefined;
    switch (entry.type) {
      case 'step.started':
        if (step) Object.assign(step, { status: 'running', startedAt: Date.now(), durationMs: undefined, note: undefined });
        this.progressState = undefined;
        break;
      case 'step.done':
        if (step)
          Object.assign(step, {
            status: 'done',
            durationMs: entry.durationMs,
            ...(stepUnverified(entry.output) === null ? {} : { note: `unverified: ${stepUnverified(entry.output) ?? ''}` }),
          });
        this.progressState = undefined;
        break;
      case 'step.failed':
        if (step) Object.assign(step, { status: 'failed', durationMs: entry.durationMs, note: entry.error.message });
        this.progressState = undefined;
        break;
      case 'step.undone':
        if (step)
          Object.assign(step, {
            status: 'undone',
            note: entry.how === 'nothing-to-undo' ? 'nothing to undo' : `undone in ${formatDuration(entry.durationMs)}`,
          });
        break;
      case 'step.undo.started':
        if (step) step.note = 'undoing…';
        break;
      case 'step.skipped':
        if (step) Object.assign(step, { status: 'skipped', note: `not asked (${entry.reason})` });
        break;
      default: {
        const line = otherEventLine(entry, this.options);
        if (line !== undefined) this.above(line);
      }
    }
    this.redraw();
  }

  progress(step: string | undefined, update: ProgressUpdate): void {
    if (this.progressState === undefined || this.progressState.step !== step) this.progressState = { step, since: Date.now(), update };
    else this.progressState.update = update;
  }

  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.progressState = undefined;
    for (const step of this.steps) if (step.status === 'running') step.startedAt = undefined;
    this.redraw();
  }

  private above(line: string): void {
    this.clear();
    this.options.stream.write(`${line}\n`);
    this.draw();
  }

  private redraw(): void {
    this.clear();
    this.draw();
  }

  private clear(): void {
    // Cursor up over the block we drew, then clear to the end of the screen.
    if (this.drawn > 0) this.options.stream.write(`\x1b[${this.drawn}A\x1b[0J`);
    this.drawn = 0;
  }

  private draw(): void {
    const width = Math.max((this.options.stream.columns ?? 100) - 1, 20);
    const now = Date.now();
    // A wrapped line would throw off the cursor-up count, so lines are cut to the width.
    const fit = (line: string) => (visibleLength(line) > width ? `${stripAnsi(line).slice(0, width - 1)}…` : line);
    const lines = [this.heading];
    for (const step of this.steps) {
      const time = step.status === 'running' && step.startedAt !== undefined ? formatDuration(now - step.startedAt) : formatDuration(step.durationMs);
      const note = step.note ? `  ${paint(this.options, 'dim', step.note)}` : '';
      lines.push(`  ${marker(this.options, step.status)} ${step.title} ${paint(this.options, 'dim', time)}${note}`);
      if (step.status === 'running' && this.progressState && this.progressState.step === step.id) {
        lines.push(`      ${progressText(this.progressState, now)}`);
      }
    }
    const fitted = lines.map(fit);
    this.options.stream.write(`${fitted.join('\n')}\n`);
    this.drawn = fitted.length;
  }
}

function stripAnsi(text: string): string {
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

function visibleLength(text: string): number {
  return stripAnsi(text).length;
}

/** Questions on the terminal; Ctrl-C at a question counts as "no". */
export function createTerminalPrompter(input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Prompter {
  const ask = async (question: string): Promise<string | undefined> => {
    const rl = createInterface({ input, output, terminal: true });
    const controller = new AbortController();
    rl.on('SIGINT', () => controller.abort());
    try {
      return await rl.question(question, { signal: controller.signal });
    } catch {
      output.write('\n');
      return undefined;
    } finally {
      rl.close();
    }
  };
  return {
    async confirm(question) {
      const answer = await ask(`${question} [y/N] `);
      return answer !== undefined && /^(y|yes)$/i.test(answer.trim());
    },
    async typed(question, expected) {
      const answer = await ask(`${question}: `);
      return answer !== undefined && answer.trim() === expected;
    },
  };
}
