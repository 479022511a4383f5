/**
 * Release health gates: may a rollout of `candidate` go one step further, judged against
 * `control` (the version users had before)? Used by the staged store rollouts (issue 14); the
 * caller names the two versions and how each is known to Sentry; this module reads the figures
 * and hands them to the shared judgement (`src/domain/health-gate.ts`, also used by the OTA
 * update rollouts of `src/domain/update-health.ts`).
 *
 * Two signals, each over the same window (RELEASE_GATE_WINDOW):
 *   - crash-free session rate, from Sentry release health (SENTRY_*);
 *   - Shipshape's own API error rate (5xx share) for requests the app sent with that version
 *     in `X-App-Version` (request_metrics_by_version).
 *
 * Verdicts:
 *   - `pass`: both signals have at least the minimum sample for the candidate and hold: the
 *     crash-free rate fell by no more than RELEASE_GATE_MAX_CRASH_FREE_DROP and the error rate
 *     rose by no more than RELEASE_GATE_MAX_ERROR_RATE_RISE against the control. A control
 *     without its own minimum sample is replaced by fixed limits (99 % crash-free, 1 % errors).
 *   - `breach`: a signal with enough sample does not hold — halt and page.
 *   - `wait`: too few sessions or requests yet, or Sentry is not configured or did not answer:
 *     nothing is judged, the rollout stays where it is and is read again later. Never `pass`.
 * The RELEASE_GATE_* limits are fractions (0.005 = half a percentage point), as the shared
 * judgement takes them: no conversion here.
 */
import { fetchReleaseSessions, type ReleaseSessions } from '../../adapters/sentry-sessions.ts';
import type { Config } from '../../config/index.ts';
import type { Queryable } from '../../db/pool.ts';
import { API_ERROR_RATE, combineVerdicts, CRASH_FREE_SESSIONS, judgeSignal, summarize, type Verdict } from '../../domain/health-gate.ts';
import { readVersionMetrics, type VersionMetrics } from '../../domain/version-metrics.ts';
import { describeError } from '../../errors.ts';

/** Used when the control version has too small a sample to compare against. */
export const FALLBACK_MIN_CRASH_FREE = 0.99;
export const FALLBACK_MAX_ERROR_RATE = 0.01;

export type GateVerdict = Verdict;

export interface GateThresholds {
  readonly windowMs: number;
  readonly minSessions: number;
  readonly minRequests: number;
  readonly maxCrashFreeDrop: number;
  readonly maxErrorRateRise: number;
}

export interface SignalResult {
  readonly verdict: GateVerdict;
  readonly detail: string;
  readonly candidate: { readonly sample: number; readonly value: number | null } | null;
  readonly control: { readonly sample: number; readonly value: number | null } | null;
  /** The value the candidate was held against (a bound, not the control's own value). */
  readonly limit: number | null;
}

export interface GateResult {
  readonly verdict: GateVerdict;
  readonly candidate: string;
  readonly control: string | null;
  readonly evaluatedAt: string;
  readonly crashFree: SignalResult;
  readonly errorRate: SignalResult;
  /** One line per signal, for status output, alerts and the journal. */
  readonly summary: string;
}

export interface GateInput {
  readonly candidate: string;
  readonly control: string | null;
  readonly thresholds: GateThresholds;
  /** Sentry's release name for a version (SENTRY_RELEASE_NAME); undefined options → not configured. */
  readonly sentry: { readonly apiUrl: string; readonly org: string; readonly token: string; readonly releaseName: (version: string) => string } | undefined;
  readonly db: Queryable;
}

/** The gate inputs as configured. */
export function gateSettings(config: Config): Pick<GateInput, 'thresholds' | 'sentry'> {
  const { gates } = config.release;
  const { org, token, apiUrl } = config.sentry;
  return {
    thresholds: gates,
    sentry:
      org !== undefined && token !== undefined
        ? { apiUrl, org, token, releaseName: (version) => gates.sentryReleaseName.replaceAll('{version}', version) }
        : undefined,
  };
}

export async function evaluateGates(input: GateInput): Promise<GateResult> {
  const [crashFree, errorRate] = await Promise.all([crashFreeSignal(input), errorRateSignal(input)]);
  return {
    verdict: combineVerdicts([crashFree.verdict, errorRate.verdict]),
    candidate: input.candidate,
    control: input.control,
    evaluatedAt: new Date().toISOString(),
    crashFree,
    errorRate,
    summary: summarize([
      { name: CRASH_FREE_SESSIONS.name, detail: crashFree.detail },
      { name: API_ERROR_RATE.name, detail: errorRate.detail },
    ]),
  };
}

async function crashFreeSignal(input: GateInput): Promise<SignalResult> {
  const { sentry, thresholds } = input;
  if (sentry === undefined)
    return {
      verdict: 'wait',
      detail: 'SENTRY_ORG and SENTRY_TOKEN are not set, so the crash-free rate cannot be read',
      candidate: null,
      control: null,
      limit: null,
    };
  const names = [sentry.releaseName(input.candidate), ...(input.control === null ? [] : [sentry.releaseName(input.control)])];
  let sessions: Map<string, ReleaseSessions>;
  try {
    sessions = await fetchReleaseSessions(sentry, names, Math.max(1, Math.ceil(thresholds.windowMs / 3_600_000)));
  } catch (error) {
    return { verdict: 'wait', detail: `not read: ${describeError(error)}`, candidate: null, control: null, limit: null };
  }
  const candidate = sessions.get(names[0]!) ?? { sessions: 0, crashFreeRate: null };
  const control = names[1] === undefined ? undefined : sessions.get(names[1]);
  const judged = judgeSignal(
    { ...CRASH_FREE_SESSIONS, minSample: thresholds.minSessions, allowedWorsening: thresholds.maxCrashFreeDrop, fallbackLimit: FALLBACK_MIN_CRASH_FREE },
    { name: input.candidate, sample: candidate.sessions, rate: candidate.crashFreeRate },
    input.control === null ? undefined : { name: input.control, sample: control?.sessions ?? 0, rate: control?.crashFreeRate ?? null },
  );
  return {
    ...judged,
    candidate: { sample: candidate.sessions, value: candidate.crashFreeRate },
    control: control === undefined ? null : { sample: control.sessions, value: control.crashFreeRate },
  };
}

async function errorRateSignal(input: GateInput): Promise<SignalResult> {
  const { thresholds } = input;
  const versions = [input.candidate, ...(input.control === null ? [] : [input.control])];
  let rows: VersionMetrics[];
  try {
    rows = await readVersionMetrics(input.db, thresholds.windowMs, versions);
  } catch (error) {
    return { verdict: 'wait', detail: `not read: ${describeError(error)}`, candidate: null, control: null, limit: null };
  }
  const candidate = rows.find((row) => row.version === input.candidate) ?? { version: input.candidate, requests: 0, errors: 0, errorRate: 0 };
  const control = input.control === null ? undefined : rows.find((row) => row.version === input.control);
  const judged = judgeSignal(
    { ...API_ERROR_RATE, minSample: thresholds.minRequests, allowedWorsening: thresholds.maxErrorRateRise, fallbackLimit: FALLBACK_MAX_ERROR_RATE },
    { name: input.candidate, sample: candidate.requests, rate: candidate.errorRate },
    input.control === null ? undefined : { name: input.control, sample: control?.requests ?? 0, rate: control?.errorRate ?? null },
  );
  return {
    ...judged,
    candidate: { sample: candidate.requests, value: candidate.errorRate },
    control: control === undefined ? null : { sample: control.requests, value: control.errorRate },
  };
}
