/**
 * Procedures on the command line: `shipshape procedures` lists them, and every registry
 * entry becomes its own command (`shipshape db backup …`) with the common flags. Also the
 * glue the run commands share: engine dependencies for a terminal, Ctrl-C handling, and
 * writing a report.
 */
import { type Command, Option } from 'commander';
import { ShipError } from '../../errors.ts';
import {
  configuredAlerter,
  resumeRun,
  runProcedure,
  waitForApprovalDecision,
  type ApprovalDecision,
  type EngineDeps,
  type ProcedureEntry,
  type RunReport,
} from '../../ops/engine/index.ts';
import { createTerminalObserver, createTerminalPrompter } from '../terminal.ts';
import { presentReport } from '../../ops/present/present.ts';
import { commonFlagNames } from '../../ops/engine/registry.ts';
import { cliContext, type CliContext } from '../context.ts';
import { exitWith } from '../exit.ts';
import { colourFor, jsonErrors } from '../output.ts';
import { procedureListing } from '../../ops/engine/registry.ts';
import { registerProcedureList } from './procedure-list.ts';

// Their home is output.ts (commands that must start fast import them from there); kept here for the others.
export { colourFor, jsonErrors };

interface CommonFlags {
  dryRun?: boolean;
  json?: boolean;
  yes?: boolean;
  yesIrreversible?: boolean;
  approvedBy?: string;
  wait?: boolean;
  waitForApproval?: boolean;
}

export function registerProcedures(program: Command, entries: readonly ProcedureEntry[]): void {
  registerProcedureList(program, procedureListing(entries));
  for (const entry of entries) registerProcedureCommand(program, entry);
}

/** Adds `shipshape <command words…>` for one procedure, creating parent commands as needed. */
export function registerProcedureCommand(program: Command, entry: ProcedureEntry): Command {
  const { procedure, cli } = entry;
  const words = procedure.command.split(/\s+/).filter(Boolean);
  const name = words.pop();
  if (name === undefined) throw new ShipError('SHIP_ERR_INTERNAL', `Procedure ${procedure.id} has an empty command.`);
  let parent = program;
  for (const word of words) parent = parent.commands.find((command) => command.name() === word) ?? parent.command(word);
  if (parent.commands.some((command) => command.name() === name)) {
    throw new ShipError('SHIP_ERR_INTERNAL', `Procedure ${procedure.id}: the command \`shipshape ${procedure.command}\` is already taken.`);
  }
  const command = parent.command(name).description(`${procedure.title} (${procedure.risk} risk, ${procedure.expectedDuration}). ${procedure.whenToUse}`);

  const labels = new Map<string, string>();
  const argumentParams: string[] = [];
  for (const argument of cli.arguments ?? []) {
    const param = argument.param ?? argument.name;
    const usage = `${argument.name}${argument.variadic ? '...' : ''}`;
    command.argument(argument.optional ? `[${usage}]` : `<${usage}>`, argument.description);
    argumentParams.push(param);
    labels.set(param, `<${argument.name}>`);
  }
  const optionParams: Array<{ attribute: string; param: string }> = [];
  for (const spec of cli.options ?? []) {
    const option = new Option(spec.flags, spec.description);
    if (spec.defaultValue !== undefined) option.default(spec.defaultValue);
    if ((commonFlagNames as readonly string[]).includes(option.long ?? '')) {
      throw new ShipError('SHIP_ERR_INTERNAL', `Procedure ${procedure.id} declares ${option.long ?? spec.flags}, which every procedure already has.`);
    }
    command.addOption(option);
    const param = spec.param ?? option.attributeName();
    optionParams.push({ attribute: option.attributeName(), param });
    labels.set(param, option.long ?? spec.flags);
  }
  command
    .option('--dry-run', 'print the plan (steps, exact SQL/commands, prerequisites checked read-only) and change nothing', false)
    .option('--json', 'print one JSON document (the run report) on stdout', false)
    .option('--yes', 'confirm without a prompt (medium risk and above)', false)
    .option('--yes-irreversible', 'confirm the steps that cannot be undone (separate from --yes)', false)
    .option('--approved-by <name>', 'second operator approving inline, where policy allows (SHIPSHAPE_ALLOW_INLINE_APPROVAL)')
    .option('--wait', 'queue behind a run holding the same lock instead of failing', false)
    .option(
      '--wait-for-approval',
      'high/critical: stay until another operator approves (then go ahead) or refuses (exit 3); Ctrl-C leaves it awaiting approval',
      false,
    )
    .action(async () => {
      const values = command.opts<CommonFlags & Record<string, unknown>>();
      const input: Record<string, unknown> = {};
      command.processedArgs.forEach((value: unknown, index: number) => {
        const param = argumentParams[index];
        if (param !== undefined && value !== undefined) input[param] = value;
      });
      for (const { attribute, param } of optionParams) if (values[attribute] !== undefined) input[param] = values[attribute];
      const json = values.json === true;
      const context = cliContext();
      const report = await withInterrupts(async (signal) =>
        runProcedure(
          procedure,
          input,
          {
            dryRun: values.dryRun === true,
            yes: values.yes === true,
            yesIrreversible: values.yesIrreversible === true,
            approvedBy: typeof values.approvedBy === 'string' ? values.approvedBy : undefined,
            wait: values.wait === true,
            fieldLabel: (field) => labels.get(field.split('.')[0] ?? field) ?? field,
          },
          await terminalEngineDeps(context, signal, { quiet: values.dryRun === true }),
        ),
      );
      if (values.waitForApproval === true && report.state === 'awaiting-approval' && report.runId !== null) {
        const runId = report.runId;
        // With --json, stdout keeps one document: the final report.
        if (!json) writeReport(report, false);
        await jsonErrors(json, async () => {
          await waitForApproval(context, runId);
          const continueOptions = { yes: values.yes === true, yesIrreversible: values.yesIrreversible === true, wait: values.wait === true };
          const resumed = await withInterrupts(async (signal) =>
            resumeRun(runId, [procedure], continueOptions, await terminalEngineDeps(context, signal, { quiet: json })),
          );
          writeReport(resumed, json);
        });
        return;
      }
      writeReport(report, json);
    });
  return command;
}

