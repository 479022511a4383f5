/**
 * The SQL Shipshape really sends, read back from PostgreSQL. A domain function is run
 * once on a connection of its own, then `pg_stat_activity.query` shows that backend's
 * last statement exactly as it arrived (`$1` placeholders included). The pgbench
 * ceiling is built from this text, so it cannot drift from the code it is measured
 * against; only the parameters are filled in, by `bindForPgbench`.
 */
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { ShipError } from '../../src/errors.ts';

export async function captureSql(databaseUrl: string, action: (client: pg.Client) => Promise<unknown>): Promise<string> {
  const applicationName = `shipshape-bench-capture-${randomBytes(4).toString('hex')}`;
  const subject = new pg.Client({ connectionString: databaseUrl, application_name: applicationName });
  const observer = new pg.Client({ connectionString: databaseUrl, application_name: 'shipshape-bench' });
  await subject.connect();
  await observer.connect();
  try {
    await action(subject);
    const { rows } = await observer.query<{ query: string; limit: string }>(
      `SELECT query, (SELECT setting FROM pg_settings WHERE name = 'track_activity_query_size') AS limit FROM pg_stat_activity WHERE application_name = $1::text`,
      [applicationName],
    );
    const row = rows[0];
    if (!row) throw new ShipError('SHIP_ERR_INTERNAL', 'pg_stat_activity did not show the capture connection; is track_activities off?');
    if (Buffer.byteLength(row.query) >= Number.parseInt(row.limit, 10) - 1) {
      throw new ShipError(
        'SHIP_ERR_PREREQUISITE_FAILED',
        `The captured statement was cut at track_activity_query_size (${row.limit}). Raise it in postgresql.conf to benchmark this statement.`,
      );
    }
    return row.query.trim();
  } finally {
    await subject.end();
    await observer.end();
  }
}

/**
 * Replaces `$n` with pgbench-side SQL (which may use `:variables`). Every placeholder must
 * have a value and every value a placeholder, so a changed statement fails loudly here
 * instead of benchmarking something else.
 */
export function bindForPgbench(statement: string, label: string, values: Record<number, string>): string {
  const used = new Set<number>();
  const bound = statement.replace(/\$(\d+)/g, (_match, digits: string) => {
    const position = Number(digits);
    const value = values[position];
    if (value === undefined)
      throw new ShipError(
        'SHIP_ERR_INTERNAL',
        `${label}'s SQL now has a parameter $${position} the benchmark does not know. Update the bindings in bench/api.ts.`,
      );
    used.add(position);
    return value;
  });
  const unused = Object.keys(values).filter((position) => !used.has(Number(position)));
  if (unused.length > 0)
    throw new ShipError(
      'SHIP_ERR_INTERNAL',
      `${label}'s SQL no longer uses parameter(s) ${unused.map((n) => `$${n}`).join(', ')}. Update the bindings in bench/api.ts.`,
    );
  return bound.endsWith(';') ? bound : `${bound};`;
}
