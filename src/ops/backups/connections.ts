/**
 * Taking a PostgreSQL database away from its clients so it can be renamed.
 *
 * The runbook only terminates connections, and the application's pools (and pg-boss's)
 * reconnect within milliseconds, so a rename that waits for the database to be free can be
 * raced indefinitely. So before terminating, new connections are refused with
 * `ALTER DATABASE … ALLOW_CONNECTIONS false` (which applies to superusers too: nothing of
 * ours needs to connect to it while it is renamed — that is done from a connection to
 * another database), and allowed again under the new name. Renaming needs the database's
 * owner with CREATEDB, or a superuser.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { ShipError, describeError } from '../../errors.ts';
import { describeConnection, terminateOtherBackends, type Backend } from '../../db/backends.ts';
import { quoteIdent } from '../../db/pool.ts';

export type { Backend } from '../../db/backends.ts';

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

/** Terminates every other session on `name`, waiting (up to 5 s each) until they are gone; returns those it ended. */
async function terminateOthers(client: pg.Client, name: string): Promise<Backend[]> {
  const ended = await terminateOtherBackends(client, { database: name, waitMs: 5_000 });
  const refused = ended.find((backend) => backend.outcome === 'not-permitted');
  if (refused) {
    throw new ShipError(
      'SHIP_ERR_STEP_FAILED',
      `Could not end ${describeConnection(refused)} on database ${name}: ${refused.error ?? 'not permitted'}. Taking the database away needs a superuser, or a role with pg_signal_backend.`,
    );
  }
  return ended.filter((backend) => backend.outcome === 'terminated').map(({ outcome: _outcome, error: _error, ...backend }) => backend);
}

/**
 * Refuses new connections to `from`, terminates its sessions and renames it to `to`, which then
 * accepts connections again (so does `from` if the rename fails). Retries while a session that
 * was mid-connect when the door closed is still there. Returns who was disconnected.
 */
export async function renameExclusively(client: pg.Client, from: string, to: string, signal?: AbortSignal): Promise<Backend[]> {
  const disconnected: Backend[] = [];
  await client.query(`ALTER DATABASE ${quoteIdent(from)} WITH ALLOW_CONNECTIONS false`);
  let current = from;
  try {
    for (let attempt = 1; ; attempt += 1) {
      signal?.throwIfAborted();
      disconnected.push(...(await terminateOthers(client, from)));
      try {
        await client.query(`ALTER DATABASE ${quoteIdent(from)} RENAME TO ${quoteIdent(to)}`);
        current = to;
        return disconnected;
      } catch (error) {
        // 55006 object_in_use: a session was still on its way out (or in).
        if ((error as { code?: string }).code !== '55006' || attempt >= 50) {
          throw new ShipError(
            'SHIP_ERR_STEP_FAILED',
            `Could not rename database ${from} to ${to}: ${describeError(error)}. Renaming needs the database owner with CREATEDB, or a superuser.`,
            { cause: error },
          );
        }
        await sleep(100);
      }
    }
  } finally {
    await client.query(`ALTER DATABASE ${quoteIdent(current)} WITH ALLOW_CONNECTIONS true`).catch(() => undefined);
  }
}
