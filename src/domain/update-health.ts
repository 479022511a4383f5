/**
 * The health gate of an update rollout: does the update being rolled out (the candidate) hurt
 * users compared with what the rest of the devices run (the control)?
 *
 * Two signals, each compared with the control over the same period:
 *   - crash-free sessions (release health: sessions and sessions that ended in a crash);
 *   - the API error rate (5xx answers to requests from devices running the update).
 * The judgement is the shared one of `src/domain/health-gate.ts` (the store rollouts of
 * `src/ops/release/gates.ts` use it too): a signal is judged only with at least `minSample`
 * sessions (or requests) on the candidate; until then the gate says `wait` (the step does not
 * advance, nothing is halted). Without a control with enough sample of its own (no release
 * before, or a control too small), the candidate is held to fixed limits instead. This
 * module's allowed worsening is in percentage points (`maxCrashFreeDropPp: 0.5`), the shared
 * judgement's in fractions: `evaluateUpdateGate` divides by 100.
 *
 * The figures come from an `UpdateHealthSource`. This module ships one that reads
 * `ota_update_health`: the API fills its request and error counts (`createUpdateRequestCounter`,
 * from the `x-update-id` header the app sends), and sessions and crashed sessions come from
 * Sentry release health (`sentryUpdateHealth`, when UPDATES_SENTRY_RELEASE is set) or whatever
 * else feeds the table (`recordUpdateHealth`).
 */
import { fetchReleaseSessions } from '../adapters/sentry-sessions.ts';
import type { Queryable } from '../db/pool.ts';
import { API_ERROR_RATE, combineVerdicts, CRASH_FREE_SESSIONS, judgeSignal, summarize, type Reading, type Verdict } from './health-gate.ts';

export interface UpdateHealth {
  readonly sessions: number;
  readonly crashedSessions: number;
  readonly requests: number;
  readonly errors: number;
}

export const EMPTY_HEALTH: UpdateHealth = { sessions: 0, crashedSessions: 0, requests: 0, errors: 0 };

/** Where health figures come from; `since` bounds the period (the rollout's start). */
export interface UpdateHealthSource {
  read(updateIds: readonly string[], since: Date): Promise<ReadonlyMap<string, UpdateHealth>>;
}

export interface GateThresholds {
  /** Sessions (for crash-free) and requests (for the error rate) the candidate needs before it is judged. */
  readonly minSample: number;
  /** How many percentage points the candidate's crash-free rate may fall below the control's. */
  readonly maxCrashFreeDropPp: number;
  /** How many percentage points the candidate's API error rate may rise above the control's. */
  readonly maxErrorRateRisePp: number;
  /** Fixed limits (fractions: 0.99 = 99 %) when there is no usable control. */
  readonly minCrashFreeRate: number;
  readonly maxErrorRate: number;
}

export const DEFAULT_GATE_THRESHOLDS: GateThresholds = {
  minSample: 500,
  maxCrashFreeDropPp: 0.5,
  maxErrorRateRisePp: 1,
  minCrashFreeRate: 0.99,
  maxErrorRate: 0.02,
};

export interface GateCheck {
  readonly name: typeof CRASH_FREE_SESSIONS.name | typeof API_ERROR_RATE.name;
  readonly status: Verdict;
  readonly detail: string;
}

export interface GateVerdict {
  /** `breach` if any check breached; `wait` if none breached but one lacks sample; else `pass`. */
  readonly status: Verdict;
  readonly checks: readonly GateCheck[];
  /** One line for logs and alerts. */
  readonly summary: string;
}

