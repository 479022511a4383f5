/**
 * What the runner needs from its surroundings, resolved once per command: configuration,
 * logger, app profile, alert sink, policy, how to open the database, who watches, who to
 * ask, the operator's interrupt signal and the clock.
 */
import { shipshapeProfile, type AppProfile } from '../../app-profile.ts';
import type { Config } from '../../config/index.ts';
import { openDatabase, type Database } from '../../db/index.ts';
import type { Logger } from '../../log.ts';
import { logAlertSink, type AlertSink } from './alerts.ts';
import { silentObserver, type Prompter, type RunObserver } from './io.ts';
import { enginePolicyFrom, type EnginePolicy } from './policy.ts';
import { createJsonRedactor, secretsOf, type JsonRedactor } from './redact.ts';
import type { Risk } from './types.ts';

export interface EngineDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly profile?: AppProfile | undefined;
  /** Default: a sink that writes alerts to the log. */
  readonly alerts?: AlertSink | undefined;
  /** Default: the policy the configuration sets. */
  readonly policy?: EnginePolicy | undefined;
  /** Default: `openDatabase` from src/db (DATABASE_URL, or the embedded database). */
  readonly openDatabase?: ((config: Config, logger: Logger) => Promise<Database>) | undefined;
  readonly observer?: RunObserver | undefined;
  /** Present only when a person at a terminal can answer; absent → flags are required. */
  readonly prompter?: Prompter | undefined;
  /** Aborted by the operator's first Ctrl-C: the current step is told, then the run rolls back. */
  readonly signal?: AbortSignal | undefined;
  readonly now?: (() => Date) | undefined;
}

export interface Engine {
  readonly config: Config;
  readonly logger: Logger;
  readonly profile: AppProfile;
  readonly alerts: AlertSink;
  readonly policy: EnginePolicy;
  readonly openDatabase: (config: Config, logger: Logger) => Promise<Database>;
  readonly observer: RunObserver;
  readonly prompter: Prompter | undefined;
  readonly signal: AbortSignal;
  readonly now: () => Date;
  readonly redactor: JsonRedactor;
}

export function resolveEngine(deps: EngineDeps): Engine {
  return {
    config: deps.config,
    logger: deps.logger,
    profile: deps.profile ?? shipshapeProfile,
    alerts: deps.alerts ?? logAlertSink(deps.logger),
    policy: deps.policy ?? enginePolicyFrom(deps.config),
    openDatabase: deps.openDatabase ?? ((config, logger) => openDatabase(config, logger, 'shipshape-run')),
    observer: deps.observer ?? silentObserver,
    prompter: deps.prompter,
    signal: deps.signal ?? new AbortController().signal,
    now: deps.now ?? (() => new Date()),
    redactor: createJsonRedactor(secretsOf(deps.config)),
  };
}

const riskRank: Record<Risk, number> = { none: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** medium and above: the operator confirms (or passes --yes), and alerts announce the run. */
export function needsConfirmation(risk: Risk): boolean {
  return riskRank[risk] >= riskRank.medium;
}

/** high and critical: a second operator's approval too, and a page when they fail. */
export function needsApproval(risk: Risk): boolean {
  return riskRank[risk] >= riskRank.high;
}
