/**
 * `npm run rehearsal`: the full rehearsal, printing each procedure's report as it ends and the
 * whole report at the end; exit 0 when it passed, 1 when anything failed unexpectedly.
 * `REHEARSAL=short` runs the short form (the one in `npm test`); `REHEARSAL_ONLY="name,name"`
 * runs only the named procedures (see test/rehearsal/procedures.ts).
 */
import { formatReport, runRehearsal, unexpectedFailures } from './rehearsal.ts';

const form = process.env.REHEARSAL === 'short' ? 'short' : 'full';
const only = process.env.REHEARSAL_ONLY?.split(',')
  .map((name) => name.trim())
  .filter(Boolean);
const report = await runRehearsal(form, { log: (line) => console.log(line), ...(only ? { only } : {}) });
console.log(`\n${formatReport(report)}`);
process.exitCode = unexpectedFailures(report).length === 0 ? 0 : 1;
