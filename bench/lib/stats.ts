/**
 * The arithmetic of "median with min and max": every figure in the results is one of
 * these over repeated runs, never a single run.
 */

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  const sorted = [...values].sort((a, b) => a - b);
  return { median: quantileOfSorted(sorted, 0.5), min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN };
}

/** Latency percentiles of one run, in milliseconds. */
export interface Percentiles {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
}

/** Nearest-rank percentiles (what wrk, pgbench's `--log` readers and HdrHistogram report). */
export function percentiles(samples: Float64Array): Percentiles {
  const sorted = samples.slice().sort();
  return { p50: nearestRank(sorted, 0.5), p95: nearestRank(sorted, 0.95), p99: nearestRank(sorted, 0.99) };
}

function nearestRank(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/** The median of an even count is the mean of the middle two. */
function quantileOfSorted(sorted: readonly number[], q: number): number {
  const position = (sorted.length - 1) * q;
  const low = sorted[Math.floor(position)] ?? Number.NaN;
  const high = sorted[Math.ceil(position)] ?? Number.NaN;
  return low + (high - low) * (position - Math.floor(position));
}

/** 12,345 / 12.3 / 0.123: enough digits to compare, no more. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const magnitude = Math.abs(value);
  const digits = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatSpread(value: Spread): string {
  return `${formatNumber(value.median)} (${formatNumber(value.min)}–${formatNumber(value.max)})`;
}

export function formatRatio(value: Spread): string {
  if (!Number.isFinite(value.median)) return '–';
  return `${value.median.toFixed(2)} (${value.min.toFixed(2)}–${value.max.toFixed(2)})`;
}

/** A ratio as a multiple: "0.42× (0.38–0.47)". */
export function formatTimes(value: Spread): string {
  if (!Number.isFinite(value.median)) return '–';
  return `${value.median.toFixed(2)}× (${value.min.toFixed(2)}–${value.max.toFixed(2)})`;
}

/** Error rates need three decimals (the runbook's limit is 0.1%); shares of a whole need none. */
export function formatPercent(fraction: number, digits = 3): string {
  if (!Number.isFinite(fraction)) return '–';
  return `${(fraction * 100).toFixed(fraction === 0 ? 0 : digits)}%`;
}
