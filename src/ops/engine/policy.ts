/**
 * The engine's site policy: how long a second operator's approval stays valid, and whether
 * `--approved-by NAME` may stand in for `shipshape approve`.
 *
 * Inline approval is off by default: typing someone else's name is not a second person
 * looking at the plan. Sites that record approvals elsewhere (a change ticket) may turn it
 * on. Either way the two-person rule is a procedural safeguard, not authentication:
 * SHIPSHAPE_OPERATOR can be set to anything by whoever runs the command.
 */
import type { Config } from '../../config/index.ts';

export interface EnginePolicy {
  /** How long an approval recorded with `shipshape approve` lets the run go ahead. */
  readonly approvalTtlMs: number;
  /** Whether `--approved-by NAME` is accepted for high and critical procedures. */
  readonly allowInlineApproval: boolean;
}

/** The policy as configured (SHIPSHAPE_APPROVAL_TTL_MINUTES, SHIPSHAPE_ALLOW_INLINE_APPROVAL). */
export function enginePolicyFrom(config: Pick<Config, 'approvals'>): EnginePolicy {
  return { approvalTtlMs: config.approvals.ttlMinutes * 60_000, allowInlineApproval: config.approvals.allowInline };
}
