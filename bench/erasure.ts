/**
 * Benchmark 4, erasure: users with 100,000 tasks each in a tasks table of 10 million rows.
 * Shipshape's erasure (`eraseUser` from src/domain/erasure.ts: every referencing table,
 * children first, verified, recorded in the ledger and the audit trail) against the least
 * a database can do in the same run — `DELETE FROM users WHERE id = $1` and its
 * ON DELETE CASCADE — each on its own heavy user, interleaved round by round.
 *
 * The plans come from auto_explain (loaded into the erasure's own session, reporting at
 * NOTICE level so they reach us instead of the server log) during the untimed warm-up
 * erasure; the timed runs are checked with pg_stat_user_tables: the tasks table's
 * sequential-scan counter must not move.
 */
import { defaultUsersTable, eraseUser } from '../src/domain/erasure.ts';
import { createPool, type Pool } from '../src/db/pool.ts';
import { createLogger } from '../src/log.ts';
import { createBenchDatabase, type BenchDatabase } from './lib/database.ts';
import { seed, userId } from './lib/seed.ts';
import { formatNumber, formatRatio, spread } from './lib/stats.ts';
import type { BenchmarkContext, BenchmarkReport, MeasurableBenchmark } from './lib/types.ts';

interface Plan {
  readonly tableRows: number;
  readonly tasksPerUser: number;
  readonly tasksPerHeavyUser: number;
  readonly repeats: number;
}

const FULL: Plan = { tableRows: 10_000_000, tasksPerUser: 100, tasksPerHeavyUser: 100_000, repeats: 3 };
const QUICK: Plan = { tableRows: 20_000, tasksPerUser: 50, tasksPerHeavyUser: 1_000, repeats: 1 };

type Method = 'erasure' | 'cascade';
const methodLabels: Record<Method, string> = {
  erasure: 'Shipshape erasure (`eraseUser`)',
  cascade: 'Baseline: `DELETE FROM users` + ON DELETE CASCADE',
};

interface Run {
  readonly method: Method;
  readonly seconds: number;
  readonly tasksDeleted: number;
  readonly seqScans: number;
  readonly indexScans: number;
}

interface PlanLine {
  readonly statement: string;
  readonly scans: string[];
}

export const benchmark: MeasurableBenchmark = {
  name: 'erasure',
  order: 4,
  title: 'Erasure',
  description:
    "A user with 100,000 tasks in a tasks table of 10 million rows: the wall time of Shipshape's GDPR erasure (`eraseUser`, " +
    'what `shipshape user delete` runs) against a bare `DELETE FROM users … ON DELETE CASCADE` of an equally heavy user in the same run, ' +
    'and the plans the erasure used (none may sequentially scan the big table).',
  run: runErasureBenchmark,
};

async function runErasureBenchmark(context: BenchmarkContext): Promise<BenchmarkReport> {
  const plan = context.quick ? QUICK : FULL;
  const heavyUsers = 2 * (plan.repeats + 1);
  const users = Math.floor((plan.tableRows - heavyUsers * plan.tasksPerHeavyUser) / plan.tasksPerUser);
  const database = await createBenchDatabase(context.adminUrl, 'erasure');
  const pool = createPool(
    { connectionString: database.url, max: 1, statementTimeoutMs: 600_000, connectTimeoutMs: 10_000, applicationName: 'shipshape-bench-erasure' },
    createLogger('warn'),
  );
  try {
    context.progress(
      `erasure: seeding ${(users * plan.tasksPerUser + heavyUsers * plan.tasksPerHeavyUser).toLocaleString('en-US')} tasks (${heavyUsers} users with ${plan.tasksPerHeavyUser.toLocaleString('en-US')} each)`,
    );
    const seeded = await seed(database.pool, { users, tasksPerUser: plan.tasksPerUser, extraUsers: heavyUsers, tasksPerExtraUser: plan.tasksPerHeavyUser });
    context.progress(`erasure: seeded in ${seeded.loadSeconds.toFixed(1)} s`);
    const heavy = Array.from({ length: heavyUsers }, (_, index) => userId(users + 1 + index));
    const next = () => heavy.shift() ?? '';

    const plans = await capturePlans(pool, next());
    await cascadeDelete(database, next());

    const runs: Run[] = [];
    for (let round = 0; round < plan.repeats; round += 1) {
      const order: Method[] = round % 2 === 0 ? ['erasure', 'cascade'] : ['cascade', 'erasure'];
      for (const method of order) {
        runs.push(await measured(database, pool, method, next()));
      }
      context.progress(`erasure: round ${round + 1}/${plan.repeats} done`);
    }
    return report(plan, runs, plans, seeded.loadSeconds);
  } finally {
    await pool.end().catch(() => undefined);
    await database.drop();
  }
}

