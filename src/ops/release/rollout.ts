/**
 * The staged rollout's daily step, driven by the health gates (runbook: Deploy New Version,
 * "9. Monitor metrics / 10. Increase rollout if stable").
 *
 * The scheduler's tick (src/runtime/workers.ts) claims each release whose `next_step_at` has
 * come and calls `advanceRelease`; `shipshape release advance` does the same by hand. Per
 * release, once per RELEASE_STEP_INTERVAL:
 *   - gates `pass` → Play goes to the next RELEASE_ROLLOUT_STEPS fraction; Apple's phased
 *     release is read (Apple moves it day by day); both at 100 % → the release is completed;
 *   - gates `breach` → every rollout in progress is halted (Play `halted`, Apple `PAUSED`), the
 *     release is `halted`, and the Application on-call is paged with the gate values;
 *   - gates `wait` (too small a sample, Sentry not answering) → nothing moves; read again after
 *     RELEASE_GATE_RECHECK.
 * A store that refuses a step is reported (alert) with the state each store is in, and the
 * step is tried again at the next recheck.
 */
import type { Alert } from '../../adapters/alerts/types.ts';
import type { Config } from '../../config/index.ts';
import type { Queryable } from '../../db/pool.ts';
import { recordAudit } from '../../domain/audit.ts';
import { claimDueReleases, getRelease, recordGates, recordRollout, setReleaseState, type Platform, type Release } from '../../domain/releases.ts';
import { describeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { configuredAlerter } from '../engine/alerts.ts';
import { evaluateGates, gateSettings, type GateResult } from './gates.ts';
import { advanceRollout, setRolloutStatus, type StoreRollout } from './stores.ts';

/** The Application row of the escalation matrix owns a bad release. */
export const RELEASE_ISSUE_TYPE = 'application';

export function gatePageKey(version: string): string {
  return `shipshape-release-${version}-gates`;
}

export interface RolloutDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly db: Queryable;
  /** Who the records name: `scheduler`, or `operator:<name>`. */
  readonly actor: string;
  /** Sends an alert; default the configured alerter (pages go out even with a broken routing file). */
  readonly alert?: (alert: Alert) => Promise<{ paged: boolean; summary: string }>;
  readonly now?: () => Date;
}

export interface AdvanceOutcome {
  readonly version: string;
  readonly verdict: GateResult['verdict'] | 'skipped';
  readonly summary: string;
  readonly rollouts: StoreRollout[];
  readonly errors: string[];
  readonly paged: boolean;
}

export async function sendAlert(config: Config, logger: Logger, alert: Alert): Promise<{ paged: boolean; summary: string }> {
  const alerter = await configuredAlerter(config, logger, { keepPaging: true });
  const deliveries = await alerter.send(alert);
  const pages = deliveries.filter((d) => d.kind === 'pagerduty');
  return {
    paged: pages.length > 0 && pages.every((d) => d.ok),
    summary: deliveries.map((d) => `${d.target} ${d.ok ? 'ok' : `FAILED (${d.error ?? '?'})`}`).join('; '),
  };
}

