/**
 * How the runner talks to whoever watches it: an observer that sees every journaled event
 * and byte progress (a live terminal list, plain lines, or nothing), and a prompter for
 * confirmations, present only when there is a person at a terminal to ask.
 */
import type { JournalEntry } from './journal.ts';
import type { StepStatus } from './run-record.ts';

export interface ProgressUpdate {
  readonly bytes: number;
  readonly totalBytes?: number | undefined;
  readonly label?: string | undefined;
}

export interface RunView {
  readonly runId: string;
  readonly mode: 'run' | 'resume' | 'rollback';
  readonly command: string;
  readonly title: string;
  readonly steps: ReadonlyArray<{ readonly id: string; readonly title: string; readonly status: StepStatus; readonly durationMs: number | undefined }>;
}

export interface RunObserver {
  /** Once the run exists (or is loaded), before its first event of this attempt. */
  begin(view: RunView): void;
  event(entry: JournalEntry): void;
  progress(step: string | undefined, update: ProgressUpdate): void;
  /** The attempt is over; stop timers and leave the terminal tidy. */
  end(): void;
}

export const silentObserver: RunObserver = {
  begin: () => undefined,
  event: () => undefined,
  progress: () => undefined,
  end: () => undefined,
};

export interface Prompter {
  /** A yes/no question; anything but yes is no. */
  confirm(question: string): Promise<boolean>;
  /** Asks the operator to type `expected` exactly (for irreversible steps). */
  typed(question: string, expected: string): Promise<boolean>;
}
