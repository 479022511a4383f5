/**
 * What `emergency disable` and `emergency enable` share: the page and its dedup key, and
 * reading /health until it says what the database says.
 *
 * The page is opened with a fixed dedup key, so whoever runs `emergency enable` — another
 * operator, hours later, another host — resolves exactly that incident without having to
 * know which run opened it. Only one emergency disable runs at a time (lock `app:emergency`).
 */
import type { Alert } from '../../adapters/alerts/index.ts';
import { ShipError } from '../../errors.ts';
import { waitForHealth, type HealthExpectation } from '../diagnostics/api-probe.ts';
import { configuredAlerter } from '../engine/alerts.ts';
import { unverified, type CheckResult, type JsonObject, type RunContext } from '../engine/types.ts';

/** The PagerDuty dedup key of "the app is disabled"; `emergency enable` resolves it. */
export const EMERGENCY_PAGE_KEY = 'shipshape-emergency-app-disabled';
/** The runbook: "Critical security vulnerability, data breach" — the Security row of the escalation matrix. */
export const EMERGENCY_ISSUE_TYPE = 'security';
export const EMERGENCY_LOCK = 'app:emergency';

/** Sends one alert and reports each target's fate, for the step's output and notes. */
export async function alertAndReport(context: RunContext<unknown>, alert: Alert): Promise<{ output: JsonObject; paged: boolean; summary: string }> {
  const alerter = await configuredAlerter(context.config, context.logger, { keepPaging: true });
  const deliveries = await alerter.send(alert);
  const pagerDuty = deliveries.filter((d) => d.kind === 'pagerduty');
  const paged = pagerDuty.length > 0 && pagerDuty.every((d) => d.ok);
  const summary = deliveries.map((d) => `${d.target} ${d.ok ? 'ok' : `FAILED (${d.error ?? '?'})`}`).join('; ');
  return {
    output: {
      deliveries: deliveries.map((d) => ({ target: d.target, ok: d.ok, ...(d.error === undefined ? {} : { error: d.error }) })),
      paged,
      pagerDutyConfigured: pagerDuty.length > 0,
      dedupKey: EMERGENCY_PAGE_KEY,
    },
    paged,
    summary,
  };
}

/**
 * The verify-health step: GET /health must show `expected` within a few seconds. An API that
 * does not answer is not a failure (each instance reads the app state from the database when it
 * starts), but the check could not be made: the step says "unverified" (never ✓) and the run
 * ends unverified, exit 5. One that shows something else fails the step, saying `problem`.
 */
export async function verifyHealth(context: RunContext<unknown>, expected: HealthExpectation, problem: string): Promise<JsonObject> {
  const seen = await waitForHealth(context.config.apiUrl, expected);
  if (seen.unreachable) {
    context.note(`${seen.detail}: no API instance to check here; each reads the app state from the database when it starts`);
    return { verified: false, unreachable: true, unverified: `${seen.detail}, so what users see could not be checked` };
  }
  if (!seen.ok) {
    throw new ShipError(
      'SHIP_ERR_STEP_FAILED',
      `${problem}: ${seen.detail}. Check that API_URL points at an instance using this database; its logs should not show "could not refresh app state".`,
    );
  }
  context.note(seen.detail);
  return { verified: true, unreachable: false };
}

/**
 * The same as a verification check. An API that does not answer could not be checked: it may
 * be down (then it reads the app state from the database when it starts), or API_URL may point
 * nowhere while the real instances go on serving — so it is "unverified" (exit 5), never ✓.
 */
export async function healthCheck(context: RunContext<unknown>, expected: HealthExpectation): Promise<CheckResult> {
  const seen = await waitForHealth(context.config.apiUrl, expected);
  if (seen.unreachable) {
    const url = new URL('/health', context.config.apiUrl).toString();
    return unverified(
      `${seen.detail}, so what users see could not be checked`,
      `check \`curl -si ${url}\` on the API hosts (expect ${expected.maintenance ? '503 with the message' : '200'}), and that API_URL points at the running API`,
    );
  }
  return seen.ok ? { ok: true, detail: seen.detail } : { ok: false, detail: seen.detail, remedy: 'check API_URL and the API logs' };
}
