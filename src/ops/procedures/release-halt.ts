/** Runbook: "Deploy New Version", Rollback Option 1 — `shipshape release halt <platform>`. See release-control.ts. */
import { rolloutControl } from './release-control.ts';

export const releaseHalt = rolloutControl('halted', {
  title: 'Halt a staged rollout (Play halted, App Store phased release paused)',
  whenToUse: 'A problem in the release rolling out: stop more users getting it (Rollback, Option 1).',
  risk: 'low',
});
