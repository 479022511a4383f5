/**
 * The one place where what a command found becomes the process's exit code (PRODUCT.md:
 * 0 done and verified, 1 failed, 2 usage or bad input, 3 a prerequisite was not met, 4 a human
 * must act, 5 done but unverified). Errors carry their code in the catalogue (src/errors.ts);
 * a procedure's report carries the code its engine decided; a check that found something says
 * so here. Commands never write `process.exitCode` themselves.
 */
import { CommanderError } from 'commander';
import { ExitCode, explainSetupFailure, isShipError, type ShipError } from '../errors.ts';

/** What a checking command (health, doctor, a monitor) found. */
export interface Findings {
  /** Nothing failed. */
  readonly healthy: boolean;
  /** Every check could be made; `true` when the command has no such notion. */
  readonly verified?: boolean;
}

/** 0 healthy and verified; 1 something fails; 5 nothing fails but a check could not be made. */
export function exitCodeForFindings(findings: Findings): ExitCode {
  if (!findings.healthy) return ExitCode.failedRolledBack;
  return findings.verified === false ? ExitCode.unverified : ExitCode.ok;
}

/** Ends the command with this code once it returns (the process is not cut short). */
export function exitWith(code: ExitCode): void {
  process.exitCode = code;
}

/** Ends the command with what its checks found. */
export function exitWithFindings(findings: Findings): void {
  exitWith(exitCodeForFindings(findings));
}

/** The code of the command that returned normally: whatever it set, else 0. */
export function exitCodeOfCompletedCommand(): ExitCode {
  return Number(process.exitCode ?? ExitCode.ok) as ExitCode;
}

/**
 * How an error that ended a command is reported: commander's own (usage, --help, --version),
 * a catalogued ShipError or a setup failure explained as one, or `undefined` for a bug.
 */
export function classifyFailure(error: unknown): { readonly exitCode: ExitCode; readonly known?: ShipError | undefined } | undefined {
  // --help and --version end in a CommanderError too, successfully.
  if (error instanceof CommanderError) return { exitCode: error.exitCode === 0 ? ExitCode.ok : ExitCode.usage };
  const known = isShipError(error) ? error : explainSetupFailure(error);
  return known ? { exitCode: known.exitCode, known } : undefined;
}

/** An error nobody foresaw: a human must look. */
export const INTERNAL_ERROR_EXIT_CODE: ExitCode = ExitCode.needsHuman;
