/**
 * The maintenance plan document (runbook: Monthly Maintenance, T-72 hours, step 5,
 * `maintenance_plan_$(date +%Y%m%d).md`), written under STATE_DIR/maintenance/.
 *
 * It is generated from the procedures themselves — every task is a step of
 * `maintenance run` with the exact SQL and commands its `describe()` reports, and the rollback
 * plan is each step's own undo or the reason it has none — so the plan and what runs cannot
 * drift apart. What the runbook lists but Shipshape does not run (updating dependencies, SSL
 * certificates) stays a checklist item with who does it instead.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AppProfile } from '../../app-profile.ts';
import type { Config } from '../../config/index.ts';
import { humanDuration } from '../../config/duration.ts';
import { createLogger } from '../../log.ts';
import { version } from '../../version.ts';
import { percent } from '../diagnostics/thresholds.ts';
import type { Procedure, RunContext } from '../engine/types.ts';
import { maintenanceDir } from './maintenance-log.ts';
import { successCriteria } from './monitor.ts';
import { describeEnd, describeStart, windowDateStamp, windowDuration, type MaintenanceWindow } from './window.ts';

export interface PlanInput {
  readonly config: Config;
  readonly profile: AppProfile;
  readonly window: MaintenanceWindow;
  /** `maintenance run`: the T-0 tasks. */
  readonly run: Procedure;
  /** `maintenance schedule`: the T-72 hours tasks. */
  readonly announce: Procedure;
  readonly now: Date;
}

export function renderMaintenancePlan(input: PlanInput): string {
  const { config, window } = input;
  const at = window.startsAt.toISOString();
  const runContext = planningContext(input, {});
  const announceContext = planningContext(input, { at });
  const lines: string[] = [];
  const describe = (step: Procedure['steps'][number], context: RunContext<unknown>) =>
    step.describe(context).map((line) => `      \`${line.replaceAll('`', "'")}\``);

  lines.push(
    `# Maintenance Plan - ${describeStart(window).split(' at ')[0] ?? windowDateStamp(window)}`,
    '',
    `- **Window:** ${describeStart(window)} to ${describeEnd(window)} (${windowDuration(window)}); ${at} to ${window.endsAt.toISOString()}`,
    `- **Risk:** ${input.run.risk}. **Runbook:** ${input.run.runbookSection}.`,
    `- **Run:** \`shipshape ${input.run.command} --yes --yes-irreversible\` — or the scheduler, when the \`maintenance-window\` schedule is on (\`shipshape schedule list\`).`,
    `- Generated ${input.now.toISOString()} by Shipshape ${version} from the procedures \`${input.announce.id}\` and \`${input.run.id}\`.`,
    '',
    `## Before (T-${humanDuration(config.maintenance.noticeMs)}) — \`shipshape ${input.announce.command} --at ${at}\``,
    '',
  );
  for (const step of input.announce.steps) lines.push(`- [ ] ${step.title}`, ...describe(step, announceContext));

  lines.push('', `## Tasks (T-0) — \`shipshape ${input.run.command}\``, '');
  input.run.steps.forEach((step, index) => {
    lines.push(`- [ ] ${index + 1}. ${step.title}`, ...describe(step, runContext));
    if (step.id === 'migrations') {
      lines.push(
        '- [ ] Update dependencies — not run during the window: dependency updates ship in the release deployed before it (`npm ci` from the lockfile, tested in CI), never `npm update` on a production host.',
      );
    }
  });
  lines.push('- [ ] Update SSL certificates (if needed) — with the certificate provider or load balancer; Shipshape does not hold the certificates.');

  lines.push(
    '',
    '## Rollback Plan',
    '',
    `- A verified backup is taken before anything changes (step 2); its id is in the run journal (\`shipshape runs show <run-id>\`) and in \`shipshape db backups\`. Restore with \`shipshape db restore <backup-id>\`.`,
    '- A failed step stops the run, leaves nothing of itself half done, keeps maintenance mode on, alerts, and names the steps still to do. Fix the cause and run it again, or end the window unfinished with `shipshape maintenance off`.',
    '- Per task:',
  );
  input.run.steps.forEach((step, index) => {
    const how =
      step.irreversible !== undefined
        ? `not undone automatically — ${step.irreversible}`
        : step.undo !== undefined
          ? 'undone automatically if a later check fails'
          : 'changes nothing that needs undoing';
    lines.push(`  - ${index + 1}. ${step.title}: ${how}.`);
  });

  lines.push(
    '',
    '## Success Criteria',
    '',
    '- All tests pass: the smoke tests of the run, and `shipshape maintenance monitor --for 1h` afterwards.',
    `- Error rate < ${percent(successCriteria.maxErrorRate)} (GET /metrics \`errorRate\` < ${successCriteria.maxErrorRate}).`,
    `- Response time < ${successCriteria.maxP95Ms}ms p95 (GET /metrics \`p95ResponseTime\`).`,
    '',
    '## After (T+1 hour)',
    '',
    '- [ ] `shipshape maintenance monitor --for 1h` (reads /metrics every minute against the criteria above)',
    '- [ ] Check error rates (Sentry dashboard)',
    '- [ ] Review user reports (support tickets)',
    `- [ ] Status page "All systems operational" (${config.statusPageWebhookUrl === undefined ? 'STATUS_PAGE_WEBHOOK_URL is not set: by hand' : 'posted by the last step'})`,
    '- [ ] Send the completion email ("Scheduled maintenance completed successfully")',
    '',
  );
  return lines.join('\n');
}

/** Writes the plan as `maintenance_plan_YYYYMMDD.md` (the window's date) and returns its path. */
export async function writeMaintenancePlan(config: Config, window: MaintenanceWindow, text: string): Promise<string> {
  const directory = maintenanceDir(config);
  await mkdir(directory, { recursive: true });
  const file = path.join(directory, `maintenance_plan_${windowDateStamp(window)}.md`);
  await writeFile(file, text);
  return file;
}

export function planPath(config: Config, window: MaintenanceWindow): string {
  return path.join(maintenanceDir(config), `maintenance_plan_${windowDateStamp(window)}.md`);
}

/** What describe() needs and nothing more: it may read configuration and parameters, never I/O. */
function planningContext(input: PlanInput, params: unknown): RunContext<unknown> {
  return {
    runId: 'plan',
    params,
    operator: input.config.operator,
    config: input.config,
    profile: input.profile,
    logger: createLogger('silent'),
    outputs: {},
    database: () => Promise.reject(new Error('describe() must not open the database')),
    note: () => undefined,
    progress: () => undefined,
    signal: new AbortController().signal,
  };
}
