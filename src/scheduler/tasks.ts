/**
 * What a schedule can run. Each task names the procedures it runs; the job that runs them is
 * in task-runner.ts. A task with a notice phase (maintenance) is also run `noticeMs` before
 * each occurrence, for the announcement.
 */
export const scheduleTasks = ['backup', 'maintenance'] as const;
export type ScheduleTask = (typeof scheduleTasks)[number];

export interface TaskDefinition {
  readonly task: ScheduleTask;
  readonly description: string;
  /** Whether the task has a notice phase before each occurrence. */
  readonly hasNotice: boolean;
  /** Default for how late a missed occurrence may still run. */
  readonly defaultMaxLatenessMs: number;
}

const HOUR_MS = 3_600_000;

export const taskDefinitions: Readonly<Record<ScheduleTask, TaskDefinition>> = {
  backup: {
    task: 'backup',
    description: '`shipshape db backup`, then `shipshape db prune` (retention) once the backup verified',
    hasNotice: false,
    // A late backup is still a backup; but one missed by most of a day is taken by the next.
    defaultMaxLatenessMs: 12 * HOUR_MS,
  },
  maintenance: {
    task: 'maintenance',
    description: 'notice phase: `shipshape maintenance schedule --at <window>`; at the window: `shipshape maintenance run`',
    hasNotice: true,
    // Users were told a time: starting much later would take the app down when they were not warned.
    defaultMaxLatenessMs: HOUR_MS / 2,
  },
};

export function isScheduleTask(value: string): value is ScheduleTask {
  return (scheduleTasks as readonly string[]).includes(value);
}
