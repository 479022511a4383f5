/**
 * `shipshape procedures`: every runbook procedure with its command, risk, expected duration,
 * runbook section and when to use it. It starts from `procedureCatalog`
 * (src/ops/procedures/catalog.ts, written from the registry by
 * `node scripts/procedure-catalog.ts`), so listing them loads none of their code.
 */
import type { Command } from 'commander';
import type { ProcedureListing } from '../../ops/engine/registry.ts';
import { emit } from '../output.ts';

export function registerProcedureList(program: Command, rows: readonly ProcedureListing[]): void {
  program
    .command('procedures')
    .description('every runbook procedure: command, risk, expected duration, runbook section, when to use it')
    .option('--json', 'print one JSON document on stdout', false)
    .action((options: { json: boolean }) => {
      emit(options, { procedures: rows }, ({ procedures }) =>
        procedures.length === 0
          ? 'No procedures are registered yet.'
          : procedures
              .map((p) =>
                [
                  `${p.command}  [${p.risk} risk, ${p.expectedDuration}]`,
                  `    ${p.title} — runbook: ${p.runbookSection}`,
                  `    When: ${p.whenToUse}`,
                  ...(p.irreversibleSteps.length > 0 ? [`    Irreversible steps: ${p.irreversibleSteps.join(', ')}`] : []),
                ].join('\n'),
              )
              .join('\n\n'),
      );
    });
}
