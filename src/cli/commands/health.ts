/**
 * `shipshape health [--json] [--watch 60s [--count N]]` — runbook "Check System Health" as one
 * table (or one JSON document); exit 0 healthy, 1 not.
 *
 * `--watch` repeats it like the runbook's `watch -n 60`: on a terminal the screen is cleared
 * and redrawn; otherwise (a log, a pipe) each round is printed after the last, with `--json`
 * as one JSON document per line. `--count N` stops after N rounds; Ctrl-C stops at once. The
 * exit code is the last round's.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { parseDuration } from '../../config/duration.ts';
import { ShipError } from '../../errors.ts';
import { gatherHealth, type HealthReport } from '../../ops/diagnostics/health.ts';
import { cliContext } from '../context.ts';
import { exitWithFindings } from '../exit.ts';
import { table } from '../output.ts';
import { jsonErrors } from './procedures.ts';

interface HealthOptions {
  json: boolean;
  watch?: number;
  count?: number;
}

const intervalArgument = (value: string): number => {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 1_000) throw new InvalidArgumentError('must be a duration of at least 1s, e.g. 60s or 5m.');
  return ms;
};

const countArgument = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a whole number of rounds, 1 or more.');
  return Number(value);
};

export function registerHealth(program: Command): void {
  program
    .command('health')
    .description(
      'runbook "Check System Health": API /health, database connections, error rate and latency, Sentry errors, backup age; exit 0 healthy, 1 not, 5 healthy as far as checked but a check could not be made',
    )
    .option('--json', 'print one JSON document on stdout (one per line with --watch)', false)
    .option('--watch <interval>', 'repeat every interval (e.g. 60s) until Ctrl-C', intervalArgument)
    .option('--count <n>', 'with --watch: stop after n rounds', countArgument)
    .action(async (options: HealthOptions) => {
      await jsonErrors(options.json, async () => {
        if (options.count !== undefined && options.watch === undefined) {
          throw new ShipError('SHIP_ERR_VALIDATION', '--count only applies with --watch (e.g. --watch 60s --count 3).');
        }
        const context = cliContext();
        if (options.watch === undefined) {
          const report = await gatherHealth(context.config, context.logger);
          process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderHealth(report)}\n`);
          exitWithFindings(report);
          return;
        }
        await watch(options.watch, options.count, options.json, () => gatherHealth(context.config, context.logger));
      });
    });
}

async function watch(intervalMs: number, count: number | undefined, json: boolean, round: () => Promise<HealthReport>): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const redraw = process.stdout.isTTY === true && !json;
  try {
    for (let n = 1; count === undefined || n <= count; n++) {
      const report = await round();
      exitWithFindings(report);
      if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else if (redraw) process.stdout.write(`\x1b[2J\x1b[H${renderHealth(report)}\n\nEvery ${intervalMs / 1_000} s — Ctrl-C to stop.\n`);
      else process.stdout.write(`${n > 1 ? '\n' : ''}— ${report.at} —\n${renderHealth(report)}\n`);
      if (stop.signal.aborted || (count !== undefined && n >= count)) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        stop.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
      if (stop.signal.aborted) break;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function renderHealth(report: HealthReport): string {
  const rows = report.checks.map((check) => [check.name, check.status === 'ok' ? 'ok' : check.status.toUpperCase(), check.summary]);
  const remedies = report.checks.filter((check) => check.remedy !== undefined).map((check) => `  ${check.name}: ${check.remedy ?? ''}`);
  const failing = report.checks.filter((check) => check.status === 'fail').map((check) => check.name);
  const unverified = report.checks.filter((check) => check.status === 'unverified').map((check) => check.name);
  const verdict = !report.healthy
    ? `NOT healthy: ${failing.join(', ')}.${unverified.length > 0 ? ` Also unverified: ${unverified.join(', ')}.` : ''}`
    : unverified.length > 0
      ? `Healthy as far as checked — unverified: ${unverified.join(', ')} (could not be checked).`
      : 'Healthy.';
  return [table(['check', 'status', 'detail'], rows), '', verdict, ...(remedies.length > 0 ? ['What to do:', ...remedies] : [])].join('\n');
}
