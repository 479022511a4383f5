/**
 * Bytes for people, in decimal units as storage providers bill them and as `df -H` shows:
 * "59.2 kB", "1.3 GB". One formatter for backups, index sizes and live progress alike.
 */
const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'] as const;

export interface BytesFormat {
  /**
   * One decimal at every size above bytes ("10.0 MB"), for a figure that keeps changing in
   * place (a progress line) and should not jump in width; by default sizes of ten and more
   * drop the decimal ("223 MB").
   */
  readonly fixedDecimal?: boolean;
}

export function formatBytes(bytes: number, format: BytesFormat = {}): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  if (unit === 0) return `${value} ${UNITS[unit]}`;
  return `${value.toFixed(format.fixedDecimal === true || value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}
