/**
 * What the runner tells people about runs, through an injected sink.
 *
 * Medium-risk and riskier runs, and procedures that name their own alert channels, are
 * announced when they start, succeed and fail; any other run that changes things is
 * announced when it fails. A failed high or critical run, and any run left needing
 * attention, pages the on-call. The
 * alerter in `src/adapters/alerts/` satisfies `AlertSink` structurally; the default sink
 * writes to the log. A sink that fails or throws never changes how a run ends.
 */
import { describeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { IssueType } from './types.ts';

export type AlertSeverity = 'info' | 'warning' | 'error' | 'critical';

export interface EngineAlert {
  issueType: IssueType;
  severity: AlertSeverity;
  /** `procedure.started`, `procedure.succeeded`, `procedure.failed`, `procedure.needs-attention`, `procedure.approval-requested`. */
  event: string;
  title: string;
  text: string;
  channelHints?: string[];
  dedupKey?: string;
  page?: 'trigger' | 'resolve';
  details?: Record<string, string | number | boolean>;
}

export interface AlertSink {
  send(alert: EngineAlert): Promise<unknown>;
}

export function logAlertSink(logger: Logger): AlertSink {
  return {
    async send(alert) {
      const level = alert.severity === 'info' ? 'info' : alert.severity === 'warning' ? 'warn' : 'error';
      logger[level]({ alert: alert.event, issueType: alert.issueType, page: alert.page, details: alert.details }, `${alert.title}: ${alert.text}`);
    },
  };
}

/** Delivers without ever throwing; a broken sink is logged and forgotten. */
export async function sendSafely(sink: AlertSink, alert: EngineAlert, logger: Logger): Promise<boolean> {
  try {
    await sink.send(alert);
    return true;
  } catch (error) {
    logger.warn({ alert: alert.event, err: describeError(error) }, 'alert could not be sent; the run goes on');
    return false;
  }
}

/** The dedup key of a run's page, so a later success can resolve it. */
export function pageKey(runId: string): string {
  return `shipshape-run-${runId}`;
}