export function evaluateUpdateGate(
  candidate: UpdateHealth,
  control: UpdateHealth | undefined,
  thresholds: GateThresholds = DEFAULT_GATE_THRESHOLDS,
): GateVerdict {
  const { minSample } = thresholds;
  const crashFree = (name: string, health: UpdateHealth): Reading => ({
    name,
    sample: health.sessions,
    rate: health.sessions > 0 ? 1 - health.crashedSessions / health.sessions : null,
  });
  const errorRate = (name: string, health: UpdateHealth): Reading => ({
    name,
    sample: health.requests,
    rate: health.requests > 0 ? health.errors / health.requests : null,
  });
  const checks = [
    {
      rule: { ...CRASH_FREE_SESSIONS, minSample, allowedWorsening: thresholds.maxCrashFreeDropPp / 100, fallbackLimit: thresholds.minCrashFreeRate },
      read: crashFree,
    },
    { rule: { ...API_ERROR_RATE, minSample, allowedWorsening: thresholds.maxErrorRateRisePp / 100, fallbackLimit: thresholds.maxErrorRate }, read: errorRate },
  ].map(({ rule, read }): GateCheck => {
    const judged = judgeSignal(rule, read('the update', candidate), control === undefined ? undefined : read('the control', control));
    return { name: rule.name, status: judged.verdict, detail: judged.detail };
  });
  return { status: combineVerdicts(checks.map((check) => check.status)), checks, summary: summarize(checks) };
}

/** Reads `ota_update_health`, summed from `since`. */
export function databaseUpdateHealth(db: Queryable): UpdateHealthSource {
  return {
    async read(updateIds, since) {
      const result = new Map<string, UpdateHealth>();
      if (updateIds.length === 0) return result;
      const { rows } = await db.query<{ update_id: string; sessions: string; crashed: string; requests: string; errors: string }>(
        `SELECT update_id, sum(sessions)::text AS sessions, sum(crashed_sessions)::text AS crashed, sum(requests)::text AS requests, sum(errors)::text AS errors
           FROM ota_update_health
          WHERE update_id = ANY($1::uuid[]) AND period_start >= date_trunc('minute', $2::timestamptz)
          GROUP BY update_id`,
        [updateIds, since],
      );
      for (const row of rows)
        result.set(row.update_id, {
          sessions: Number(row.sessions),
          crashedSessions: Number(row.crashed),
          requests: Number(row.requests),
          errors: Number(row.errors),
        });
      return result;
    },
  };
}

/** Adds figures for one update to the current minute's row (release-health feeds and the API's request counts both land here). */
export async function recordUpdateHealth(db: Queryable, updateId: string, delta: Partial<UpdateHealth>, at: Date = new Date()): Promise<void> {
  await db.query(
    `INSERT INTO ota_update_health (update_id, period_start, sessions, crashed_sessions, requests, errors)
     VALUES ($1::uuid, date_trunc('minute', $2::timestamptz), $3::bigint, $4::bigint, $5::bigint, $6::bigint)
     ON CONFLICT (update_id, period_start) DO UPDATE SET
       sessions = ota_update_health.sessions + EXCLUDED.sessions,
       crashed_sessions = ota_update_health.crashed_sessions + EXCLUDED.crashed_sessions,
       requests = ota_update_health.requests + EXCLUDED.requests,
       errors = ota_update_health.errors + EXCLUDED.errors`,
    [updateId, at, delta.sessions ?? 0, delta.crashedSessions ?? 0, delta.requests ?? 0, delta.errors ?? 0],
  );
}

