/**
 * What the public status page says: the state users meet now (from the in-memory app state,
 * no query), the announced maintenance window and banner, incidents (emergency disable/enable
 * runs, from the engine's mirror `shipshape.runs`) and 90 days of uptime from the minute samples
 * in `status_samples` (migration 0013).
 *
 * `StatusBoard` keeps the slow parts in memory, re-read every `refreshMs` and at once when the
 * app state changes, so GET /status costs no query however many people reload it during an
 * incident. The samples are written once a minute by whichever instance comes first.
 */
import type { Queryable } from '../db/pool.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { AppState } from './app-state.ts';
import type { AppStateWatcher } from './app-state-watcher.ts';

export const PUBLIC_STATES = ['operational', 'read-only', 'maintenance', 'emergency'] as const;
export type PublicState = (typeof PUBLIC_STATES)[number];

export const UPTIME_DAYS = 90;

export interface Incident {
  readonly runId: string;
  readonly message: string | null;
  readonly startedAt: Date;
  /** When `emergency enable` brought the app back; null while it is still disabled. */
  readonly resolvedAt: Date | null;
}

export interface UptimeDay {
  /** YYYY-MM-DD, UTC. */
  readonly day: string;
  /** Percent of the day's minutes (since sampling began) served operational or read-only; null without samples. */
  readonly percent: number | null;
  readonly maintenanceMinutes: number;
}

export interface SlowStatus {
  readonly incidents: readonly Incident[];
  readonly window: { readonly startsAt: Date; readonly endsAt: Date; readonly subject: string } | null;
  readonly uptime: readonly UptimeDay[];
  /** Percent over the days with samples, null without any. */
  readonly uptimePercent: number | null;
  readonly readAt: Date;
}

const EMPTY: SlowStatus = { incidents: [], window: null, uptime: [], uptimePercent: null, readAt: new Date(0) };

/** The run that set maintenance, from `maintenance_set_by` ("operator:ada (run r-…)"). */
function runIdOf(setBy: string | null): string | undefined {
  return setBy ? /\(run (r-[0-9A-Za-z-]+)\)/.exec(setBy)?.[1] : undefined;
}

/** The state users meet: emergency when an `emergency disable` run set the maintenance. */
export function publicStateOf(state: AppState, slow: SlowStatus): PublicState {
  const { maintenance } = state;
  if (!maintenance.enabled) return 'operational';
  const runId = runIdOf(maintenance.setBy);
  if (runId && slow.incidents.some((incident) => incident.runId === runId)) return 'emergency';
  return maintenance.mode === 'read-only' ? 'read-only' : 'maintenance';
}