/** Evaluates the gates of one release in rollout and moves, holds or halts it. */
export async function advanceRelease(deps: RolloutDeps, version: string): Promise<AdvanceOutcome> {
  const { config, db } = deps;
  const now = deps.now?.() ?? new Date();
  const alert = deps.alert ?? ((a: Alert) => sendAlert(config, deps.logger, a));
  const release = await getRelease(db, version);
  if (release.state !== 'rolling-out')
    return { version, verdict: 'skipped', summary: `release ${version} is ${release.state}: nothing to advance`, rollouts: [], errors: [], paged: false };

  const gate = await evaluateGates({ candidate: version, control: release.controlVersion, db, ...gateSettings(config) });
  const gateJson = JSON.parse(JSON.stringify(gate)) as Record<string, unknown>;

  if (gate.verdict === 'wait') {
    await recordGates(db, version, gateJson, new Date(now.getTime() + config.release.gateRecheckMs));
    return { version, verdict: 'wait', summary: `held: ${gate.summary}`, rollouts: [], errors: [], paged: false };
  }

  if (gate.verdict === 'breach') {
    const { rollouts, errors } = await haltAll(deps, release);
    await setReleaseState(db, version, 'halted');
    await recordGates(db, version, gateJson, null);
    const sent = await alert({
      issueType: RELEASE_ISSUE_TYPE,
      severity: 'critical',
      event: 'release.gate-breached',
      title: `Release ${version}: health gate breached, rollout halted`,
      text: [
        gate.summary,
        ...rollouts.map((r) => `${r.platform}: ${r.status} at ${(r.fraction * 100).toFixed(0)} %`),
        ...errors.map((e) => `NOT halted — ${e}`),
        `Next: \`shipshape release status\`; roll back with \`shipshape release rollback\`, or resume with \`shipshape release resume <platform>\` once understood.`,
      ].join('\n'),
      page: 'trigger',
      dedupKey: gatePageKey(version),
      details: { version, control: release.controlVersion ?? 'none' },
    });
    await recordAudit(db, { actor: deps.actor, action: 'release.halted', details: { version, reason: 'gate-breach', errors } });
    return { version, verdict: 'breach', summary: `halted: ${gate.summary}`, rollouts, errors, paged: sent.paged };
  }

  // pass: one step on each platform still rolling out.
  const rollouts: StoreRollout[] = [];
  const errors: string[] = [];
  for (const current of release.rollouts) {
    if (current.status !== 'inProgress') continue;
    try {
      const next = await advanceRollout(config, release, current.platform, current.step);
      await recordRollout(db, version, { ...next, updatedBy: deps.actor });
      rollouts.push(next);
    } catch (error) {
      errors.push(`${current.platform}: ${describeError(error)} (still ${current.status} at ${(current.fraction * 100).toFixed(0)} %)`);
    }
  }
  const after = await getRelease(db, version);
  const done = after.rollouts.length > 0 && after.rollouts.every((r) => r.status === 'completed');
  if (done) {
    await setReleaseState(db, version, 'completed');
    await recordGates(db, version, gateJson, null);
  } else {
    await recordGates(db, version, gateJson, new Date(now.getTime() + (errors.length > 0 ? config.release.gateRecheckMs : config.release.stepIntervalMs)));
  }
  if (errors.length > 0) {
    await alert({
      issueType: RELEASE_ISSUE_TYPE,
      severity: 'error',
      event: 'release.step-failed',
      title: `Release ${version}: a rollout step failed`,
      text: `${errors.join('\n')}\nTried again in ${Math.round(config.release.gateRecheckMs / 60_000)} min; \`shipshape release status\` shows each store's state.`,
      dedupKey: `shipshape-release-${version}-step`,
    }).catch(() => undefined);
  }
  await recordAudit(db, {
    actor: deps.actor,
    action: done ? 'release.completed' : 'release.advanced',
    details: { version, rollouts: rollouts.map((r) => `${r.platform}:${r.fraction}`), errors },
  });
  return { version, verdict: 'pass', summary: `${done ? 'completed' : 'advanced'}: ${gate.summary}`, rollouts, errors, paged: false };
}

/** Halts every rollout of the release that is in progress; a store that refuses is reported, the others still halted. */
export async function haltAll(deps: Pick<RolloutDeps, 'config' | 'db' | 'actor'>, release: Release): Promise<{ rollouts: StoreRollout[]; errors: string[] }> {
  const rollouts: StoreRollout[] = [];
  const errors: string[] = [];
  for (const current of release.rollouts) {
    if (current.status !== 'inProgress') continue;
    try {
      const halted = await setRolloutStatus(deps.config, release, current.platform, 'halted');
      await recordRollout(deps.db, release.version, { ...halted, updatedBy: deps.actor });
      rollouts.push(halted);
    } catch (error) {
      errors.push(`${current.platform}: ${describeError(error)}`);
    }
  }
  return { rollouts, errors };
}

/** The scheduler's part: every release whose step is due, one after another. */
export async function advanceDueReleases(deps: RolloutDeps): Promise<AdvanceOutcome[]> {
  const now = deps.now?.() ?? new Date();
  // The lease covers a slow store API; a worker that dies leaves the release to the next after it.
  const due = await claimDueReleases(deps.db, now, 10 * 60_000);
  const outcomes: AdvanceOutcome[] = [];
  for (const version of due) {
    try {
      outcomes.push(await advanceRelease(deps, version));
    } catch (error) {
      deps.logger.error(
        { version, err: describeError(error) },
        `release ${version}: the rollout step could not be evaluated; tried again when its lease runs out`,
      );
      outcomes.push({
        version,
        verdict: 'wait',
        summary: `not evaluated: ${describeError(error)}`,
        rollouts: [],
        errors: [describeError(error)],
        paged: false,
      });
    }
  }
  return outcomes;
}

export function platformLabel(platform: Platform): string {
  return platform === 'ios' ? 'App Store (phased release)' : 'Google Play (staged rollout)';
}
