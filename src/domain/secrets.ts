/**
 * Passwords and tokens. Passwords are hashed with argon2id; bearer and reset tokens are
 * 32 random bytes handed out once and stored only as their sha256, which is enough for
 * values with 256 bits of entropy and lets the database find them by index.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';

// argon2id (the library's default algorithm) with OWASP's baseline cost: 19 MiB, 2 passes, 1 lane.
const argonOptions = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, argonOptions);
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

let dummyHash: Promise<string> | undefined;
/** Spends the same time as a real verification, so unknown accounts cannot be told apart by timing. */
export async function verifyAgainstNothing(password: string): Promise<false> {
  dummyHash ??= hashPassword('shipshape-timing-equaliser');
  await verifyPassword(await dummyHash, password);
  return false;
}

export interface IssuedToken {
  /** Given to the client once; never stored. */
  readonly token: string;
  readonly hash: Buffer;
}

export function issueToken(): IssuedToken {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Compares two secrets in constant time (hashing first makes lengths equal). */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(hashToken(a), hashToken(b));
}
