/**
 * Rotating the application's database role password (runbook: Monthly Maintenance, "Rotate
 * credentials"; opt-in with MAINTENANCE_ROTATE_DATABASE_PASSWORD).
 *
 *   1. A new random password; the new connection string goes to `<file>.new` (mode 0600).
 *   2. `ALTER ROLE <current_user> PASSWORD '<SCRAM verifier>'`, built server-side with
 *      format('%I … %L') — the role name and the literal are quoted by PostgreSQL, never by
 *      string concatenation. The verifier is computed here (RFC 5802/7677, as libpq's
 *      PQencryptPasswordConn does), so the plaintext password never reaches the server's
 *      statement log or pg_stat_statements.
 *   3. The new connection string is verified with a fresh connection. If it does not work,
 *      the old password is put back (over the connection still open with it) and `.new` is
 *      removed: the old credential stays in force until the new one is proven.
 *   4. Only then: the file's old content is kept as `<file>.previous` and `.new` replaces it.
 *
 * PostgreSQL keeps sessions that are already open, so running instances carry on with their
 * connections; they need the new DATABASE_URL (from the file) before they open new ones —
 * the maintenance window is when they are restarted.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { chmod, copyFile, open, rename, rm, stat } from 'node:fs/promises';
import pg from 'pg';
import { describeError, ShipError } from '../../errors.ts';
import { redactUrl } from '../../redact.ts';

const SCRAM_ITERATIONS = 4096;

/** PostgreSQL's stored form of a SCRAM-SHA-256 password: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. */
export function scramSha256Verifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

export interface PasswordRotationResult {
  readonly role: string;
  /** Where the new connection string is now. */
  readonly urlFile: string;
  /** The old connection string, kept; null when the file did not exist before. */
  readonly previousFile: string | null;
  /** The new connection string with the password hidden, for messages. */
  readonly shownUrl: string;
}

export async function rotateDatabasePassword(options: {
  readonly currentUrl: string;
  readonly urlFile: string;
  readonly connectTimeoutMs?: number;
}): Promise<PasswordRotationResult> {
  const current = new URL(options.currentUrl);
  if (current.username === '' || current.password === '') {
    throw new ShipError(
      'SHIP_ERR_CONFIG',
      "DATABASE_URL has no user and password, so there is no password of the application role to rotate. Unset MAINTENANCE_ROTATE_DATABASE_PASSWORD, or put the role's credentials in DATABASE_URL.",
    );
  }
  const oldPassword = decodeURIComponent(current.password);
  const newPassword = randomBytes(32).toString('base64url');
  const next = new URL(options.currentUrl);
  next.password = encodeURIComponent(newPassword);
  const newUrl = next.toString();
  const pendingFile = `${options.urlFile}.new`;
  await writePrivate(pendingFile, `${newUrl}\n`);

  const client = new pg.Client({
    connectionString: options.currentUrl,
    application_name: 'shipshape-rotate',
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
  });
  client.on('error', () => undefined);
  let role = decodeURIComponent(current.username);
  try {
    await client.connect();
    role = await setPassword(client, scramSha256Verifier(newPassword));
    try {
      await verifyConnection(newUrl, options.connectTimeoutMs);
    } catch (error) {
      await setPassword(client, scramSha256Verifier(oldPassword));
      throw new ShipError(
        'SHIP_ERR_DATABASE_UNAVAILABLE',
        `Connecting with the new password for role ${role} failed (${describeError(error)}), so the old password was put back and nothing changed. Check pg_hba.conf accepts scram-sha-256 for this role, then run the rotation again.`,
      );
    }
  } catch (error) {
    await rm(pendingFile, { force: true });
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }

  const previousFile = `${options.urlFile}.previous`;
  const hadFile = await stat(options.urlFile).then(
    () => true,
    () => false,
  );
  if (hadFile) {
    await copyFile(options.urlFile, previousFile);
    await chmod(previousFile, 0o600);
  }
  await rename(pendingFile, options.urlFile);
  return { role, urlFile: options.urlFile, previousFile: hadFile ? previousFile : null, shownUrl: redactUrl(newUrl) };
}

/** The role is whoever DATABASE_URL logs in as: `current_user`, quoted by format('%I'). */
async function setPassword(client: pg.Client, verifier: string): Promise<string> {
  const { rows } = await client.query<{ role: string; sql: string }>(
    "SELECT current_user AS role, format('ALTER ROLE %I PASSWORD %L', current_user, $1::text) AS sql",
    [verifier],
  );
  const row = rows[0];
  if (!row) throw new ShipError('SHIP_ERR_INTERNAL', 'PostgreSQL did not build the ALTER ROLE statement.');
  await client.query(row.sql);
  return row.role;
}

async function verifyConnection(url: string, timeoutMs = 10_000): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: 'shipshape-rotate-verify', connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function writePrivate(file: string, content: string): Promise<void> {
  const handle = await open(file, 'w', 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
