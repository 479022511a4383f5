/**
 * `maintenance.log` (the runbook's `>> maintenance.log`): one line per step of every
 * maintenance run, beside the run journal, under STATE_DIR/maintenance/. Plain text an
 * operator can tail during the window; the journal stays the record.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../config/index.ts';

export function maintenanceDir(config: Config): string {
  return path.join(config.stateDir, 'maintenance');
}

export function maintenanceLogPath(config: Config): string {
  return path.join(maintenanceDir(config), 'maintenance.log');
}

/** Appends `2026-03-01T10:00:00.000Z [r-…] message` lines; never throws (the log must not fail a step). */
export async function appendMaintenanceLog(config: Config, runId: string, message: string): Promise<void> {
  const lines = message
    .split('\n')
    .map((line) => `${new Date().toISOString()} [${runId}] ${line}\n`)
    .join('');
  try {
    await mkdir(maintenanceDir(config), { recursive: true });
    await appendFile(maintenanceLogPath(config), lines, { mode: 0o640 });
  } catch {
    // The journal has every step; a full disk or a read-only state dir costs only this copy.
  }
}
