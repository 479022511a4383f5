/**
 * Benchmark 3, restore: `shipshape db restore` of benchmark 2's backup with `--jobs 1` and
 * with the machine's core count, against a hand-run `pg_restore` of the same file.
 * Pending until the procedure lands.
 */
import type { PendingBenchmark } from './lib/types.ts';

export const benchmark: PendingBenchmark = {
  name: 'restore',
  order: 3,
  title: 'Restore',
  description:
    '`shipshape db restore` of the backup from benchmark 2, with `--jobs 1` and with the machine\'s core count, ' +
    'against a hand-run `pg_restore` of the same file. Reports wall times and their ratio.',
  pending: {
    reason: 'The restore procedure (`shipshape db restore`, issue 3) has not landed, and it restores what benchmark 2 backs up.',
    waitsFor: ['src/ops/procedures/*restore*'],
  },
};
