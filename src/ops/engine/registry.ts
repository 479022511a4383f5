/**
 * How a procedure becomes a CLI command: one entry per procedure naming its positional
 * arguments and options; each maps onto a field of the procedure's zod params. The common
 * flags (--dry-run --json --yes --yes-irreversible --approved-by --wait) are added for
 * every procedure by the CLI, so entries never declare them.
 *
 * Commander hands over strings (and booleans for bare flags, arrays for variadics), so
 * schemas should coerce (`z.coerce.number()`) where they want other types.
 */
import type { z } from 'zod';
import type { Procedure } from './types.ts';

export interface CliArgumentSpec {
  /** Shown in usage as `<name>`; also the params field unless `param` says otherwise. */
  readonly name: string;
  readonly description: string;
  readonly param?: string;
  readonly optional?: boolean;
  /** Takes the rest of the arguments as an array. Only the last argument may be variadic. */
  readonly variadic?: boolean;
}

export interface CliOptionSpec {
  /** Commander flags, e.g. `--scope <scope>`, `--files <url...>`, `--force`. */
  readonly flags: string;
  readonly description: string;
  /** The params field; default: commander's name for the option (`--dry-run` → `dryRun`). */
  readonly param?: string;
  readonly defaultValue?: string | boolean | string[];
}

export interface ProcedureCli {
  readonly arguments?: readonly CliArgumentSpec[];
  readonly options?: readonly CliOptionSpec[];
}

export interface ProcedureEntry {
  readonly procedure: Procedure;
  readonly cli: ProcedureCli;
}

/** `procedureEntry(userDelete, { arguments: [{ name: 'email', description: 'the account' }] })` */
export function procedureEntry<S extends z.ZodType>(procedure: Procedure<S>, cli: ProcedureCli = {}): ProcedureEntry {
  return { procedure, cli };
}

/** Flags every procedure command gets; procedure options must not reuse them. */
export const commonFlagNames = ['--dry-run', '--json', '--yes', '--yes-irreversible', '--approved-by', '--wait', '--wait-for-approval'] as const;

/** What `shipshape procedures` lists of a procedure (src/ops/procedures/catalog.ts holds them, written from the registry). */
export interface ProcedureListing {
  readonly id: string;
  readonly command: string;
  readonly title: string;
  readonly risk: string;
  readonly expectedDuration: string;
  readonly runbookSection: string;
  readonly whenToUse: string;
  readonly irreversibleSteps: readonly string[];
}

/** What `shipshape procedures` shows of each registry entry. */
export function procedureListing(entries: readonly ProcedureEntry[]): ProcedureListing[] {
  return entries.map(({ procedure }) => ({
    id: procedure.id,
    command: `shipshape ${procedure.command}`,
    title: procedure.title,
    risk: procedure.risk,
    expectedDuration: procedure.expectedDuration,
    runbookSection: procedure.runbookSection,
    whenToUse: procedure.whenToUse,
    irreversibleSteps: procedure.steps.filter((step) => step.irreversible !== undefined).map((step) => step.id),
  }));
}
