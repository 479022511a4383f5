/**
 * CSV as RFC 4180 writes it, with PostgreSQL's COPY convention for NULL: a NULL is an empty
 * unquoted field and an empty string is `""`, so the two stay distinguishable.
 */
import { ShipError } from '../errors.ts';

/** One field: quoted when it holds a comma, quote, CR/LF, leading/trailing space, or is empty. */
export function csvField(value: string | null): string {
  if (value === null) return '';
  if (value === '' || /[",\r\n]|^\s|\s$/.test(value)) return `"${value.replaceAll('"', '""')}"`;
  return value;
}

/** A header line and one line per row, each ended by CRLF as RFC 4180 says. */
export function toCsv(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | null>>): string {
  return [header, ...rows].map((row) => `${row.map(csvField).join(',')}\r\n`).join('');
}

/** Parses CSV written by `toCsv` back into records (NULL fields come back as null). */
export function parseCsv(text: string): Array<Array<string | null>> {
  const records: Array<Array<string | null>> = [];
  let record: Array<string | null> = [];
  let i = 0;
  while (i < text.length) {
    let value: string | null;
    if (text[i] === '"') {
      value = '';
      i += 1;
      for (;;) {
        const quote = text.indexOf('"', i);
        if (quote === -1) throw new ShipError('SHIP_ERR_VALIDATION', 'CSV ends inside a quoted field; the file is truncated.');
        value += text.slice(i, quote);
        if (text[quote + 1] === '"') {
          value += '"';
          i = quote + 2;
        } else {
          i = quote + 1;
          break;
        }
      }
    } else {
      let end = i;
      while (end < text.length && text[end] !== ',' && text[end] !== '\r' && text[end] !== '\n') end += 1;
      value = end === i ? null : text.slice(i, end);
      i = end;
    }
    record.push(value);
    if (text[i] === ',') {
      i += 1;
      continue;
    }
    if (text.startsWith('\r\n', i)) i += 2;
    else if (i < text.length && text[i] !== '\r' && text[i] !== '\n')
      throw new ShipError('SHIP_ERR_VALIDATION', `CSV has a stray character after a quoted field at offset ${i}.`);
    else i += 1;
    records.push(record);
    record = [];
  }
  return records;
}
