/**
 * Markers and colours for run output. Colour only on a terminal and never with NO_COLOR
 * set (the CLI decides); the markers carry the meaning either way.
 */
import type { StepStatus } from '../engine/run-record.ts';

export interface Style {
  readonly color: boolean;
}

const codes = { green: 32, red: 31, yellow: 33, cyan: 36, dim: 2, bold: 1 } as const;
export type Paint = keyof typeof codes;

export function paint(style: Style, colour: Paint, text: string): string {
  return style.color ? `\x1b[${codes[colour]}m${text}\x1b[0m` : text;
}

export const markers: Record<StepStatus, string> = {
  done: '✓',
  failed: '✗',
  undone: '↺',
  running: '▸',
  pending: '·',
  skipped: '–',
};

const colours: Record<StepStatus, Paint> = {
  done: 'green',
  failed: 'red',
  undone: 'yellow',
  running: 'cyan',
  pending: 'dim',
  skipped: 'dim',
};

export function marker(style: Style, status: StepStatus): string {
  return paint(style, colours[status], markers[status]);
}

/** A prerequisite's or verification's marker: ✓ passed, ✗ failed, ? could not be checked. */
export function checkMarker(style: Style, check: { readonly ok: boolean; readonly unverified?: boolean | undefined }): string {
  if (check.unverified) return paint(style, 'yellow', '?');
  return marker(style, check.ok ? 'done' : 'failed');
}

/** A check's line after its name: the detail, prefixed "unverified:" when it could not be made. */
export function checkText(check: {
  readonly unverified?: boolean | undefined;
  readonly safe?: string | undefined;
  readonly detail: string;
  readonly remedy?: string | undefined;
}): string {
  const detail = check.unverified ? `unverified: ${check.detail}${check.safe ? ` (safe: ${check.safe})` : ''}` : check.detail;
  return `${detail}${check.remedy ? ` — ${check.remedy}` : ''}`;
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1_000);
  return `${minutes} min ${seconds} s`;
}
