/**
 * Benchmark 2, backup: `shipshape db backup` of a generated ~1 GB database to file storage
 * and to s3rver, against the runbook's pipeline done by hand in the same run
 * (`pg_dump --format=custom` → `gzip` → copy into the store). Pending until the procedure lands.
 */
import type { PendingBenchmark } from './lib/types.ts';

export const benchmark: PendingBenchmark = {
  name: 'backup',
  order: 2,
  title: 'Backup',
  description:
    '`shipshape db backup` of a generated database of about 1 GB, to file storage and to s3rver, against the runbook\'s ' +
    'own pipeline run by hand in the same run (`pg_dump --format=custom`, then `gzip`, then a copy into the store). ' +
    'Reports the wall-time ratio, bytes stored, and peak RSS of our process at 250 MB and at 1 GB (it must stay flat).',
  pending: {
    reason: 'The backup procedure (`shipshape db backup`, issue 3) has not landed: src/ops/procedures/ holds no backup procedure yet.',
    waitsFor: ['src/ops/procedures/*backup*'],
  },
};
