/** Runbook: "Deploy New Version" — `shipshape release resume <platform>`, the way back from a halt. See release-control.ts. */
import { rolloutControl } from './release-control.ts';

export const releaseResume = rolloutControl('inProgress', {
  title: 'Resume a halted staged rollout at its fraction; the gates then move it on',
  whenToUse: 'The cause of a halt is understood and the release may go on.',
  risk: 'medium',
});
