/** Runbook: "Deploy New Version", step 10 (Day 5: 50 % → 100 %) — `shipshape release complete <platform>`. See release-control.ts. */
import { rolloutControl } from './release-control.ts';

export const releaseComplete = rolloutControl('completed', {
  title: 'Complete a staged rollout now (100 % of users)',
  whenToUse: 'The release is proven and should reach everyone without waiting for the remaining steps.',
  risk: 'medium',
});
