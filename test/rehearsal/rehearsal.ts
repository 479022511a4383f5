/**
 * The rehearsal: boots a deployment (deployment.ts), starts the traffic (traffic.ts), runs each
 * procedure (procedures.ts) through the CLI while the traffic runs, and after each asserts:
 * - no Shipshape process exited;
 * - the procedure's exit code and final state are as documented (the procedure's own checks);
 * - every write acknowledged with a 2xx is still in the database;
 * - no 5xx (nor a request left unanswered) outside what the procedure announced: its maintenance
 *   window (SHIP_ERR_MAINTENANCE) or its connection kill (SHIP_ERR_DATABASE_UNAVAILABLE);
 * - after a connection kill, requests resume (the time is measured and reported, not asserted).
 * It reports per procedure: exit codes, time in maintenance, time read-only, the errors the
 * traffic saw (by status and code), writes acknowledged and found.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../helpers/patience.ts';
import { startDeployment, type Deployment } from './deployment.ts';
import { proceduresFor, type Form, type RehearsedProcedure } from './procedures.ts';
import { FIRST_APP_VERSION } from './stores.ts';
import { Traffic } from './traffic.ts';

export interface ProcedureReport {
  readonly name: string;
  /** Each CLI call's exit code, in order (`approve`, `runs resume` included). */
  readonly exitCodes: string;
  readonly seconds: number;
  readonly maintenanceSeconds: number;
  readonly readOnlySeconds: number;
  /** "status code × count" for every non-2xx the traffic saw during the procedure. */
  readonly trafficErrors: Record<string, number>;
  /** Writes acknowledged (2xx) during the procedure. */
  readonly writesAcknowledged: number;
  /** All acknowledged writes checked in the database after it / missing. */
  readonly writesChecked: number;
  readonly writesMissing: number;
  /** From the first failed request to the first write acknowledged after the last one; undefined when none failed. */
  readonly resumedAfterMs: number | undefined;
  readonly notes: readonly string[];
  readonly failures: readonly string[];
  /** Set when the procedure is known to fail on this branch (see procedures.ts). */
  readonly expectedFailure: string | undefined;
}

export interface RehearsalReport {
  readonly form: Form;
  readonly procedures: ProcedureReport[];
  /** Failures outside any one procedure (start-up, quiet periods between procedures, shutdown). */
  readonly failures: string[];
  readonly totalWritesAcknowledged: number;
  readonly seconds: number;
}

interface ConfigSample {
  readonly at: number;
  readonly maintenance: boolean;
  readonly readOnly: boolean;
}

/** Polls GET /config on both instances: what the app would see, maintenance and (once it exists) read-only mode. */
function watchAppState(deployment: Deployment, pollMs: number) {
  const samples: ConfigSample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const states = await Promise.all(
        deployment.instances.map(async (instance) => {
          try {
            const config = (await (await fetch(`${instance.url}/config`)).json()) as Record<string, any>;
            const maintenance = (config.maintenance ?? {}) as Record<string, unknown>;
            const readOnly = maintenance.mode === 'read-only' || config.readOnly === true || maintenance.readOnly === true;
            return { maintenance: maintenance.enabled === true && !readOnly, readOnly };
          } catch {
            return { maintenance: false, readOnly: false };
          }
        }),
      );
      samples.push({ at: Date.now(), maintenance: states.some((s) => s.maintenance), readOnly: states.some((s) => s.readOnly) });
      await sleep(pollMs);
    }
  })();
  return {
    /** Seconds, between from and to, during which some instance said maintenance / read-only. */
    between(from: number, to: number): { maintenance: number; readOnly: number } {
      let maintenance = 0;
      let readOnly = 0;
      for (let i = 0; i + 1 < samples.length; i++) {
        const sample = samples[i]!;
        if (sample.at < from || sample.at > to) continue;
        const span = Math.min(samples[i + 1]!.at, to) - sample.at;
        if (sample.maintenance) maintenance += span;
        if (sample.readOnly) readOnly += span;
      }
      return { maintenance: maintenance / 1000, readOnly: readOnly / 1000 };
    },
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

const isFailure = (status: number) => status === 0 || status < 0 || status >= 500;

export async function runRehearsal(form: Form, options: { log?: (line: string) => void; only?: readonly string[] } = {}): Promise<RehearsalReport> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const failures: string[] = [];
  const reports: ProcedureReport[] = [];
  // The short form runs in `npm test` on a 2-core CI machine: two users, a round each every 0.6 s, the scheduler at its default pace.
  const deployment = await startDeployment(form === 'full' ? { schedulerPollMs: 250 } : {});
  // Every user starts on the store build the app repository is at, with no OTA update.
  const appHeaders = () => ({ 'x-app-version': FIRST_APP_VERSION });
  const traffic = new Traffic(deployment.instances, form === 'full' ? { users: 6, pauseMs: 50, appHeaders } : { users: 2, pauseMs: 600, appHeaders });
  const appState = watchAppState(deployment, form === 'full' ? 200 : 500);
  const exitedProcesses = () =>
    deployment.processes.filter((p) => p.exit !== undefined).map((p) => `${p.name} exited (${p.exit}):\n${p.output().slice(-3_000)}`);
  try {
    await traffic.start();
    log(
      `deployment up: ${deployment.instances.map((i) => `${i.name} ${i.url}`).join(', ')}, worker pid ${deployment.worker.child.pid}; ${traffic.ledger.users.length} users`,
    );
    await quiet(traffic, deployment, 'warm-up');
    for (const procedure of proceduresFor(form).filter((p) => !options.only || options.only.includes(p.name))) {
      const report = await rehearse(procedure, deployment, traffic, appState, exitedProcesses);
      reports.push(report);
      log(formatProcedure(report));
      if (exitedProcesses().length > 0) break;
      // A procedure known to fail leaves the deployment as it failed: nothing after it would mean anything.
      if (procedure.expectedToFail && report.failures.length > 0) break;
      const between = `after ${procedure.name}`;
      const quietStart = Date.now();
      await quiet(traffic, deployment, between);
      const answers = traffic.log.filter((entry) => entry.phase === between && entry.at >= quietStart);
      const errors = answers.filter((entry) => isFailure(entry.status));
      if (errors.length > 0) failures.push(`${errors.length} failed request(s) after ${procedure.name} had ended: ${summarise(errors)}`);
      const refused = answers.filter((entry) => entry.status >= 300 && entry.status < 500);
      if (refused.length > 0) log(`    after ${procedure.name}, the traffic was refused: ${summarise(refused)}`);
    }
  } catch (error) {
    failures.push(`the rehearsal itself failed: ${(error as Error).stack ?? String(error)}`);
  } finally {
    await traffic.stop().catch((error: unknown) => failures.push(`stopping the traffic: ${String(error)}`));
    await appState.stop();
    failures.push(...exitedProcesses());
    const codes = await deployment.close();
    for (const [name, code] of Object.entries(codes)) if (code !== 0) failures.push(`${name} did not stop cleanly on SIGTERM (exit ${code})`);
  }
  return { form, procedures: reports, failures, totalWritesAcknowledged: traffic.ledger.acknowledged, seconds: (Date.now() - started) / 1000 };
}

