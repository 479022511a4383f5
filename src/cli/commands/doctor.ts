/**
 * `shipshape doctor [--json]` — runbook "Troubleshooting Guide" as checks; every finding
 * with the guide's remedy and the command that applies it. Exit 0 healthy, 1 findings, 5 no
 * findings but a check could not be made (e.g. slow queries without pg_stat_statements).
 */
import type { Command } from 'commander';
import { runDoctor, type DoctorReport } from '../../ops/diagnostics/doctor.ts';
import { cliContext } from '../context.ts';
import { exitWithFindings } from '../exit.ts';
import { emit } from '../output.ts';
import { jsonErrors } from './procedures.ts';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      'runbook "Troubleshooting Guide" as checks: connections, slow queries, size, long transactions, maintenance, backups, migrations; exit 0 healthy, 1 findings, 5 no findings but a check could not be made',
    )
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { json: boolean }) => {
      await jsonErrors(options.json, async () => {
        const context = cliContext();
        const report = await runDoctor(context.config, context.logger);
        emit(options, report, renderDoctor);
        exitWithFindings(report);
      });
    });
}

export function renderDoctor(report: DoctorReport): string {
  const lines: string[] = [];
  for (const check of report.checks) {
    const mark = check.status === 'ok' ? 'ok        ' : check.status === 'skip' ? 'skipped   ' : check.status === 'unverified' ? 'unverified' : 'FINDING   ';
    const [first, ...rest] = check.detail.split('\n');
    lines.push(`${mark}  ${check.name}: ${first ?? ''}`);
    for (const line of rest) lines.push(`              ${line}`);
    if (check.remedy !== undefined) lines.push(`              remedy: ${check.remedy}`);
    for (const command of check.commands ?? []) lines.push(`              run: ${command}`);
  }
  const findings = report.checks.filter((check) => check.status === 'finding').length;
  const unverified = report.checks.filter((check) => check.status === 'unverified').map((check) => check.name);
  const also = unverified.length === 0 ? '' : ` Unverified (could not be checked): ${unverified.join(', ')}.`;
  lines.push('', `${findings === 0 ? `No findings for ${report.database}.` : `${findings} finding(s) for ${report.database}.`}${also}`);
  return lines.join('\n');
}
