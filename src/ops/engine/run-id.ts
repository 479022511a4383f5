/**
 * Run ids: `r-20261127-001530-ab12` — UTC date and time of the start, then four random hex
 * digits. They sort by start time as plain strings (so `ls` and `shipshape runs` agree),
 * read aloud over a call, and are safe as file names.
 */
import { randomBytes } from 'node:crypto';
import { ShipError } from '../../errors.ts';

const RUN_ID_PATTERN = /^r-\d{8}-\d{6}-[0-9a-f]{4}$/;

export function newRunId(now: Date): string {
  const iso = now.toISOString();
  const date = iso.slice(0, 10).replaceAll('-', '');
  const time = iso.slice(11, 19).replaceAll(':', '');
  return `r-${date}-${time}-${randomBytes(2).toString('hex')}`;
}

export function isRunId(value: string): boolean {
  return RUN_ID_PATTERN.test(value);
}

/** Run ids become file names, so anything else is refused before it reaches a path. */
export function checkRunId(value: string): string {
  if (!isRunId(value)) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `"${value.slice(0, 80)}" is not a run id (they look like r-20261127-001530-ab12). Run \`shipshape runs\` to list runs.`,
    );
  }
  return value;
}
