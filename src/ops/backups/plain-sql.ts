/**
 * Plain-SQL dumps (what PGlite's pg_dump writes): checking them and replaying them.
 *
 * A plain dump starts with `SET` lines for the settings of the server that wrote it. PGlite
 * is PostgreSQL 18 and writes `SET transaction_timeout = 0;`, which PostgreSQL 15 and 16
 * reject ("unrecognized configuration parameter"), aborting the whole restore. So before
 * replaying, the header's SET lines are checked against the target's `pg_settings` and the
 * ones it does not know are left out (and reported). Only the header is touched: the same
 * words inside a function body are the function's own business.
 */
import { StringDecoder } from 'node:string_decoder';
import type pg from 'pg';
import { ShipError, describeError } from '../../errors.ts';
import type { RowReader } from './database-facts.ts';

const HEADER_SET = /^SET\s+([A-Za-z_][A-Za-z0-9_.]*)\s*=.*;\s*$/;
const FIRST_OBJECT = /^(-- Name: |CREATE |ALTER |DROP |COPY |INSERT )/;

/** The names set by the header's SET lines. */
export function headerSettings(sql: string): string[] {
  const names: string[] = [];
  for (const line of sql.split('\n', 400)) {
    if (FIRST_OBJECT.test(line)) break;
    const match = HEADER_SET.exec(line);
    if (match?.[1] !== undefined) names.push(match[1]);
  }
  return names;
}

/** `sql` without the header SET lines for `drop`, each replaced by a comment saying why. */
export function withoutSettings(sql: string, drop: ReadonlySet<string>): string {
  if (drop.size === 0) return sql;
  const lines = sql.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] ?? '';
    if (FIRST_OBJECT.test(line)) break;
    const name = HEADER_SET.exec(line)?.[1];
    if (name !== undefined && drop.has(name)) lines[i] = `-- shipshape: left out \`${line.trim()}\`: the target server does not know ${name}`;
  }
  return lines.join('\n');
}

/** The header settings the target server does not know. */
export async function unknownSettings(read: RowReader, sql: string): Promise<string[]> {
  const names = headerSettings(sql);
  if (names.length === 0) return [];
  const known = new Set((await read<{ name: string }>('SELECT name FROM pg_catalog.pg_settings WHERE name = ANY($1::text[])', [names])).map((row) => row.name));
  // Dotted names are custom settings, which any server accepts.
  return names.filter((name) => !known.has(name) && !name.includes('.'));
}

/**
 * Runs a plain dump on a PostgreSQL connection in one simple-protocol query: the server
 * runs a multi-statement query as one implicit transaction, so a failure part-way leaves
 * the database exactly as it was.
 */
export async function replayPlainSql(client: pg.Client, read: RowReader, sql: string): Promise<{ leftOutSettings: string[] }> {
  const unknown = await unknownSettings(read, sql);
  try {
    await client.query(withoutSettings(sql, new Set(unknown)));
  } catch (error) {
    throw new ShipError('SHIP_ERR_STEP_FAILED', `Replaying the SQL dump failed, so none of it was applied: ${describeError(error)}.`, { cause: error });
  }
  return { leftOutSettings: unknown };
}

export interface PlainDumpShape {
  readonly complete: boolean;
  /** Tables the script creates, `schema.name` without quotes. */
  readonly tables: ReadonlySet<string>;
}

const HEADER_MARK = '-- PostgreSQL database dump';
const FOOTER_MARK = '-- PostgreSQL database dump complete';

/**
 * Reads a plain dump's shape as it streams past: whether it has pg_dump's header and its
 * closing line (a cut-off dump lacks it), and which tables it creates.
 */
export class PlainDumpScanner {
  #carry = '';
  #head = '';
  #tail = '';
  readonly #tables = new Set<string>();

  readonly #decoder = new StringDecoder('utf8');

  push(chunk: Buffer): void {
    this.#take(this.#decoder.write(chunk));
  }

  finish(): PlainDumpShape {
    this.#take(this.#decoder.end());
    if (this.#carry !== '') this.#line(this.#carry);
    return { complete: this.#head.includes(HEADER_MARK) && this.#tail.includes(FOOTER_MARK), tables: this.#tables };
  }

  #take(decoded: string): void {
    if (this.#head.length < 200) this.#head = (this.#head + decoded).slice(0, 200);
    this.#tail = (this.#tail + decoded).slice(-400);
    const lines = (this.#carry + decoded).split('\n');
    this.#carry = lines.pop() ?? '';
    for (const line of lines) this.#line(line);
  }

  #line(line: string): void {
    const match = /^CREATE (?:UNLOGGED )?TABLE (.+) \($/.exec(line);
    const name = match?.[1] === undefined ? undefined : unquoteQualified(match[1]);
    if (name !== undefined) this.#tables.add(name);
  }
}

/** `public.users` → `public.users`; `"Odd"."Mixed ""Case"""` → `Odd.Mixed "Case"`; anything else → undefined. */
export function unquoteQualified(text: string): string | undefined {
  const parts: string[] = [];
  let at = 0;
  while (at < text.length) {
    if (text[at] === '"') {
      let part = '';
      at += 1;
      for (;;) {
        const quote = text.indexOf('"', at);
        if (quote === -1) return undefined;
        part += text.slice(at, quote);
        at = quote + 1;
        if (text[at] !== '"') break;
        part += '"';
        at += 1;
      }
      parts.push(part);
    } else {
      const match = /^[^".\s]+/.exec(text.slice(at));
      if (match === null) return undefined;
      parts.push(match[0]);
      at += match[0].length;
    }
    if (at === text.length) break;
    if (text[at] !== '.') return undefined;
    at += 1;
  }
  return parts.length === 0 ? undefined : parts.join('.');
}
