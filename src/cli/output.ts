/**
 * Command output: results on stdout (human text, or one JSON document with --json),
 * everything else on stderr.
 */
import { isShipError } from '../errors.ts';
import { exitWith } from './exit.ts';

export interface OutputOptions {
  readonly json: boolean;
}

export function emit<T>(options: OutputOptions, data: T, human: (data: T) => string): void {
  process.stdout.write(options.json ? `${JSON.stringify(data, null, 2)}\n` : `${human(data)}\n`);
}

/** A plain fixed-width table; wide enough for a terminal, simple enough to grep. */
export function table(headers: string[], rows: Array<Array<string | number | boolean | null | undefined>>): string {
  const cells = rows.map((row) => row.map((cell) => (cell === null || cell === undefined ? '-' : String(cell))));
  const widths = headers.map((header, i) => Math.max(header.length, ...cells.map((row) => row[i]?.length ?? 0)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function colourFor(stream: NodeJS.WriteStream): boolean {
  const noColor = process.env.NO_COLOR;
  return stream.isTTY === true && (noColor === undefined || noColor === '');
}

/** With --json, a ShipError becomes a JSON document on stdout (and the usual line on stderr). */
export async function jsonErrors(json: boolean, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    if (!json || !isShipError(error)) throw error;
    process.stdout.write(`${JSON.stringify({ error: { code: error.code, message: error.message }, exitCode: error.exitCode }, null, 2)}\n`);
    process.stderr.write(`error[${error.code}]: ${error.message}\n`);
    exitWith(error.exitCode);
  }
}
