/**
 * Keeping everyone but the restore out of a PostgreSQL database while it is replaced.
 *
 * The runbook only terminates connections, and the application's pools reconnect within
 * milliseconds — into a database being dropped and recreated table by table. The usual
 * fix, `ALTER DATABASE … ALLOW_CONNECTIONS false`, locks out pg_restore too (it applies to
 * superusers), and `CONNECTION LIMIT 0` does not stop superusers. So the database is
 * *parked*: other sessions are terminated and it is renamed to a name only this run knows
 * (`<name>__restoring_<run>`). Clients connecting by the usual name are refused ("database
 * does not exist") until the restore renames it back. Renaming needs the database's owner
 * with CREATEDB, or a superuser, and is done from a connection to another database.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { ShipError } from '../../errors.ts';
import { quoteIdent } from '../../db/pool.ts';

export interface Backend {
  readonly pid: number;
  readonly user: string | null;
  readonly application: string | null;
  readonly client: string | null;
}

/** The name a run parks a database under; deterministic, so resume and rollback find it. */
export function parkedName(databaseName: string, runId: string): string {
  const suffix = `__restoring_${runId.replace(/^r-/, '').replaceAll('-', '_')}`;
  return `${databaseName.slice(0, 63 - suffix.length)}${suffix}`;
}

export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>, applicationName = 'shipshape-restore'): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function databaseExists(client: pg.Client, name: string): Promise<boolean> {
  const { rows } = await client.query<{ found: boolean }>('SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1::text) AS found', [name]);
  return rows[0]?.found === true;
}

/** Terminates every other session on `name`, waiting (up to 5 s each) until they are gone. */
export async function terminateOthers(client: pg.Client, name: string): Promise<Backend[]> {
  // pg_terminate_backend sits in the select list, not in WHERE: the planner may evaluate WHERE
  // conditions in any order, and there it could run for sessions of other databases too.
  const { rows } = await client.query<{ pid: number; usename: string | null; application_name: string | null; client_addr: string | null; terminated: boolean }>(
    `SELECT pid, usename, application_name, client_addr::text AS client_addr, pg_terminate_backend(pid, 5000) AS terminated
       FROM pg_catalog.pg_stat_activity
      WHERE datname = $1::text AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
    [name],
  );
  return rows.filter((row) => row.terminated).map((row) => ({ pid: row.pid, user: row.usename, application: row.application_name || null, client: row.client_addr }));
}

/**
 * Terminates the sessions on `from` and renames it to `to`, retrying while clients race back
 * in between. Returns who was disconnected.
 */
export async function renameExclusively(client: pg.Client, from: string, to: string, signal?: AbortSignal): Promise<Backend[]> {
  const disconnected: Backend[] = [];
  for (let attempt = 1; ; attempt += 1) {
    signal?.throwIfAborted();
    disconnected.push(...(await terminateOthers(client, from)));
    try {
      await client.query(`ALTER DATABASE ${quoteIdent(from)} RENAME TO ${quoteIdent(to)}`);
      return disconnected;
    } catch (error) {
      // 55006 object_in_use: someone reconnected between the terminate and the rename.
      if ((error as { code?: string }).code !== '55006' || attempt >= 50) {
        throw new ShipError(
          'SHIP_ERR_STEP_FAILED',
          `Could not rename database ${from} to ${to}: ${(error as Error).message}. Renaming needs the database owner with CREATEDB, or a superuser; ` +
            'if clients keep reconnecting, stop the application servers first.',
          { cause: error },
        );
      }
      await sleep(100);
    }
  }
}

export type Whereabouts = 'open' | 'parked' | 'missing';

/** Whether the database is under its own name, parked, or absent; both at once is refused as ambiguous. */
export async function whereabouts(client: pg.Client, name: string, parked: string): Promise<Whereabouts> {
  const [open, isParked] = [await databaseExists(client, name), await databaseExists(client, parked)];
  if (open && isParked) {
    throw new ShipError(
      'SHIP_ERR_ROLLBACK_FAILED',
      `Both ${name} and ${parked} exist, so it is unclear which holds the data. Inspect both, drop the wrong one, then retry.`,
    );
  }
  return open ? 'open' : isParked ? 'parked' : 'missing';
}
