/**
 * The environment that points pg_dump and pg_restore at a database.
 *
 * The password travels in PGPASSWORD, never on the command line: command lines are visible
 * to every user of the machine (`ps`, /proc/<pid>/cmdline) and land in shell histories and
 * run journals. Every inherited PG* variable is dropped first, so an operator's stray
 * PGSERVICE or PGOPTIONS cannot send the dump somewhere other than DATABASE_URL.
 */
import { ShipError } from '../../errors.ts';

/** libpq connection parameters that may appear in a URL's query, and their environment names. */
const QUERY_PARAMETERS: Readonly<Record<string, string>> = {
  host: 'PGHOST',
  hostaddr: 'PGHOSTADDR',
  port: 'PGPORT',
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslcrl: 'PGSSLCRL',
  channel_binding: 'PGCHANNELBINDING',
  gssencmode: 'PGGSSENCMODE',
  application_name: 'PGAPPNAME',
  options: 'PGOPTIONS',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  target_session_attrs: 'PGTARGETSESSIONATTRS',
  passfile: 'PGPASSFILE',
};

/**
 * `base` without its PG* variables, plus the ones that reach `url`'s database. `base` is
 * usually process.env (PATH, HOME, LANG are needed by the tools).
 */
export function libpqEnvironment(url: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ShipError('SHIP_ERR_CONFIG', 'The database URL is not a valid URL. Use postgres://user:password@host:5432/dbname.');
  }
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(base)) if (!name.startsWith('PG')) env[name] = value;
  if (parsed.hostname !== '') env.PGHOST = decodeURIComponent(parsed.hostname.replace(/^\[(.*)\]$/, '$1'));
  if (parsed.port !== '') env.PGPORT = parsed.port;
  if (parsed.username !== '') env.PGUSER = decodeURIComponent(parsed.username);
  if (parsed.password !== '') env.PGPASSWORD = decodeURIComponent(parsed.password);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database !== '') env.PGDATABASE = database;
  for (const [name, value] of parsed.searchParams) {
    const variable = QUERY_PARAMETERS[name];
    if (variable !== undefined) env[variable] = value;
    else if (name === 'dbname') env.PGDATABASE = value;
    else if (name === 'user') env.PGUSER = value;
    else if (name === 'password') env.PGPASSWORD = value;
  }
  // Never prompt: a tool waiting on a terminal for a password would hang an unattended run.
  env.PGCONNECT_TIMEOUT ??= '10';
  return env;
}
