/**
 * The rehearsal in `npm test`: the short form (backup + verify, a test migration up and down,
 * kill-connections, emergency disable/enable, cache clear, a release deployed through its staged
 * rollout to 100 % by the live schedulers) against a live deployment — two
 * `serve` instances with workers and a `worker` on one database — under light traffic. Every
 * procedure keeps every process up, exits as documented, loses no acknowledged write and causes
 * no 5xx it did not announce. `REHEARSAL=full` runs the full form here instead (`npm run
 * rehearsal` runs it with its report as the output).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatReport, runRehearsal, unexpectedFailures } from './rehearsal.ts';

const form = process.env.REHEARSAL === 'full' ? 'full' : 'short';

test(`every rehearsed procedure (${form} form) keeps the deployment up, exits as documented, loses no acknowledged write and causes no unannounced 5xx`, async () => {
  const report = await runRehearsal(form);
  console.log(formatReport(report));
  assert.deepEqual(unexpectedFailures(report), []);
});