/** The warm-up erasure, with every statement's plan (nested ones too) sent back as a NOTICE. */
async function capturePlans(pool: Pool, user: string): Promise<PlanLine[]> {
  const notices: string[] = [];
  const client = await pool.connect();
  const onNotice = (notice: { message?: string | undefined }) => void notices.push(notice.message ?? '');
  client.on('notice', onNotice);
  await client.query(`LOAD 'auto_explain'`);
  await client.query(
    `SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET auto_explain.log_format = 'json'; SET auto_explain.log_level = 'notice'`,
  );
  client.release();
  try {
    // The pool holds one connection, so the erasure runs on this session.
    await erase(pool, user);
  } finally {
    const again = await pool.connect();
    await again.query('RESET auto_explain.log_min_duration');
    again.removeListener('notice', onNotice);
    again.release();
  }
  const seen = new Map<string, PlanLine>();
  for (const notice of notices) {
    const parsed = parsePlan(notice);
    if (!parsed || parsed.scans.length === 0) continue;
    seen.set(`${parsed.statement}|${parsed.scans.join(',')}`, parsed);
  }
  return [...seen.values()];
}

function parsePlan(notice: string): PlanLine | undefined {
  const start = notice.indexOf('{');
  if (start < 0) return undefined;
  let document: unknown;
  try {
    document = JSON.parse(notice.slice(start));
  } catch {
    return undefined;
  }
  if (typeof document !== 'object' || document === null || !('Plan' in document)) return undefined;
  const text = 'Query Text' in document && typeof document['Query Text'] === 'string' ? document['Query Text'] : '';
  const scans: string[] = [];
  const walk = (node: unknown) => {
    if (typeof node !== 'object' || node === null) return;
    const relation = 'Relation Name' in node && typeof node['Relation Name'] === 'string' ? node['Relation Name'] : undefined;
    const type = 'Node Type' in node && typeof node['Node Type'] === 'string' ? node['Node Type'] : '';
    const index = 'Index Name' in node && typeof node['Index Name'] === 'string' ? node['Index Name'] : undefined;
    // Catalog reads (the erasure maps the schema first) are not what this benchmark is about.
    if (relation && !relation.startsWith('pg_')) scans.push(`${type} on ${relation}${index ? ` using ${index}` : ''}`);
    if ('Plans' in node && Array.isArray(node.Plans)) node.Plans.forEach(walk);
  };
  walk(document.Plan);
  return { statement: text.replace(/\s+/g, ' ').trim(), scans };
}

function erase(pool: Pool, user: string) {
  return eraseUser(pool, defaultUsersTable, { userId: user, operator: 'bench', ticket: 'BENCH-1', reason: 'benchmark' });
}

async function cascadeDelete(database: BenchDatabase, user: string): Promise<void> {
  await database.pool.query('DELETE FROM users WHERE id = $1::uuid', [user]);
}

async function measured(database: BenchDatabase, pool: Pool, method: Method, user: string): Promise<Run> {
  const { rows } = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks WHERE user_id = $1::uuid', [user]);
  await flushStats(database.pool);
  const before = await tasksStats(database);
  const started = performance.now();
  if (method === 'erasure') await erase(pool, user);
  else await cascadeDelete(database, user);
  const seconds = (performance.now() - started) / 1000;
  // Counters reach shared memory when a session goes idle; force it for the session that did the work.
  await flushStats(method === 'erasure' ? pool : database.pool);
  const after = await tasksStats(database);
  return { method, seconds, tasksDeleted: rows[0]?.n ?? 0, seqScans: after.seqScans - before.seqScans, indexScans: after.indexScans - before.indexScans };
}

async function flushStats(pool: Pool): Promise<void> {
  await pool.query('SELECT pg_stat_force_next_flush()');
  // The flush happens as that session goes idle; a second statement makes sure it has.
  await pool.query('SELECT 1');
}

async function tasksStats(database: BenchDatabase): Promise<{ seqScans: number; indexScans: number }> {
  const { rows } = await database.pool.query<{ seq: number; idx: number }>(
    `SELECT coalesce(seq_scan, 0)::bigint AS seq, coalesce(idx_scan, 0)::bigint AS idx FROM pg_stat_user_tables WHERE relid = 'tasks'::regclass`,
  );
  return { seqScans: rows[0]?.seq ?? 0, indexScans: rows[0]?.idx ?? 0 };
}

