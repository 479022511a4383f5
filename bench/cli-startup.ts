/**
 * Benchmark 7, CLI start-up: `shipshape --version`, `shipshape procedures` and `shipshape runs`
 * against `node -e 0` on the same Node, run in turn (A B A B …) so a slow moment of the
 * machine hits both, and compared pair by pair. CPU (user + system) comes from bash's `times`
 * builtin for the finished child; wall time from the clock around it.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cliEntry, projectRoot } from './lib/paths.ts';
import { formatNumber, formatRatio, formatTimes, spread } from './lib/stats.ts';
import type { BenchmarkContext, BenchmarkReport, GoalCheck, MeasurableBenchmark } from './lib/types.ts';

/** The goal: each command at most this many times `node -e 0`. */
const GOAL_RATIO = 4;

const COMMANDS: ReadonlyArray<{ label: string; args: readonly string[] }> = [
  { label: 'shipshape --version', args: ['--version'] },
  { label: 'shipshape procedures', args: ['procedures'] },
  { label: 'shipshape runs', args: ['runs'] },
];

interface Timing {
  readonly cpu: number;
  readonly wall: number;
}

export const benchmark: MeasurableBenchmark = {
  name: 'cli-startup',
  order: 7,
  title: 'CLI start-up',
  description:
    'Whole-process CPU and wall time of `shipshape --version`, `shipshape procedures` and `shipshape runs` (empty STATE_DIR), each paired run by run with `node -e 0` on the same Node; the goal is at most 4× `node -e 0`.',
  run: runCliStartup,
};

/** One run under bash, whose `times` prints the finished child's user and system seconds. */
function timed(args: readonly string[], env: Record<string, string>): Promise<Timing> {
  const quoted = [process.execPath, ...args].map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(' ');
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('bash', ['-c', `${quoted} >/dev/null 2>&1; times`], { cwd: projectRoot, env, stdio: ['ignore', 'pipe', 'ignore'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', () => {
      const wall = (performance.now() - started) / 1000;
      // Second line: the children's user and system time, e.g. "0m0.120s 0m0.031s".
      const seconds = [...(output.trim().split('\n')[1] ?? '').matchAll(/(\d+)m([\d.]+)s/g)].map((match) => Number(match[1]) * 60 + Number(match[2]));
      if (seconds.length !== 2) return reject(new Error(`could not read the CPU time from bash's \`times\`: ${JSON.stringify(output)}`));
      resolve({ cpu: seconds[0]! + seconds[1]!, wall });
    });
  });
}

async function runCliStartup(context: BenchmarkContext): Promise<BenchmarkReport> {
  const rounds = context.quick ? 2 : 10;
  const stateDir = await mkdtemp(path.join(tmpdir(), 'shipshape-bench-cli-'));
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', STATE_DIR: stateDir };
  try {
    const rows: string[][] = [];
    const summary: string[] = [];
    const goals: GoalCheck[] = [];
    let measurements = 0;
    for (const command of COMMANDS) {
      context.progress(`cli-startup: ${command.label} against node -e 0, ${rounds} pairs`);
      // One of each first, unmeasured: the compile cache and the file system cache warm up.
      await timed([cliEntry, ...command.args], env);
      await timed(['-e', '0'], env);
      const pairs: Array<{ a: Timing; b: Timing }> = [];
      for (let round = 0; round < rounds; round += 1) {
        const a = await timed([cliEntry, ...command.args], env);
        const b = await timed(['-e', '0'], env);
        pairs.push({ a, b });
        measurements += 2;
      }
      const cpuRatio = spread(pairs.map(({ a, b }) => a.cpu / b.cpu));
      const wallRatio = spread(pairs.map(({ a, b }) => a.wall / b.wall));
      const cpu = spread(pairs.map(({ a }) => a.cpu));
      const wall = spread(pairs.map(({ a }) => a.wall));
      const baseline = spread(pairs.map(({ b }) => b.cpu));
      rows.push([
        command.label,
        formatNumber(cpu.median),
        formatNumber(wall.median),
        formatNumber(baseline.median),
        formatRatio(cpuRatio),
        formatRatio(wallRatio),
        cpuRatio.median <= GOAL_RATIO ? 'met' : 'not met',
      ]);
      summary.push(`${command.label} ${cpuRatio.median.toFixed(2)}× node -e 0 (CPU)`);
      goals.push({
        measure: `\`${command.label}\`, CPU`,
        baseline: '`node -e 0`, same Node',
        goal: `≤ ${GOAL_RATIO}×`,
        measured: `${formatTimes(cpuRatio)}, ${formatNumber(wall.median)} s wall`,
        met: cpuRatio.median <= GOAL_RATIO,
      });
    }
    return {
      size: `${rounds} paired runs per command after one unmeasured pair`,
      sections: [
        {
          heading: 'Start-up against `node -e 0`',
          intro:
            'Seconds are medians over the runs; ratios are taken pair by pair (each command run next to `node -e 0`), then summarised as median (min–max). Goal: CPU ratio ≤ 4.',
          table: { columns: ['Command', 'CPU s', 'Wall s', '`node -e 0` CPU s', 'CPU ÷ node -e 0', 'Wall ÷ node -e 0', `≤ ${GOAL_RATIO}×`], rows },
        },
      ],
      commands: [
        `# each with STATE_DIR=<empty folder>, timed by bash's \`times\``,
        ...COMMANDS.map((command) => `node bin/shipshape.js ${command.args.join(' ')}`),
        'node -e 0',
      ],
      measurements,
      summary: [`${summary.join(', ')}; goal ≤ ${GOAL_RATIO}×.`],
      goals,
    };
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}