/**
 * `--wait-for-approval`: stays at the terminal re-reading the run's journal until another
 * operator approves it (returns: the caller resumes it), or refuses it (throws
 * SHIP_ERR_APPROVAL_REFUSED: exit 3 with who and why). Ctrl-C stops waiting and leaves the run
 * awaiting approval (exit 3); nothing is rolled back because nothing ran.
 */
export async function waitForApproval(context: CliContext, runId: string): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.stderr.write(
    `Waiting for another operator to approve run ${runId} (\`shipshape approve ${runId}\`, or Approve on its console page) or to refuse it. Ctrl-C stops waiting; the run stays awaiting approval.\n`,
  );
  let decision: ApprovalDecision;
  try {
    decision = await waitForApprovalDecision(context.config.stateDir, runId, { signal: controller.signal });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  switch (decision.kind) {
    case 'approved':
      process.stderr.write(`Approved by ${decision.by} (valid until ${decision.expiresAt}): going ahead.\n`);
      return;
    case 'refused':
      throw new ShipError('SHIP_ERR_APPROVAL_REFUSED', decision.message);
    case 'moved-on':
      throw new ShipError(
        'SHIP_ERR_VALIDATION',
        `Run ${runId} is ${decision.state} now, no longer awaiting approval (cancelled or resumed elsewhere). \`shipshape runs show ${runId}\` shows what happened.`,
      );
    case 'stopped':
      throw new ShipError(
        'SHIP_ERR_APPROVAL_REQUIRED',
        `Stopped waiting. Run ${runId} is still awaiting approval: once another operator approves it, run \`shipshape runs resume ${runId}\`.`,
      );
  }
}

/** Engine dependencies for a command run from a shell. */
export async function terminalEngineDeps(context: CliContext, signal: AbortSignal, options: { quiet?: boolean } = {}): Promise<EngineDeps> {
  const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true;
  return {
    config: context.config,
    logger: context.logger,
    alerts: await configuredAlerter(context.config, context.logger),
    observer: options.quiet
      ? undefined
      : createTerminalObserver({ stream: process.stderr, live: process.stderr.isTTY === true, color: colourFor(process.stderr) }),
    prompter: interactive ? createTerminalPrompter(process.stdin, process.stderr) : undefined,
    signal,
  };
}

/**
 * First SIGINT/SIGTERM aborts the run's signal: the current step is told, then completed
 * steps are rolled back. A second one exits at once, leaving the run `interrupted`.
 */
export async function withInterrupts<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let received = 0;
  const onSignal = (name: NodeJS.Signals) => {
    received += 1;
    if (received === 1) {
      process.stderr.write(
        `\n${name}: stopping. The current step is told to stop, then completed steps are rolled back. Press Ctrl-C again to exit at once (the run is then left interrupted).\n`,
      );
      controller.abort(new Error(`interrupted by ${name}`));
      return;
    }
    process.stderr.write('Exiting now. The run is left interrupted: see `shipshape runs`.\n');
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // Interrupted, the run is over once reported; a request still stuck on a server that never
    // answers (a hung S3) must not keep the process alive. Unref'd: a clean end exits sooner.
    if (controller.signal.aborted) setTimeout(() => process.exit(), 2_000).unref();
  }
}

export function writeReport(report: RunReport, json: boolean): void {
  const presented = presentReport(report, { json, color: !json && colourFor(process.stdout) });
  process.stdout.write(presented.stdout);
  if (presented.stderr) process.stderr.write(presented.stderr);
  exitWith(presented.exitCode);
}

/** With --json, a ShipError still becomes one JSON document on stdout (and its line on stderr). */