/** The header an app sends on its API calls with the id of the update it runs (`Updates.updateId` from expo-updates). */
export const UPDATE_ID_HEADER = 'x-update-id';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface UpdateRequestCounter {
  /** Counts one API answer to a device that said it runs `updateId` (a 5xx is an error). */
  count(updateId: unknown, status: number): void;
  /** Writes what was counted (one statement per update seen); a failed write keeps the counts for the next flush. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * API requests and 5xx answers per update, counted in memory on the request path and added
 * to `ota_update_health` every `intervalMs` — the API error rate the rollout gates compare.
 * Ids that are not UUIDs are ignored, and at most `maxUpdates` distinct ids are kept between
 * flushes, so a client sending made-up ids cannot grow the map or the table without bound.
 */
export function createUpdateRequestCounter(
  db: Queryable,
  options: { intervalMs: number; maxUpdates?: number; onError?: (error: unknown) => void },
): UpdateRequestCounter {
  let counts = new Map<string, { requests: number; errors: number }>();
  const maxUpdates = options.maxUpdates ?? 100;
  const flush = async () => {
    if (counts.size === 0) return;
    const pending = counts;
    counts = new Map();
    for (const [updateId, delta] of pending) {
      try {
        // Only updates that exist: an id no update has is a client's mistake, not a figure.
        await db.query(
          `INSERT INTO ota_update_health (update_id, period_start, requests, errors)
           SELECT id, date_trunc('minute', now()), $2::bigint, $3::bigint FROM ota_updates WHERE id = $1::uuid
           ON CONFLICT (update_id, period_start) DO UPDATE SET requests = ota_update_health.requests + EXCLUDED.requests, errors = ota_update_health.errors + EXCLUDED.errors`,
          [updateId, delta.requests, delta.errors],
        );
      } catch (error) {
        const kept = counts.get(updateId) ?? { requests: 0, errors: 0 };
        counts.set(updateId, { requests: kept.requests + delta.requests, errors: kept.errors + delta.errors });
        options.onError?.(error);
      }
    }
  };
  const timer = setInterval(() => void flush(), options.intervalMs);
  timer.unref();
  return {
    count(updateId, status) {
      if (typeof updateId !== 'string' || !UUID.test(updateId)) return;
      const id = updateId.toLowerCase();
      const current = counts.get(id);
      if (!current && counts.size >= maxUpdates) return;
      const entry = current ?? { requests: 0, errors: 0 };
      entry.requests += 1;
      if (status >= 500) entry.errors += 1;
      counts.set(id, entry);
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}

export interface SentryUpdateHealthOptions {
  readonly sentry: { readonly apiUrl: string; readonly org: string; readonly token: string; readonly timeoutMs?: number };
  /** The update's release name in Sentry, with {updateId}, {runtimeVersion} and {channel} filled in (UPDATES_SENTRY_RELEASE). */
  readonly releaseTemplate: string;
}

export function sentryReleaseName(template: string, update: { id: string; runtimeVersion: string; channel: string }): string {
  return template.replaceAll('{updateId}', update.id).replaceAll('{runtimeVersion}', update.runtimeVersion).replaceAll('{channel}', update.channel);
}

/**
 * Crash-free sessions from Sentry release health (the app reports each update as its own
 * release, e.g. `Sentry.init({ release: `tasks@${runtimeVersion}+${Updates.updateId}` })`),
 * API requests and errors from `ota_update_health`. Sentry's sessions replace the table's, so
 * nothing is counted twice. Sentry not answering throws: the caller leaves the rollout as it is
 * and reads again at the next tick (unknown is not healthy).
 */
export function sentryUpdateHealth(db: Queryable, options: SentryUpdateHealthOptions): UpdateHealthSource {
  const local = databaseUpdateHealth(db);
  return {
    async read(updateIds, since) {
      const figures = new Map(await local.read(updateIds, since));
      if (updateIds.length === 0) return figures;
      const { rows } = await db.query<{ id: string; runtime_version: string; channel: string }>(
        'SELECT id, runtime_version, channel FROM ota_updates WHERE id = ANY($1::uuid[])',
        [updateIds],
      );
      const names = new Map(
        rows.map((row) => [row.id, sentryReleaseName(options.releaseTemplate, { id: row.id, runtimeVersion: row.runtime_version, channel: row.channel })]),
      );
      // Sentry's periods are whole hours back from now: the smallest one that covers the rollout.
      const hours = Math.max(1, Math.ceil((Date.now() - since.getTime()) / 3_600_000));
      const sessions = await fetchReleaseSessions(options.sentry, [...names.values()], hours);
      for (const id of updateIds) {
        const release = sessions.get(names.get(id) ?? '');
        const base = figures.get(id) ?? EMPTY_HEALTH;
        const total = release?.sessions ?? 0;
        const crashed = release?.crashFreeRate === null || release === undefined ? 0 : Math.round(total * (1 - release.crashFreeRate));
        figures.set(id, { ...base, sessions: total, crashedSessions: crashed });
      }
      return figures;
    },
  };
}

/** The health source the workers use: Sentry release health when UPDATES_SENTRY_RELEASE and SENTRY_ORG/SENTRY_TOKEN are set, else the table alone. */
export function configuredUpdateHealth(
  db: Queryable,
  config: { updates: { sentryRelease: string | undefined }; sentry: { apiUrl: string; org: string | undefined; token: string | undefined } },
): UpdateHealthSource {
  const { sentryRelease } = config.updates;
  const { apiUrl, org, token } = config.sentry;
  return sentryRelease && org && token ? sentryUpdateHealth(db, { sentry: { apiUrl, org, token }, releaseTemplate: sentryRelease }) : databaseUpdateHealth(db);
}
