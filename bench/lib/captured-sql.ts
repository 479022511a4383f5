/**
 * The SQL Shipshape really sends. A domain function is run once on a connection of its own;
 * the text it handed the driver is recorded, and PostgreSQL must agree:
 * `pg_stat_activity.query` (that backend's last statement as it arrived, `$1` placeholders
 * included, cut at track_activity_query_size) has to be the start of it. The pgbench ceiling is
 * built from this text, so it cannot drift from the code it is measured against; only the
 * parameters are filled in, by `bindForPgbench`.
 */
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { ShipError } from '../../src/errors.ts';

export async function captureSql(databaseUrl: string, action: (client: pg.Client) => Promise<unknown>): Promise<string> {
  const applicationName = `shipshape-bench-capture-${randomBytes(4).toString('hex')}`;
  const subject = new pg.Client({ connectionString: databaseUrl, application_name: applicationName });
  const observer = new pg.Client({ connectionString: databaseUrl, application_name: 'shipshape-bench' });
  const sent: string[] = [];
  const query = subject.query;
  const recording = (...args: unknown[]) => {
    const [first] = args;
    sent.push(typeof first === 'string' ? first : typeof first === 'object' && first !== null && 'text' in first ? String(first.text) : '');
    return Reflect.apply(query, subject, args);
  };
  subject.query = recording as unknown as typeof subject.query;
  await subject.connect();
  await observer.connect();
  try {
    await action(subject);
    const { rows } = await observer.query<{ query: string }>('SELECT query FROM pg_stat_activity WHERE application_name = $1::text', [applicationName]);
    const arrived = rows[0]?.query.trim();
    if (arrived === undefined) throw new ShipError('SHIP_ERR_INTERNAL', 'pg_stat_activity did not show the capture connection; is track_activities off?');
    const statement = sent.at(-1)?.trim() ?? '';
    if (arrived === '' || !statement.startsWith(arrived)) {
      throw new ShipError(
        'SHIP_ERR_INTERNAL',
        `The statement PostgreSQL last received (${JSON.stringify(arrived.slice(0, 120))}…) is not the one the domain function sent last; capture cannot tell which SQL to benchmark.`,
      );
    }
    return statement;
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