function report(plan: Plan, runs: readonly Run[], plans: readonly PlanLine[], loadSeconds: number): BenchmarkReport {
  const rows = (['erasure', 'cascade'] as const).map((method) => {
    const ofMethod = runs.filter((run) => run.method === method);
    const time = spread(ofMethod.map((run) => run.seconds));
    return [
      methodLabels[method],
      String(ofMethod.length),
      `${formatNumber(time.median)} (${formatNumber(time.min)}–${formatNumber(time.max)})`,
      formatNumber(spread(ofMethod.map((run) => run.tasksDeleted)).median),
      String(ofMethod.reduce((sum, run) => sum + run.seqScans, 0)),
      String(ofMethod.reduce((sum, run) => sum + run.indexScans, 0)),
    ];
  });
  const erasures = runs.filter((run) => run.method === 'erasure');
  const cascades = runs.filter((run) => run.method === 'cascade');
  const ratio = spread(erasures.map((run, index) => run.seconds / (cascades[index]?.seconds ?? Number.NaN)).filter(Number.isFinite));
  const onTasks = plans.filter((line) => line.scans.some((scan) => / on tasks( |$)/.test(scan)));
  const seqInPlans = onTasks.filter((line) => line.scans.some((scan) => scan.startsWith('Seq Scan on tasks')));
  const otherSeq = [
    ...new Set(
      plans.flatMap((line) =>
        line.scans.filter((scan) => scan.startsWith('Seq Scan on ') && !/ on tasks( |$)/.test(scan)).map((scan) => scan.slice('Seq Scan on '.length)),
      ),
    ),
  ];
  const seqInRuns = erasures.reduce((sum, run) => sum + run.seqScans, 0);
  const notes = [
    seqInPlans.length === 0 && seqInRuns === 0
      ? "No sequential scan of `tasks`: none in the captured plans, and the table's seq_scan counter did not move during the timed erasures."
      : `**Sequential scan of \`tasks\`**: ${seqInPlans.length} captured statement(s) plan one, and the counter moved by ${seqInRuns} during the timed erasures.`,
    `The erasure ran ${plans.length} statements on application tables; ${plans.length - onTasks.length} of them touch only small tables` +
      (otherSeq.length
        ? `, of which these were planned as sequential scans: ${otherSeq.join(', ')} (nearly empty here, where the planner prefers a sequential scan whatever the indexes).`
        : '.'),
    `Shipshape's erasure takes ${formatRatio(ratio)} times as long as the bare cascade (per round, median (min–max)). ` +
      'It does more by design: it maps every table that references users from the catalog, deletes children first in passes until nothing is left, ' +
      'counts what remains in every table before and after deleting the account row, and writes the erasure ledger and the audit trail, all in one transaction.',
    `Data: ${plan.tableRows.toLocaleString('en-US')} tasks (${plan.tasksPerUser} per ordinary user, ${plan.tasksPerHeavyUser.toLocaleString('en-US')} per heavy user), loaded in ${loadSeconds.toFixed(1)} s and vacuum-analysed before the first erasure. Each run erases a different heavy user; the first pair is the untimed warm-up, during which the plans were captured.`,
  ];
  return {
    size: `${plan.tableRows.toLocaleString('en-US')} tasks; users with ${plan.tasksPerHeavyUser.toLocaleString('en-US')} tasks erased, ${plan.repeats} timed rounds`,
    sections: [
      {
        heading: 'Wall time',
        intro: 'Seconds per erasure: median (min–max) over the rounds; scans of `tasks` are summed from pg_stat_user_tables over the timed runs.',
        table: { columns: ['Method', 'Runs', 'Seconds', 'Tasks deleted', 'Seq scans of tasks', 'Index scans of tasks'], rows },
      },
      {
        heading: 'Plans on the big table',
        intro:
          'Every statement the warm-up erasure ran whose plan touches `tasks` (nested statements from triggers and foreign keys included), with the scans in its plan.',
        table: { columns: ['Statement', 'Scans'], rows: onTasks.map((line) => [`\`${truncate(line.statement, 140)}\``, line.scans.join('; ')]) },
      },
      { heading: 'Findings and caveats', notes },
    ],
    commands: [
      '# in the benchmark process, each on its own connection, one heavy user per run:',
      "eraseUser(pool, defaultUsersTable, { userId, operator: 'bench', ticket: 'BENCH-1', reason: 'benchmark' })   -- src/domain/erasure.ts",
      'DELETE FROM users WHERE id = $1::uuid   -- the baseline',
      "-- plans: LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0, log_nested_statements = on, log_format = 'json', log_level = 'notice' (warm-up erasure only)",
    ],
    measurements: runs.length,
    summary: [
      `${ratio.median.toFixed(2)}× the time of a bare cascade delete (median ${formatNumber(spread(erasures.map((run) => run.seconds)).median)} s for ${plan.tasksPerHeavyUser.toLocaleString('en-US')} tasks);`,
      seqInPlans.length === 0 && seqInRuns === 0 ? 'no sequential scan of the big table.' : '**a sequential scan of the big table**.',
    ],
  };
}

function truncate(text: string, length: number): string {
  const safe = text.replaceAll('|', '\\|').replaceAll('`', "'");
  return safe.length > length ? `${safe.slice(0, length - 1)}…` : safe;
}
