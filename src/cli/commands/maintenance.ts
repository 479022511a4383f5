/**
 * `shipshape maintenance plan|monitor|off` — the parts of the Monthly Maintenance Checklist
 * that are not procedures. (`maintenance schedule` and `maintenance run` are procedures in
 * the registry: src/ops/procedures/maintenance-*.ts.)
 *
 * - plan [--at]: writes the plan document under STATE_DIR/maintenance/ (generated from the
 *   procedures' own steps) and prints its path.
 * - monitor [--for 1h] [--every 1m]: the T+1 hour watch over /metrics against the plan's
 *   success criteria, then the smoke tests; exit 0 when every reading met them, 1 when not.
 * - off: ends maintenance mode (and takes the maintenance banner down) when a window must end
 *   unfinished — what a failed `maintenance run` tells you to run.
 */
import type { Command } from 'commander';
import { shipshapeProfile } from '../../app-profile.ts';
import { formatDurationMs, parseDuration } from '../../config/duration.ts';
import { readAppState, setBanner } from '../../domain/app-state.ts';
import { issueAdminToken, revokeAdminToken } from '../../domain/admin-tokens.ts';
import { ShipError } from '../../errors.ts';
import { percent } from '../../ops/diagnostics/thresholds.ts';
import { monitorMetrics, successCriteria, type MetricsSample } from '../../ops/maintenance/monitor.ts';
import { renderMaintenancePlan, writeMaintenancePlan } from '../../ops/maintenance/plan.ts';
import { prepareSmokeAccount, runSmokeTests, type SmokeCheck } from '../../ops/maintenance/smoke-tests.ts';
import { describeEnd, describeStart, resolveWindow } from '../../ops/maintenance/window.ts';
import { MAINTENANCE_BANNER_SETTER, maintenanceRun } from '../../ops/procedures/maintenance-run.ts';
import { maintenanceSchedule } from '../../ops/procedures/maintenance-schedule.ts';
import { announceFrom, ownerLabel, switchMaintenance } from '../../domain/maintenance-switch.ts';
import { cliContext, withDatabase } from '../context.ts';
import { exitWithFindings } from '../exit.ts';
import { emit } from '../output.ts';

const MIN_INTERVAL_MS = 1_000;
const MAX_INTERVAL_MS = 3_600_000;
const MAX_WATCH_MS = 24 * 3_600_000;

