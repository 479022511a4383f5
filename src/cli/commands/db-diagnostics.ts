/**
 * Read-only database diagnostics (runbook: "Analyze Slow Queries", "Investigate High Memory
 * Usage"): `db slow-queries`, `db explain`, `db diagnose`, `db index-advice`. The commands
 * that change something are procedures: `db index`, `db kill`.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { describeConnection } from '../../db/backends.ts';
import { explainAnalyze, type ExplainResult } from '../../ops/diagnostics/explain.ts';
import { diagnose, CACHE_HIT_TARGET, type Diagnosis } from '../../ops/diagnostics/diagnose.ts';
import { formatBytes } from '../../bytes.ts';
import { indexAdvice, type IndexAdvice } from '../../ops/diagnostics/indexes.ts';
import { EMBEDDED_SINGLE_BACKEND, requirePostgres } from '../../ops/diagnostics/postgres-only.ts';
import { seconds, type Session } from '../../ops/diagnostics/sessions.ts';
import { slowQueries, type SlowQueryReport } from '../../ops/diagnostics/slow-queries.ts';
import { applicationDatabaseName } from '../../ops/backups/database-target.ts';
import { cliContext, withDatabase } from '../context.ts';
import { emit, table } from '../output.ts';
import { jsonErrors } from './procedures.ts';

const limitArgument = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 100) throw new InvalidArgumentError('must be a whole number from 1 to 100.');
  return Number(value);
};

export function registerDbDiagnostics(db: Command): void {
  db.command('slow-queries')
    .description('runbook "Analyze Slow Queries": the top statements by mean time from pg_stat_statements (PostgreSQL only)')
    .option('--limit <n>', 'how many statements (1-100)', limitArgument, 10)
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { limit: number; json: boolean }) => {
      await jsonErrors(options.json, async () => {
        const context = cliContext();
        requirePostgres(context.config, 'db slow-queries', `${EMBEDDED_SINGLE_BACKEND} and has no pg_stat_statements`);
        const report = await withDatabase(context, (database) =>
          slowQueries(database.pool, { limit: options.limit, databaseName: applicationDatabaseName(context.config) }),
        );
        emit(options, report, renderSlowQueries);
      });
    });

  db.command('explain')
    .description('runbook "Analyze Slow Queries": EXPLAIN (ANALYZE, BUFFERS) of one statement, inside a transaction that is always rolled back')
    .argument('<sql>', 'one SQL statement, quoted for the shell')
    .option('--json', 'print one JSON document on stdout (with the JSON plan)', false)
    .action(async (sql: string, options: { json: boolean }) => {
      await jsonErrors(options.json, async () => {
        const context = cliContext();
        const result = await withDatabase(context, (database) =>
          explainAnalyze(database.pool, sql, { statementTimeoutMs: context.config.database.statementTimeoutMs, json: options.json }),
        );
        emit(options, result, renderExplain);
      });
    });

  db.command('diagnose')
    .description(
      'runbook "Investigate High Memory Usage": sizes, connections per client, long-running and idle-in-transaction sessions, blocking, cache hit ratio, index advice',
    )
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { json: boolean }) => {
      await jsonErrors(options.json, async () => {
        const context = cliContext();
        const report = await withDatabase(context, diagnose);
        emit(options, report, renderDiagnosis);
      });
    });

  db.command('index-advice')
    .description('likely missing indexes (large tables read mostly by sequential scans) and indexes never used')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { json: boolean }) => {
      await jsonErrors(options.json, async () => {
        const context = cliContext();
        const advice = await withDatabase(context, (database) => indexAdvice(database.pool));
        emit(options, advice, (a) => renderIndexAdvice(a).join('\n'));
      });
    });
}

export function renderSlowQueries(report: SlowQueryReport): string {
  const rows = report.queries.map((q, i) => [
    i + 1,
    q.meanMs,
    q.maxMs,
    q.calls,
    Math.round(q.totalMs),
    q.rows,
    q.cacheHitRatio === null ? null : `${(q.cacheHitRatio * 100).toFixed(1)} %`,
    q.query,
  ]);
  return [
    `Top ${report.queries.length} statements by mean time (pg_stat_statements.${report.columns.mean}; server ${report.serverVersionNum}):`,
    report.queries.length === 0
      ? '(no statements recorded yet)'
      : table(['#', 'mean ms', 'max ms', 'calls', 'total ms', 'rows', 'cache hit', 'statement'], rows),
    '',
    'Next: shipshape db explain "<statement with real values for $1…>", then shipshape db index <table> <column…>.',
    report.logMinDurationMs === null
      ? 'Slow statements are not logged (log_min_duration_statement = -1). To log those over 1 s: ALTER DATABASE <db> SET log_min_duration_statement = 1000;'
      : `Statements over ${report.logMinDurationMs} ms are also written to the server log.`,
  ].join('\n');
}

export function renderExplain(result: ExplainResult): string {
  return [...result.plan, '', ...result.notes.map((note) => `note: ${note}`)].join('\n');
}

export function renderDiagnosis(d: Diagnosis): string {
  const out: string[] = [];
  out.push(`Database ${d.database.name} (${d.database.kind}): ${formatBytes(d.database.bytes)}`);
  out.push('', 'Largest tables:');
  out.push(
    table(
      ['table', 'total', 'table', 'indexes', 'live rows', 'dead rows'],
      d.largestTables.map((t) => [t.table, formatBytes(t.totalBytes), formatBytes(t.tableBytes), formatBytes(t.indexBytes), t.liveRows, t.deadRows]),
    ),
  );
  out.push(
    '',
    `Cache hit ratio: ${d.cacheHitRatio === null ? 'no reads yet' : `${(d.cacheHitRatio * 100).toFixed(2)} %${d.cacheHitRatio < CACHE_HIT_TARGET ? ` — below ${CACHE_HIT_TARGET * 100} %: more reads go to disk than an OLTP database should (shared_buffers, or queries reading too much)` : ''}`}`,
  );
  if (d.sessions === null) {
    out.push('', `Connections, long-running and blocked sessions: do not apply — ${EMBEDDED_SINGLE_BACKEND}.`);
  } else {
    const s = d.sessions;
    out.push(
      '',
      `Connections: ${s.usage.total} of ${s.usage.usable} usable (max_connections ${s.usage.maxConnections}), ${s.usage.thisDatabase} on this database; by state: ${s.usage.byState.map((x) => `${x.count} ${x.state}`).join(', ') || 'none'}`,
    );
    out.push(
      table(
        ['client address', 'application', 'connections', 'idle'],
        s.byClient.map((c) => [c.clientAddr, c.applicationName, c.count, c.idle]),
      ),
    );
    out.push('', 'Active statements, longest first:', sessionsTable(s.longRunning, 'querySeconds', 'running'));
    out.push('', 'Idle in transaction (holding locks and old snapshots):', sessionsTable(s.idleInTransaction, 'stateSeconds', 'idle for'));
    out.push(
      '',
      'Blocked sessions:',
      s.blocking.blocked.length === 0
        ? '(none)'
        : table(
            ['pid', 'waiting', 'for', 'blocked by', 'statement'],
            s.blocking.blocked.map((b) => [b.pid, seconds(b.querySeconds), b.waitEvent, b.blockedBy.join(', '), b.query]),
          ),
    );
    if (s.blocking.blockers.length > 0) {
      out.push(
        'Blocking them:',
        table(
          ['pid', 'who', 'state', 'transaction open', 'blocks', 'statement'],
          s.blocking.blockers.map((b) => [b.pid, describeConnection(b), b.state, seconds(b.transactionSeconds), b.blocking.join(', '), b.query]),
        ),
      );
      out.push('To stop one: shipshape db kill <pid> (add --force for a session idle in a transaction).');
    }
  }
  out.push('', ...renderIndexAdvice(d.indexes));
  return out.join('\n');
}

function sessionsTable(sessions: readonly Session[], field: 'querySeconds' | 'stateSeconds', label: string): string {
  if (sessions.length === 0) return '(none)';
  return table(
    ['pid', 'who', label, 'transaction open', 'statement'],
    sessions.map((s) => [s.pid, describeConnection(s).replace(/^pid \d+ /, ''), seconds(s[field]), seconds(s.transactionSeconds), s.query]),
  );
}

export function renderIndexAdvice(advice: IndexAdvice): string[] {
  const since = advice.statsSince === null ? 'since statistics began' : `since ${advice.statsSince}`;
  const out = [`Index advice (counters ${since}):`];
  if (advice.likelyMissing.length === 0) out.push('  likely missing: none (no large table is read mostly by sequential scans)');
  else {
    out.push('  likely missing — large tables read mostly by sequential scans:');
    out.push(
      table(
        ['table', 'rows', 'seq scans', 'index scans', 'rows per seq scan', 'size'],
        advice.likelyMissing.map((m) => [m.table, m.liveRows, m.seqScans, m.indexScans, m.rowsPerSeqScan, formatBytes(m.bytes)]),
      ),
    );
    out.push('  find the filtering column with `shipshape db slow-queries` / `db explain`, then: shipshape db index <table> <column…>');
  }
  if (advice.unused.length === 0) out.push('  unused: none');
  else {
    out.push('  never used (not unique, not a constraint) — each slows every write; consider DROP INDEX CONCURRENTLY <index>:');
    out.push(
      table(
        ['index', 'table', 'size', 'definition'],
        advice.unused.map((u) => [u.index, u.table, formatBytes(u.bytes), u.definition]),
      ),
    );
  }
  return out;
}
