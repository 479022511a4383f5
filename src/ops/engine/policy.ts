/**
 * The engine's site policy: how long a second operator's approval stays valid, and whether
 * `--approved-by NAME` may stand in for `shipshape approve`.
 *
 * Inline approval is off by default: typing someone else's name is not a second person
 * looking at the plan. Sites that record approvals elsewhere (a change ticket) may turn it
 * on. Either way the two-person rule is a procedural safeguard, not authentication:
 * SHIPSHAPE_OPERATOR can be set to anything by whoever runs the command.
 */
import { z } from 'zod';
import type { Environment } from '../../config/index.ts';
import { ShipError } from '../../errors.ts';

export interface EnginePolicy {
  /** How long an approval recorded with `shipshape approve` lets the run go ahead. */
  readonly approvalTtlMs: number;
  /** Whether `--approved-by NAME` is accepted for high and critical procedures. */
  readonly allowInlineApproval: boolean;
}

export const defaultEnginePolicy: EnginePolicy = { approvalTtlMs: 60 * 60 * 1000, allowInlineApproval: false };

const ttlMinutes = z.coerce.number().int().positive().max(7 * 24 * 60).optional();
const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes')
  .optional();

/** Reads the two policy variables; a bad value stops the command naming the variable. */
export function enginePolicyFrom(env: Environment): EnginePolicy {
  const minutes = read(env, 'SHIPSHAPE_APPROVAL_TTL_MINUTES', ttlMinutes, '60');
  return {
    approvalTtlMs: minutes === undefined ? defaultEnginePolicy.approvalTtlMs : minutes * 60_000,
    allowInlineApproval: read(env, 'SHIPSHAPE_ALLOW_INLINE_APPROVAL', flag, 'false') ?? defaultEnginePolicy.allowInlineApproval,
  };
}

function read<S extends z.ZodType>(env: Environment, name: string, schema: S, example: string): z.output<S> {
  const raw = env[name] === '' ? undefined : env[name];
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ShipError(
      'SHIP_ERR_CONFIG',
      `${name}=${JSON.stringify(raw)} is invalid: ${parsed.error.issues[0]?.message ?? 'bad value'}. Example of a good value: ${name}=${example}`,
    );
  }
  return parsed.data;
}
