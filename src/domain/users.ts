/**
 * Accounts. Emails are unique regardless of case; they are stored as typed, trimmed.
 */
import { ShipError } from '../errors.ts';
import type { Queryable } from '../db/pool.ts';
import { hashPassword } from './secrets.ts';

export interface User {
  readonly id: string;
  readonly email: string;
  readonly displayName: string | null;
  readonly createdAt: Date;
}

interface UserRow {
  id: string;
  email: string;
  display_name: string | null;
  created_at: Date;
  password_hash: string;
}

const toUser = (row: UserRow): User => ({ id: row.id, email: row.email, displayName: row.display_name, createdAt: row.created_at });

export async function createUser(db: Queryable, input: { email: string; password: string; displayName?: string | undefined }): Promise<User> {
  const passwordHash = await hashPassword(input.password);
  try {
    const { rows } = await db.query<UserRow>(
      `INSERT INTO users (email, password_hash, display_name) VALUES ($1::text, $2::text, $3::text)
       RETURNING id, email, display_name, created_at, password_hash`,
      [input.email.trim(), passwordHash, input.displayName ?? null],
    );
    return toUser(rows[0] as UserRow);
  } catch (error) {
    if ((error as { code?: string }).code === '23505') {
      throw new ShipError('SHIP_ERR_EMAIL_TAKEN', 'An account with this email already exists. Log in, or reset the password.');
    }
    throw error;
  }
}

/** The user and their password hash, for login. */
export async function findUserForLogin(db: Queryable, email: string): Promise<{ user: User; passwordHash: string } | undefined> {
  const { rows } = await db.query<UserRow>('SELECT id, email, display_name, created_at, password_hash FROM users WHERE lower(email) = lower($1::text)', [
    email.trim(),
  ]);
  const row = rows[0];
  return row && { user: toUser(row), passwordHash: row.password_hash };
}

export async function findUserByEmail(db: Queryable, email: string): Promise<User | undefined> {
  return (await findUserForLogin(db, email))?.user;
}

export async function setPassword(db: Queryable, userId: string, password: string): Promise<void> {
  const passwordHash = await hashPassword(password);
  await db.query('UPDATE users SET password_hash = $2::text, updated_at = now() WHERE id = $1::uuid', [userId, passwordHash]);
}
