/**
 * Every runbook procedure the CLI exposes, in runbook order.
 *
 * To add one: write `src/ops/procedures/<name>.ts` exporting a `defineProcedure({...})`,
 * then add one line here mapping its CLI arguments and options onto its params, e.g.
 *
 *   procedureEntry(userDelete, { arguments: [{ name: 'email', description: 'the account to erase' }] }),
 *
 * The command (`shipshape user delete <email>`), its --dry-run/--json/--yes/... flags, the
 * `shipshape procedures` listing, and resume/rollback support all follow from that entry.
 * See docs/engine.md.
 */
import type { ProcedureEntry } from '../engine/registry.ts';

export const procedures: readonly ProcedureEntry[] = [];
