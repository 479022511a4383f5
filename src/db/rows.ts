/** Reading query results. No driver import here: domain modules use it without loading pg. */
/**
 * The row of a statement that always returns one (INSERT … RETURNING, an aggregate, an
 * UPDATE of a row known to exist). None is a bug, and says so instead of failing later on
 * `undefined`.
 */
export function firstRow<T>(rows: readonly T[]): T {
  const row = rows[0];
  if (row === undefined) throw new Error('A statement that always returns a row returned none. This is a bug in Shipshape; please report it.');
  return row;
}