/** A quiet period: traffic alone until a write is acknowledged through each instance. */
async function quiet(traffic: Traffic, deployment: Deployment, phase: string): Promise<void> {
  traffic.phase = phase;
  const since = Date.now();
  await eventually(`a write through each instance (${phase})`, () => {
    if (deployment.processes.some((p) => p.exit !== undefined)) return true;
    return traffic.writesSince(since).size === deployment.instances.length ? true : undefined;
  });
}

function summarise(entries: ReadonlyArray<{ status: number; code: string | undefined; what: string }>): string {
  const counts = new Map<string, number>();
  for (const entry of entries) {
    const key = `${entry.status} ${entry.code ?? ''}`.trim();
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, count]) => `${count} × ${key}`).join(', ');
}

async function rehearse(
  procedure: RehearsedProcedure,
  deployment: Deployment,
  traffic: Traffic,
  appState: ReturnType<typeof watchAppState>,
  exitedProcesses: () => string[],
): Promise<ProcedureReport> {
  const failures: string[] = [];
  const notes: string[] = [];
  const exitCodes: string[] = [];
  traffic.phase = procedure.name;
  const acknowledgedBefore = traffic.ledger.acknowledged;
  const started = Date.now();
  let ranToTheEnd = false;
  try {
    await procedure.run({
      deployment,
      traffic,
      note: (line) => notes.push(line),
      cli: async (args, operator, options) => {
        const result = await deployment.cli(args, operator, options);
        exitCodes.push(`${args.slice(0, 2).join(' ')}=${result.code ?? result.signal}`);
        return result;
      },
    });
    ranToTheEnd = true;
  } catch (error) {
    failures.push((error as Error).message);
    await recover(deployment, notes);
  }
  // The procedure's window lasts until a write went through each instance again (not waited for after a failure known in advance: it may never come).
  if (!(procedure.expectedToFail && failures.length > 0)) {
    try {
      await quiet(traffic, deployment, procedure.name);
    } catch (error) {
      failures.push((error as Error).message);
    }
  }
  const ended = Date.now();
  failures.push(...exitedProcesses().map((line) => `during ${procedure.name}: ${line}`));

  const during = traffic.log.filter((entry) => entry.phase === procedure.name);
  const errors = during.filter((entry) => entry.status < 200 || entry.status >= 300);
  const trafficErrors: Record<string, number> = {};
  for (const entry of errors) {
    const key = `${entry.status} ${entry.code ?? ''}`.trim();
    trafficErrors[key] = (trafficErrors[key] ?? 0) + 1;
  }
  const unannounced = errors.filter((entry) => isFailure(entry.status) && !procedure.announces.includes(entry.code ?? ''));
  if (unannounced.length > 0) failures.push(`${unannounced.length} failed request(s) the procedure did not announce: ${summarise(unannounced)}`);
  const failed = during.filter((entry) => isFailure(entry.status));
  let resumedAfterMs: number | undefined;
  if (failed.length > 0) {
    const last = failed.at(-1)!.at;
    const resumed = during.find((entry) => entry.at > last && entry.write && entry.status >= 200 && entry.status < 300);
    resumedAfterMs = resumed ? resumed.at - failed[0]!.at : undefined;
    if (!resumed) failures.push('requests did not resume after the last failure');
  }
  let writesChecked = 0;
  let writesMissing = 0;
  try {
    const { checked, missing } = await traffic.whilePaused(() => traffic.ledger.missing(deployment.pool));
    writesChecked = checked;
    writesMissing = missing.length;
    if (missing.length > 0) failures.push(`${missing.length} acknowledged write(s) missing: ${missing.slice(0, 5).join('; ')}`);
  } catch (error) {
    failures.push(`could not check the acknowledged writes: ${(error as Error).message}`);
  }
  const state = appState.between(started, ended);
  return {
    name: procedure.name,
    exitCodes: exitCodes.join(' '),
    seconds: (ended - started) / 1000,
    maintenanceSeconds: state.maintenance,
    readOnlySeconds: state.readOnly,
    trafficErrors,
    writesAcknowledged: traffic.ledger.acknowledged - acknowledgedBefore,
    writesChecked,
    writesMissing,
    resumedAfterMs,
    notes: ranToTheEnd ? notes : [...notes, 'stopped at the first failed expectation'],
    failures,
    expectedFailure: procedure.expectedToFail,
  };
}

