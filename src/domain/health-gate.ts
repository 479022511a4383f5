/**
 * The judgement of a health gate, once for every rollout that has one: may a candidate (a new
 * app version in the stores, issue 14; an OTA update, issue 15) go one step further, judged
 * against its control (what the other users run)?
 *
 * One signal at a time (`judgeSignal`): the candidate's rate over its sample against a limit.
 * The limit is the control's rate made worse by at most `allowedWorsening`, or, when there is
 * no control or it has fewer than `minSample` of its own, the fixed `fallbackLimit` (a rate from
 * a handful of sessions says nothing). A candidate below `minSample` is not judged: `wait`.
 * A rate exactly at the limit passes. Then one verdict for all signals (`combineVerdicts`):
 * `breach` if any breached, else `wait` if any waits, else `pass`.
 *
 * Every rate and limit here is a fraction (0.005 is half a percentage point); callers whose
 * configuration speaks in percentage points convert where they read it. Where the figures come
 * from (Sentry, request counts) is the callers' business: this module only judges them.
 */

export type Verdict = 'pass' | 'breach' | 'wait';

/** What a signal measures and which way is better. */
export interface Signal {
  /** Its name in summaries. */
  readonly name: string;
  /** What the rate is of, after the percentage: "99.60 % crash-free". */
  readonly measure: string;
  /** What the sample counts: "over 1000 sessions". */
  readonly unit: string;
  readonly better: 'higher' | 'lower';
}

export const CRASH_FREE_SESSIONS = { name: 'crash-free sessions', measure: 'crash-free', unit: 'sessions', better: 'higher' } as const satisfies Signal;
export const API_ERROR_RATE = { name: 'API error rate', measure: 'API errors', unit: 'requests', better: 'lower' } as const satisfies Signal;

export interface SignalRule extends Signal {
  /** Sample the candidate needs before it is judged, and the control before it is the baseline. */
  readonly minSample: number;
  /** How far (a fraction) the candidate's rate may be worse than the control's. */
  readonly allowedWorsening: number;
  /** The limit (a fraction) when there is no control with `minSample` of its own. */
  readonly fallbackLimit: number;
}

/** One side's figures: `rate` null when nothing was reported (e.g. no sessions at all). */
export interface Reading {
  /** How it is named in the detail line: a version, "the update", "the control". */
  readonly name: string;
  readonly sample: number;
  readonly rate: number | null;
}

export interface Judgement {
  readonly verdict: Verdict;
  /** The rate the candidate was (or will be) held against — a bound, not the control's own rate. */
  readonly limit: number;
  /** One line for status output, alerts and the journal. */
  readonly detail: string;
}

/**
 * Limits are sums of decimal fractions, which binary floating point can land a hair off
 * (0.009 + 0.005 is 0.013999999999999999): without this slack a candidate exactly at the
 * limit could breach.
 */
const EPSILON = 1e-12;

export function judgeSignal(rule: SignalRule, candidate: Reading, control: Reading | undefined): Judgement {
  const higher = rule.better === 'higher';
  const baseline = control !== undefined && control.sample >= rule.minSample && control.rate !== null ? control.rate : null;
  const limit = baseline === null ? rule.fallbackLimit : clamp(higher ? baseline - rule.allowedWorsening : baseline + rule.allowedWorsening);
  if (candidate.sample < rule.minSample || candidate.rate === null) {
    return { verdict: 'wait', limit, detail: `${candidate.sample} of ${rule.minSample} ${rule.unit} needed for ${candidate.name}` };
  }
  const holds = higher ? candidate.rate >= limit - EPSILON : candidate.rate <= limit + EPSILON;
  const op = higher ? (holds ? '≥' : '<') : holds ? '≤' : '>';
  const against =
    baseline === null || control === undefined
      ? `the fixed ${higher ? 'floor' : 'ceiling'} (${control === undefined ? 'no control' : `${control.name} has fewer than ${rule.minSample} ${rule.unit}`})`
      : `${control.name} at ${percent(baseline)} over ${control.sample} ${rule.unit} ${higher ? '−' : '+'} ${points(rule.allowedWorsening)}`;
  return {
    verdict: holds ? 'pass' : 'breach',
    limit,
    detail: `${candidate.name} ${percent(candidate.rate)} ${rule.measure} over ${candidate.sample} ${rule.unit} ${op} ${percent(limit)}, against ${against}`,
  };
}

/** `breach` if any signal breached; else `wait` if any lacks sample or was not read (or there is none); else `pass`. */
export function combineVerdicts(verdicts: readonly Verdict[]): Verdict {
  if (verdicts.includes('breach')) return 'breach';
  return verdicts.length === 0 || verdicts.includes('wait') ? 'wait' : 'pass';
}

/** One line for all signals: "crash-free sessions: …; API error rate: …". */
export function summarize(signals: ReadonlyArray<{ readonly name: string; readonly detail: string }>): string {
  return signals.map((signal) => `${signal.name}: ${signal.detail}`).join('; ');
}

export function percent(rate: number): string {
  return `${(rate * 100).toFixed(2)} %`;
}

function points(fraction: number): string {
  return `${Number((fraction * 100).toFixed(4))} points`;
}

function clamp(rate: number): number {
  return Math.min(1, Math.max(0, rate));
}
