/**
 * The operations engine: runs runbook procedures with gates, locks, a journal, rollback,
 * resume and alerts. Procedure authors need `types.ts` and `registry.ts`; the CLI needs
 * the rest. See docs/engine.md.
 */
export { defineProcedure, issueTypes, outputOf, requireOutput, risks, stepFor, unverified } from './types.ts';
export type { Check, CheckResult, IssueType, JsonObject, JsonValue, OutputSource, Procedure, Risk, RunContext, Step, StepWithOutput } from './types.ts';
export { procedureEntry, commonFlagNames } from './registry.ts';
export type { CliArgumentSpec, CliOptionSpec, ProcedureCli, ProcedureEntry } from './registry.ts';
export { parseParams, resumeRun, rollbackRun, runProcedure } from './runner.ts';
export type { ContinueOptions, RunOptions } from './runner.ts';
export { approveRun, refuseRun, waitForApprovalDecision } from './approve.ts';
export type { ApprovalDecision, ApprovalResult, ApproveDeps, RefusalResult, RefuseOptions } from './approve.ts';
export { listRuns, loadRun } from './runs.ts';
export type { EngineDeps } from './engine.ts';
export { configuredAlerter, logAlertSink, pageKey } from './alerts.ts';
export type { AlertSink } from './alerts.ts';
export { enginePolicyFrom } from './policy.ts';
export type { EnginePolicy } from './policy.ts';
export type { Prompter, ProgressUpdate, RunObserver, RunView } from './io.ts';
export { silentObserver } from './io.ts';
export type { ReportMode, ReportState, RunReport, StepReport } from './report.ts';
export type { RunRecord, RunState, StepStatus } from './run-record.ts';
export { runStates } from './run-record.ts';
export type { JournalEntry } from './journal.ts';
export { journalPath } from './journal.ts';
export { lockFilePath } from './locks.ts';
export { isRunId } from './run-id.ts';