/**
 * After a procedure failed: a run that stopped with maintenance still on (as documented for a
 * failed step) is ended the documented way, `shipshape maintenance off`, so the procedures after
 * it are rehearsed on a serving deployment.
 */
async function recover(deployment: Deployment, notes: string[]): Promise<void> {
  const config = (await (await fetch(`${deployment.instances[0].url}/config`)).json().catch(() => ({}))) as Record<string, any>;
  if (config.maintenance?.enabled !== true) return;
  const off = await deployment.cli(['maintenance', 'off', '--json']);
  notes.push(`maintenance was still on after the failure: \`shipshape maintenance off\` exited ${off.code}`);
}

/** Whether the rehearsal passed: every unexpected failure, one line each (empty when it passed). */
export function unexpectedFailures(report: RehearsalReport): string[] {
  const lines = [...report.failures];
  for (const procedure of report.procedures) {
    if (procedure.expectedFailure) {
      if (procedure.failures.length === 0)
        lines.push(`${procedure.name} passed but is marked "${procedure.expectedFailure}": remove the mark in test/rehearsal/procedures.ts`);
      // Expected to fail: its own failures are reported, not counted — unless a process died.
      lines.push(...procedure.failures.filter((failure) => /exited \(/.test(failure)).map((failure) => `${procedure.name}: ${failure}`));
    } else lines.push(...procedure.failures.map((failure) => `${procedure.name}: ${failure}`));
  }
  return lines;
}

function formatProcedure(p: ProcedureReport): string {
  const errors =
    Object.entries(p.trafficErrors)
      .map(([key, count]) => `${count}×${key}`)
      .join(', ') || 'none';
  const status =
    p.failures.length === 0
      ? p.expectedFailure
        ? 'PASSED (marked expected to fail)'
        : 'ok'
      : p.expectedFailure
        ? `FAILED as expected (${p.expectedFailure})`
        : 'FAILED';
  return [
    `■ ${p.name}: ${status} in ${p.seconds.toFixed(1)} s`,
    `    exit codes: ${p.exitCodes || '(none)'}`,
    `    maintenance ${p.maintenanceSeconds.toFixed(1)} s, read-only ${p.readOnlySeconds.toFixed(1)} s; requests resumed ${p.resumedAfterMs === undefined ? 'n/a (none failed)' : `${p.resumedAfterMs} ms after the first failure`}`,
    `    traffic errors: ${errors}`,
    `    writes acknowledged during it: ${p.writesAcknowledged}; acknowledged writes checked after it: ${p.writesChecked}, missing: ${p.writesMissing}`,
    ...p.notes.map((note) => `    note: ${note}`),
    ...p.failures.map((failure) => `    ✗ ${failure.split('\n').join('\n      ')}`),
  ].join('\n');
}

export function formatReport(report: RehearsalReport): string {
  const unexpected = unexpectedFailures(report);
  return [
    `Rehearsal (${report.form} form): ${report.procedures.length} procedure(s) in ${report.seconds.toFixed(0)} s, ${report.totalWritesAcknowledged} writes acknowledged in all`,
    '',
    ...report.procedures.map(formatProcedure),
    '',
    ...report.failures.map((failure) => `✗ ${failure}`),
    unexpected.length === 0 ? 'RESULT: passed' : `RESULT: ${unexpected.length} unexpected failure(s)`,
  ].join('\n');
}