export function registerMaintenanceCommands(program: Command): void {
  const maintenance =
    program.commands.find((command) => command.name() === 'maintenance') ?? program.command('maintenance').description('the monthly maintenance window');

  maintenance
    .command('plan')
    .description('write the maintenance plan document (tasks, rollback plan, success criteria) under STATE_DIR/maintenance/')
    .option('--at <time>', 'when the window starts, ISO 8601 with an offset (default: the next MAINTENANCE_WINDOW)')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { at?: string; json: boolean }) => {
      const { config } = cliContext();
      const window = resolveWindow(config, options.at, new Date());
      const text = renderMaintenancePlan({ config, profile: shipshapeProfile, window, run: maintenanceRun, announce: maintenanceSchedule, now: new Date() });
      const file = await writeMaintenancePlan(config, window, text);
      emit(
        options,
        { file, window: { startsAt: window.startsAt, endsAt: window.endsAt, timeZone: window.timeZone } },
        () => `Plan for ${describeStart(window)} to ${describeEnd(window)} written to ${file}`,
      );
    });

  maintenance
    .command('monitor')
    .description(
      `watch GET /metrics against the success criteria (error rate < ${percent(successCriteria.maxErrorRate)}, p95 < ${successCriteria.maxP95Ms} ms), then run the smoke tests`,
    )
    .option('--for <duration>', 'how long to watch, e.g. 1h', '1h')
    .option('--every <duration>', 'how often to read /metrics, 1s to 1h', '1m')
    .option('--api-url <url>', 'the API to watch (default API_URL)')
    .option('--no-smoke', 'skip the smoke tests at the end')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { for: string; every: string; apiUrl?: string; smoke: boolean; json: boolean }) => {
      const durationMs = boundedDuration('--for', options.for, MIN_INTERVAL_MS, MAX_WATCH_MS);
      const intervalMs = boundedDuration('--every', options.every, MIN_INTERVAL_MS, MAX_INTERVAL_MS);
      const context = cliContext();
      const apiUrl = options.apiUrl ?? context.config.apiUrl;
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const result = await withDatabase(context, async ({ pool }) => {
          // A token of its own for the watch, so a rotation that retired ADMIN_TOKEN does not blind it.
          const watch = await issueAdminToken(pool, {
            label: 'maintenance monitor',
            createdBy: `operator:${context.config.operator}`,
            expiresAt: new Date(Date.now() + durationMs + 10 * 60_000),
          });
          try {
            process.stderr.write(`watching ${apiUrl}/metrics for ${formatDurationMs(durationMs)}, every ${formatDurationMs(intervalMs)}\n`);
            const report = await monitorMetrics({
              apiUrl,
              adminToken: watch.token,
              durationMs,
              intervalMs,
              signal: stop.signal,
              onSample: (sample) => process.stderr.write(`${sampleLine(sample)}\n`),
            });
            let smoke: SmokeCheck[] = [];
            if (options.smoke && !report.interrupted) {
              const account = await prepareSmokeAccount(pool, context.config.maintenance.smokeTestEmail);
              smoke = await runSmokeTests({ apiUrl, email: context.config.maintenance.smokeTestEmail, password: account.password, signal: stop.signal });
            }
            return { report, smoke };
          } finally {
            await revokeAdminToken(pool, watch.record.id, `operator:${context.config.operator}`).catch(() => undefined);
          }
        });
        const smokePassed = result.smoke.every((check) => check.ok);
        const passed = result.report.passed && smokePassed;
        emit(options, { ...result.report, passed, metricsPassed: result.report.passed, smoke: result.smoke, criteria: successCriteria }, () =>
          [
            `${passed ? 'PASSED' : 'NOT MET'}: ${result.report.samples.length} reading(s), ${result.report.breaches} outside the criteria; worst error rate ${result.report.worstErrorRate === null ? '-' : percent(result.report.worstErrorRate)}, worst p95 ${result.report.worstP95Ms ?? '-'} ms${result.report.interrupted ? ' (stopped early)' : ''}`,
            options.smoke
              ? `smoke tests: ${result.smoke.length === 0 ? 'not run' : result.smoke.map((check) => `${check.ok ? '✓' : '✗'} ${check.name}`).join(', ')}`
              : 'smoke tests: skipped (--no-smoke)',
          ].join('\n'),
        );
        exitWithFindings({ healthy: passed });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  maintenance
    .command('off')
    .description('end maintenance mode now (and take the maintenance banner down): for a window that must end unfinished')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { json: boolean }) => {
      const context = cliContext();
      const owner = { kind: 'cli', name: context.config.operator } as const;
      const result = await withDatabase(context, async ({ pool }) => {
        const state = await readAppState(pool);
        const banner = state.banner?.setBy?.startsWith(MAINTENANCE_BANNER_SETTER) ?? false;
        if (banner) await setBanner(pool, { message: null, until: null, setBy: ownerLabel(owner) });
        const { previous } = await switchMaintenance(
          pool,
          { enabled: false, owner, details: { bannerRemoved: banner } },
          announceFrom(context.config, context.logger),
        );
        return { wasOn: previous.enabled, bannerRemoved: banner };
      });
      emit(
        options,
        result,
        (r) =>
          (r.wasOn ? 'Maintenance mode is off: the app is open again.' : 'Maintenance mode was already off.') +
          (r.bannerRemoved ? ' The maintenance banner is down.' : ''),
      );
    });
}

function boundedDuration(flag: string, value: string, min: number, max: number): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < min || ms > max) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `${flag}: "${value}" must be a duration from ${formatDurationMs(min)} to ${formatDurationMs(max)}, e.g. 1m or 1h.`,
    );
  }
  return ms;
}

function sampleLine(sample: MetricsSample): string {
  const time = sample.at.toISOString().slice(11, 19);
  if (!sample.ok) return `${time} ✗ ${sample.problems.join('; ')}`;
  return `${time} ✓ error rate ${percent(sample.errorRate ?? 0)}, p95 ${sample.p95Ms ?? 0} ms, ${sample.requestsPerMinute ?? 0} req/min`;
}
