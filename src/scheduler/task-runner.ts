/**
 * Running one occurrence of a schedule from the job queue: the task's procedures, through
 * the same engine as the CLI (gates answered as the operator's flags would: `--yes`, and
 * `--yes-irreversible` for the maintenance run), journaled under STATE_DIR/runs with the
 * operator `scheduler:<schedule>`.
 *
 * The engine announces the runs itself (a backup's failure goes to #ops-backups, its declared
 * channel); a failed backup also alerts here as `schedule.failed` with the occurrence's dedup
 * key, and so does an occurrence that was skipped, so nothing the scheduler does fails silently.
 */
import type { Config } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import { getMaintenanceNotice } from '../domain/maintenance-notices.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { AlertSink, EngineDeps, RunReport } from '../ops/engine/index.ts';
import type { IssueType } from '../ops/engine/types.ts';
import type { ScheduledRun } from './schedules.ts';

export interface TaskEnvironment {
  readonly config: Config;
  readonly logger: Logger;
  /** The worker's open database; runs share it (the embedded database can only be dumped by its owner). */
  readonly database: Database;
  readonly alerts: AlertSink;
  /** Aborted when the worker stops: the running procedure rolls back as on Ctrl-C. */
  readonly signal: AbortSignal;
}

export interface TaskOutcome {
  readonly ok: boolean;
  /** One line for `shipshape schedule list` and the log. */
  readonly summary: string;
}

/**
 * The engine and the procedures a schedule runs, loaded with the first scheduled run: an idle
 * server (which runs the workers) would otherwise hold the whole runbook's code for a backup
 * that runs once a day.
 */
const scheduledProcedures = async () => {
  const [{ runProcedure }, { dbBackup }, { dbPrune }, { maintenanceRun }, { maintenanceSchedule }] = await Promise.all([
    import('../ops/engine/index.ts'),
    import('../ops/procedures/db-backup.ts'),
    import('../ops/procedures/db-prune.ts'),
    import('../ops/procedures/maintenance-run.ts'),
    import('../ops/procedures/maintenance-schedule.ts'),
  ]);
  return { runProcedure, dbBackup, dbPrune, maintenanceRun, maintenanceSchedule };
};

export async function runScheduledTask(env: TaskEnvironment, run: ScheduledRun): Promise<TaskOutcome> {
  const deps = engineDeps(env, run.schedule);
  const { runProcedure, dbBackup, dbPrune, maintenanceRun, maintenanceSchedule } = await scheduledProcedures();
  switch (`${run.task}/${run.phase}`) {
    case 'backup/due': {
      const backup = await runProcedure(dbBackup, run.params, { yes: true }, deps);
      if (backup.exitCode !== 0) {
        const outcome = failed('backup', backup);
        await alert(env, run, 'database', outcome.summary, ['#ops-backups']);
        return outcome;
      }
      const prune = await runProcedure(dbPrune, {}, { yes: true, yesIrreversible: true }, deps);
      const backupId = backup.steps.find((step) => step.id === 'manifest')?.output?.backupId;
      const taken = `backup ${typeof backupId === 'string' ? backupId : '?'} (run ${backup.runId ?? '?'})`;
      if (prune.exitCode !== 0) return { ok: false, summary: `${taken} taken; ${failed('prune', prune).summary}` };
      return { ok: true, summary: `${taken} taken and verified; prune run ${prune.runId ?? '?'} succeeded` };
    }
    case 'maintenance/notice': {
      const report = await runProcedure(maintenanceSchedule, { at: run.occurrence }, { yes: true }, deps);
      return report.exitCode === 0
        ? { ok: true, summary: `window ${run.occurrence} announced (run ${report.runId ?? '?'})` }
        : failed('maintenance schedule', report);
    }
    case 'maintenance/due': {
      // Users were promised notice: a window nobody announced (every worker was down at T-72h) is not run.
      const notice = await getMaintenanceNotice(env.database.pool, new Date(run.occurrence));
      if (notice === undefined || notice.status === 'cancelled') {
        const summary = `window ${run.occurrence} skipped: it was never announced to users (or the announcement was cancelled); run \`shipshape maintenance run\` by hand if it must happen`;
        await alert(env, run, 'infrastructure', summary);
        return { ok: false, summary };
      }
      const report = await runProcedure(maintenanceRun, {}, { yes: true, yesIrreversible: true }, deps);
      return report.exitCode === 0 ? { ok: true, summary: `maintenance run ${report.runId ?? '?'} succeeded` } : failed('maintenance run', report);
    }
    default: {
      const summary = `skipped: this version of Shipshape has no ${run.phase} phase for task "${run.task}"`;
      await alert(env, run, 'infrastructure', summary);
      return { ok: false, summary };
    }
  }
}

function engineDeps(env: TaskEnvironment, schedule: string): EngineDeps {
  return {
    config: { ...env.config, operator: `scheduler:${schedule}` },
    logger: env.logger,
    alerts: env.alerts,
    // The worker's own database, left open when the run ends.
    openDatabase: async () => ({ ...env.database, close: async () => undefined }),
    signal: env.signal,
  };
}

function failed(what: string, report: RunReport): TaskOutcome {
  return { ok: false, summary: `${what} ${report.state}${report.runId ? ` (run ${report.runId})` : ''}: ${report.error?.message ?? 'no error recorded'}` };
}

async function alert(env: TaskEnvironment, run: ScheduledRun, issueType: IssueType, text: string, channelHints?: string[]): Promise<void> {
  try {
    await env.alerts.send({
      issueType,
      severity: 'error',
      event: 'schedule.failed',
      title: `Scheduled ${run.task} (${run.schedule}) did not complete`,
      text,
      ...(channelHints ? { channelHints } : {}),
      dedupKey: `shipshape-schedule-${run.schedule}-${run.occurrence}`,
      details: { schedule: run.schedule, task: run.task, phase: run.phase, occurrence: run.occurrence },
    });
  } catch (error) {
    env.logger.warn({ err: describeError(error), schedule: run.schedule }, 'could not send the scheduler alert');
  }
}
