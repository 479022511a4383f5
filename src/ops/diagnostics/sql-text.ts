/**
 * Just enough of PostgreSQL's lexical rules to reason about a statement an operator typed
 * (`shipshape db explain`) or one the server reports (pg_stat_statements, pg_stat_activity)
 * without being fooled by semicolons or keywords inside strings and comments:
 * '…' (with '' escapes), E'…' (backslash escapes), "…" identifiers, $tag$…$tag$ bodies,
 * -- line comments and nested block comments.
 *
 * It never decides what is safe to run on its own: `db explain` also sends the statement with
 * the extended protocol, which the server refuses to run as more than one statement.
 */

export type TokenKind = 'word' | 'string' | 'identifier' | 'dollar' | 'semicolon' | 'other';

export interface Token {
  readonly kind: TokenKind;
  /** The token's text as written; words are lower-cased. */
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

/** Splits SQL text into tokens, skipping whitespace and comments. Unterminated quotes run to the end. */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i] ?? '';
    const next = sql[i + 1] ?? '';
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '-' && next === '-') {
      while (i < n && sql[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && next === '*') {
      let depth = 0;
      while (i < n) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
          if (depth === 0) break;
        } else i++;
      }
      continue;
    }
    const start = i;
    if ((c === 'e' || c === 'E') && next === "'") {
      i = afterQuoted(sql, i + 1, { backslashEscapes: true });
      tokens.push({ kind: 'string', text: sql.slice(start, i), start, end: i });
      continue;
    }
    if (c === "'" || c === '"') {
      i = afterQuoted(sql, i);
      tokens.push({ kind: c === "'" ? 'string' : 'identifier', text: sql.slice(start, i), start, end: i });
      continue;
    }
    if (c === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        i = close === -1 ? n : close + tag[0].length;
        tokens.push({ kind: 'dollar', text: sql.slice(start, i), start, end: i });
        continue;
      }
    }
    if (c === ';') {
      i++;
      tokens.push({ kind: 'semicolon', text: ';', start, end: i });
      continue;
    }
    if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      while (i < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[i] ?? '')) i++;
      tokens.push({ kind: 'word', text: sql.slice(start, i).toLowerCase(), start, end: i });
      continue;
    }
    i++;
    tokens.push({ kind: 'other', text: c, start, end: i });
  }
  return tokens;
}

/**
 * Where the quoted text opening at `open` ends (just past its closing quote, or the end of the
 * text). A doubled quote is an escaped one; in E'…' so is anything after a backslash.
 */
function afterQuoted(sql: string, open: number, options: { backslashEscapes?: boolean } = {}): number {
  const quote = sql[open];
  let i = open + 1;
  while (i < sql.length) {
    if (options.backslashEscapes && sql[i] === '\\') i += 2;
    else if (sql[i] === quote && sql[i + 1] === quote) i += 2;
    else if (sql[i] === quote) return i + 1;
    else i++;
  }
  return sql.length;
}

/** The statements in `sql`, each trimmed and without its semicolon; empty ones are dropped. */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let from = 0;
  let tokensSince = 0;
  for (const token of tokenize(sql)) {
    if (token.kind === 'semicolon') {
      if (tokensSince > 0) statements.push(sql.slice(from, token.start).trim());
      from = token.end;
      tokensSince = 0;
    } else tokensSince++;
  }
  if (tokensSince > 0) statements.push(sql.slice(from).trim());
  return statements;
}

/** The first words of a statement, lower-case: `create index concurrently`. */
export function leadingWords(sql: string, count: number): string[] {
  const words: string[] = [];
  for (const token of tokenize(sql)) {
    if (token.kind === 'other' && token.text === '(' && words.length === 0) continue;
    if (token.kind !== 'word') break;
    words.push(token.text);
    if (words.length >= count) break;
  }
  return words;
}

const WRITE_WORDS = new Set(['insert', 'update', 'delete', 'merge', 'truncate', 'copy', 'lock', 'into']);

/**
 * Whether a statement may change data: it names INSERT/UPDATE/DELETE/MERGE anywhere outside
 * strings and comments (a data-modifying WITH, SELECT … FOR UPDATE), or SELECT … INTO. A
 * false positive only costs a read-write transaction that is rolled back anyway.
 */
export function mayWrite(sql: string): boolean {
  return tokenize(sql).some((token) => token.kind === 'word' && WRITE_WORDS.has(token.text));
}

/**
 * The text with every string literal and dollar-quoted body replaced by `'…'`, so a
 * statement can be shown without the values (emails, tokens, passwords) it carried.
 */
export function maskLiterals(sql: string): string {
  let out = '';
  let from = 0;
  for (const token of tokenize(sql)) {
    if (token.kind !== 'string' && token.kind !== 'dollar') continue;
    out += `${sql.slice(from, token.start)}'…'`;
    from = token.end;
  }
  return out + sql.slice(from);
}

/** One line of at most `max` characters, whitespace collapsed, for tables. */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}