export async function readSlowStatus(db: Queryable, now = new Date()): Promise<SlowStatus> {
  const [runs, window, days] = await Promise.all([
    db.query<{ id: string; procedure: string; message: string | null; started_at: Date; ended_at: Date | null; state: string }>(
      `SELECT id, procedure, params ->> 'message' AS message, started_at, ended_at, state
         FROM shipshape.runs
        WHERE procedure IN ('emergency.disable', 'emergency.enable')
          AND started_at > now() - make_interval(days => $1::int)
          AND state NOT IN ('failed', 'rolled-back', 'awaiting-approval', 'refused')
        ORDER BY started_at`,
      [UPTIME_DAYS],
    ),
    db.query<{ window_starts_at: Date; window_ends_at: Date; subject: string }>(
      `SELECT window_starts_at, window_ends_at, subject FROM maintenance_notices
        WHERE status <> 'cancelled' AND window_ends_at > now() ORDER BY window_starts_at LIMIT 1`,
    ),
    db.query<{ day: string; up: number; maintenance: number; first: Date; last: Date }>(
      `SELECT to_char(minute AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
              count(*) FILTER (WHERE state IN ('operational', 'read-only'))::int AS up,
              count(*) FILTER (WHERE state = 'maintenance')::int AS maintenance,
              min(minute) AS first, max(minute) AS last
         FROM status_samples WHERE minute > now() - make_interval(days => $1::int)
        GROUP BY 1 ORDER BY 1`,
      [UPTIME_DAYS],
    ),
  ]);
  const incidents: Incident[] = [];
  for (const run of runs.rows) {
    const open = incidents.at(-1);
    if (run.procedure === 'emergency.disable') {
      if (open && open.resolvedAt === null) continue; // a second disable while disabled: same incident
      incidents.push({ runId: run.id, message: run.message, startedAt: run.started_at, resolvedAt: null });
    } else if (open && open.resolvedAt === null) {
      incidents[incidents.length - 1] = { ...open, resolvedAt: run.ended_at ?? run.started_at };
    }
  }
  // A day counts from its first sample (the first day sampling ran, or midnight) to its end or now;
  // a minute nobody sampled is a minute no instance was serving, and counts against uptime — a
  // day with no sample at all (every instance down) included.
  const firstEver = days.rows[0]?.first;
  const byDay = new Map(days.rows.map((row) => [row.day, row]));
  let up = 0;
  let expectedTotal = 0;
  const uptime: UptimeDay[] = [];
  if (firstEver) {
    for (let midnight = Date.parse(`${firstEver.toISOString().slice(0, 10)}T00:00:00Z`); midnight <= now.getTime(); midnight += 86_400_000) {
      const day = new Date(midnight).toISOString().slice(0, 10);
      const row = byDay.get(day);
      const start = Math.max(midnight, firstEver.getTime());
      const end = Math.min(midnight + 86_400_000, now.getTime());
      const maintenance = row?.maintenance ?? 0;
      // Whole minutes only: the one under way may not have been sampled yet.
      const expected = Math.max(1, Math.floor((end - start) / 60_000) - maintenance);
      const served = Math.min(row?.up ?? 0, expected);
      up += served;
      expectedTotal += expected;
      uptime.push({ day, percent: (100 * served) / expected, maintenanceMinutes: maintenance });
    }
  }
  return {
    incidents: incidents.reverse(),
    window: window.rows[0] ? { startsAt: window.rows[0].window_starts_at, endsAt: window.rows[0].window_ends_at, subject: window.rows[0].subject } : null,
    uptime,
    uptimePercent: expectedTotal > 0 ? (100 * up) / expectedTotal : null,
    readAt: now,
  };
}

/** Records this minute's state unless another instance already did; prunes what is past 91 days. */
export async function recordStatusSample(db: Queryable, state: PublicState): Promise<void> {
  await db.query(
    `WITH pruned AS (DELETE FROM status_samples WHERE minute < now() - make_interval(days => $2::int + 1))
     INSERT INTO status_samples (minute, state) VALUES (date_trunc('minute', now()), $1::text) ON CONFLICT (minute) DO NOTHING`,
    [state, UPTIME_DAYS],
  );
}

export class StatusBoard {
  private slow: SlowStatus = EMPTY;
  private timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private readonly db: Queryable;
  private readonly appState: AppStateWatcher;
  private readonly logger: Logger;
  private readonly refreshMs: number;
  private readonly sampleMs: number;

  constructor(options: { db: Queryable; appState: AppStateWatcher; logger: Logger; refreshMs?: number; sampleMs?: number }) {
    this.db = options.db;
    this.appState = options.appState;
    this.logger = options.logger;
    this.refreshMs = options.refreshMs ?? 30_000;
    this.sampleMs = options.sampleMs ?? 60_000;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.sample();
    this.timers = [setInterval(() => void this.refresh(), this.refreshMs), setInterval(() => this.sample(), this.sampleMs)];
    for (const timer of this.timers) timer.unref();
    // A state change (maintenance on, an emergency) is rare and what people come to see: re-read at once.
    this.unsubscribe = this.appState.onChange(() => void this.refresh());
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.unsubscribe?.();
  }

  /** The page's whole content, from memory. */
  get current(): { state: PublicState; appState: AppState; slow: SlowStatus } {
    const appState = this.appState.current;
    return { state: publicStateOf(appState, this.slow), appState, slow: this.slow };
  }

  /** Re-reads the slow parts; a call during a read makes another read follow it (the change may have come after it began). */
  refresh(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = readSlowStatus(this.db)
      .then(
        (slow) => {
          this.slow = slow;
        },
        (error: unknown) => this.logger.warn({ err: describeError(error) }, 'could not refresh the status page; showing the last known figures'),
      )
      .finally(() => {
        this.reading = undefined;
        if (this.again) {
          this.again = false;
          void this.refresh();
        }
      });
    return this.reading;
  }

  private sample(): void {
    recordStatusSample(this.db, this.current.state).catch((error: unknown) =>
      this.logger.warn({ err: describeError(error) }, 'could not record a status sample'),
    );
  }
}
