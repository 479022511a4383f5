/**
 * Rendering results as Markdown: the same text goes to stdout and, on a full run, to
 * bench/RESULTS.md (Markdown tables read fine in a terminal).
 */
import type { MachineInfo } from './machine.ts';
import type { Benchmark, BenchmarkReport, ReportSection, Table } from './types.ts';

export function renderTable(table: Table): string {
  const widths = table.columns.map((column, index) => Math.max(column.length, ...table.rows.map((row) => (row[index] ?? '').length), 3));
  const line = (cells: readonly string[]) => `| ${widths.map((width, index) => (cells[index] ?? '').padEnd(width)).join(' | ')} |`;
  return [line(table.columns), `| ${widths.map((width) => '-'.repeat(width)).join(' | ')} |`, ...table.rows.map(line)].join('\n');
}

export function renderSection(section: ReportSection, level = 3): string {
  const parts = [`${'#'.repeat(level)} ${section.heading}`];
  if (section.intro) parts.push(section.intro);
  if (section.table) parts.push(renderTable(section.table));
  if (section.code) parts.push(`\`\`\`\n${section.code.trimEnd()}\n\`\`\``);
  if (section.notes?.length) parts.push(section.notes.map((note) => `- ${note}`).join('\n'));
  return parts.join('\n\n');
}

export type Outcome =
  | { readonly benchmark: Benchmark; readonly state: 'measured'; readonly report: BenchmarkReport; readonly seconds: number }
  | { readonly benchmark: Benchmark; readonly state: 'pending'; readonly reason: string }
  | { readonly benchmark: Benchmark; readonly state: 'failed'; readonly error: string }
  | { readonly benchmark: Benchmark; readonly state: 'skipped' };

export function renderOutcome(outcome: Outcome): string {
  const { benchmark } = outcome;
  const heading = `## ${benchmark.order}. ${benchmark.title} (\`${benchmark.name}\`)`;
  switch (outcome.state) {
    case 'measured':
      return [
        heading,
        benchmark.description,
        `Size: ${outcome.report.size}. Took ${Math.round(outcome.seconds)} s.`,
        ...outcome.report.sections.map((section) => renderSection(section)),
        renderSection({ heading: 'Commands', code: outcome.report.commands.join('\n') }),
      ].join('\n\n');
    case 'pending':
      return [heading, benchmark.description, `**Not yet measurable:** ${outcome.reason}`].join('\n\n');
    case 'failed':
      return [heading, benchmark.description, `**Failed in this run:** ${outcome.error}`].join('\n\n');
    case 'skipped':
      return [heading, 'Not run (excluded with `--only`).'].join('\n\n');
  }
}

function summaryLine(outcome: Outcome): string {
  const name = `**${outcome.benchmark.order}. ${outcome.benchmark.title}**`;
  switch (outcome.state) {
    case 'measured':
      return `- ${name}: ${outcome.report.summary.join(' ')}`;
    case 'pending':
      return `- ${name}: not yet measurable.`;
    case 'failed':
      return `- ${name}: failed in this run.`;
    case 'skipped':
      return `- ${name}: not run.`;
  }
}

/** Every goal checked in this run, beside its baseline; a benchmark that did not run has no rows. */
export function renderGoals(outcomes: readonly Outcome[]): string {
  const rows = outcomes.flatMap((outcome) =>
    outcome.state === 'measured'
      ? (outcome.report.goals ?? []).map((goal) => [
          goal.measure,
          goal.baseline,
          goal.goal,
          goal.measured,
          goal.met ? 'met' : '**not met**',
          `${outcome.benchmark.order}`,
        ])
      : [],
  );
  if (rows.length === 0) return 'No benchmark in this run checks a goal.';
  const met = rows.filter((row) => row[4] === 'met').length;
  return [
    `${met} of ${rows.length} goals met. Ratios are taken against the baseline measured in the same run; the section named in the last column has the details.`,
    renderTable({ columns: ['Measure', 'Baseline (same run)', 'Goal', 'Measured', 'Met?', '§'], rows }),
  ].join('\n\n');
}

export function renderMachine(machine: MachineInfo, loadAfter: string): Table {
  return {
    columns: ['', ''],
    rows: [
      ['CPU', `${machine.cores} cores (${machine.cpuModel})`],
      ['Memory', `${machine.memoryGiB} GiB`],
      ['OS', machine.os],
      ['Node', machine.node],
      ['Database', machine.postgres],
      ['pgbench', machine.pgbench],
      ['Load generator', machine.autocannon],
      ['Load average (1/5/15 min)', `${machine.loadAverage.map((value) => value.toFixed(2)).join(' / ')} before, ${loadAfter} after`],
    ],
  };
}

export function renderResultsFile(input: { date: Date; command: string; machine: MachineInfo; loadAfter: string; outcomes: readonly Outcome[] }): string {
  return (
    [
      '# Benchmark results',
      '<!-- Written by `npm run bench` (bench/run.ts); a full run rewrites this file, so edit the generator, not the file. -->',
      `Measured ${input.date.toISOString().replace('T', ' ').slice(0, 16)} UTC with \`${input.command}\`. ` +
        'Every figure is the median of repeated runs with (min–max); ratios compare measurements taken in the same run, ' +
        'interleaved round by round, which is what survives a noisy machine. How to run, and how to add a benchmark: bench/README.md.',
      '## Summary',
      input.outcomes.map(summaryLine).join('\n'),
      '## Goals',
      renderGoals(input.outcomes),
      '## Machine',
      renderTable(renderMachine(input.machine, input.loadAfter)),
      ...input.outcomes.map(renderOutcome),
    ].join('\n\n') + '\n'
  );
}
