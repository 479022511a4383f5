/**
 * The scheduler's commands (issue 6), registered together after `notify` and the procedures,
 * whose command groups (`notify`, `maintenance`) they add to.
 */
import type { Command } from 'commander';
import { registerAdminToken } from './admin-token.ts';
import { registerMaintenanceCommands } from './maintenance.ts';
import { registerNotifySchedule } from './notify-schedule.ts';
import { registerSchedule } from './schedule.ts';
import { registerWorker } from './worker.ts';

export function registerScheduling(program: Command): void {
  registerWorker(program);
  registerSchedule(program);
  registerNotifySchedule(program);
  registerMaintenanceCommands(program);
  registerAdminToken(program);
}
