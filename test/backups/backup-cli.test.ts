/**
 * `db backup`, `db backups`, `db verify` and `db prune` from the CLI on a real PostgreSQL:
 * an upload that fails part-way leaves nothing that looks valid, a pg_dump older than the
 * server is refused with both versions named, an archive pg_restore cannot read fails the
 * backup as it streams, a backup is checked on its way in rather than downloaded again, a
 * backup whose restore does not match its manifest fails verification, and retention
 * deletes only what it says it would.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, cp, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { openObjectStore } from '../../src/adapters/storage/index.ts';
import { startS3rver, type FakeS3 } from '../fakes/s3.ts';
import { startSlackWebhook, type FakeSlackWebhook } from '../fakes/slack.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { jsonOf, prepareAppDatabase, shipshape, takeBackup, withClient } from '../helpers/backups.ts';

let s3: FakeS3;
let slack: FakeSlackWebhook;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  [s3, slack] = await Promise.all([startS3rver(), startSlackWebhook()]);
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await Promise.all([s3.close(), slack.close()]);
});

async function setup(): Promise<{ database: TestDatabase; stateDir: string; env: Record<string, string> }> {
  const database = await createTestDatabase('shipshape_bk');
  cleanups.push(() => database.drop());
  const state = await createStateDir();
  cleanups.push(state.cleanup);
  await prepareAppDatabase(database.url);
  return { database, stateDir: state.path, env: { DATABASE_URL: database.url, STATE_DIR: state.path, SHIPSHAPE_OPERATOR: 'alice' } };
}

/** The variables that point `db backup` at the fake S3 under `prefix`. */
function s3Env(prefix: string) {
  return {
    BACKUP_STORAGE_URL: `s3://${s3.bucket}/${prefix}`,
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: 'true',
    AWS_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
}

const listingSchema = z.object({ backups: z.array(z.object({ id: z.string(), state: z.string(), verified: z.string() })) });

describe('db backup', () => {
  test('an upload that fails part-way ends with exit 1, no backup listed as good, no multipart upload left open, and #ops-backups told', async () => {
    const s = await setup();
    // Enough incompressible text for a multipart upload (over the 8 MiB part size) with -Z0.
    await withClient(s.database.url, (client) =>
      client.query(
        `INSERT INTO tasks (user_id, title, notes)
           SELECT (SELECT id FROM users LIMIT 1), 'bulk ' || n, repeat(md5(random()::text), 280) FROM generate_series(1, 1100) AS n`,
      ),
    );
    const routing = path.join(s.stateDir, 'alert-routing.json');
    await writeFile(routing, JSON.stringify({ channels: { '#ops-backups': { slack: slack.hookUrl('#ops-backups') } } }));
    const prefix = `failing-${s.database.name}`;
    const env = { ...s.env, ...s3Env(prefix), ALERT_ROUTING_FILE: routing };
    // Every attempt at the second part fails, retries included.
    s3.injectFault({ match: (r) => r.method === 'PUT' && r.key.startsWith(prefix) && r.query.get('partNumber') === '2', when: 'before', times: 50 });

    const outcome = await shipshape(['db', 'backup', '--compression', '0', '--json'], env);
    assert.equal(outcome.code, 1, `${outcome.stdout}\n${outcome.stderr}`);
    assert.equal(jsonOf(outcome).state, 'failed');
    const listed = await shipshape(['db', 'backups', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(listingSchema.parse(jsonOf(listed)).backups, [], 'nothing under the prefix looks like a backup');
    assert.ok(
      s3.requests().some((r) => r.method === 'POST' && r.query.has('uploads') && r.key.startsWith(prefix)),
      'the dump went up in parts, so it failed part-way',
    );
    assert.equal(await s3.pendingMultipartUploads(), 0);
    assert.ok(slack.messagesFor('#ops-backups').length > 0, '#ops-backups heard about the failure');
  });

  test('without --verify-restore the summary shows "– verify-restore: not asked (--verify-restore)", never "✓ verify-restore (0 ms)", and the manifest says it was not restore-tested', async () => {
    const s = await setup();
    const outcome = await shipshape(['db', 'backup'], s.env);
    assert.equal(outcome.code, 0, `${outcome.stdout}\n${outcome.stderr}`);
    assert.match(outcome.stdout, /– verify-restore: not asked \(--verify-restore\)/);
    assert.doesNotMatch(outcome.stdout, /✓ verify-restore/);
    assert.match(outcome.stdout, /✓ manifest/);
    const [entry] = listingSchema.parse(jsonOf(await shipshape(['db', 'backups', '--json'], s.env))).backups;
    assert.ok(entry, 'the backup is listed');
    const manifest: unknown = JSON.parse(await readFile(path.join(s.stateDir, 'backups', entry.id, 'manifest.json'), 'utf8'));
    assert.equal(z.object({ verification: z.object({ restoreTested: z.boolean() }) }).parse(manifest).verification.restoreTested, false);
  });

  test('a pg_dump older than the server is refused before anything is written, naming both versions and how to get the right one', async () => {
    const s = await setup();
    const bin = path.join(s.stateDir, 'old-bin');
    await mkdir(bin);
    await writeFile(path.join(bin, 'pg_dump'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 12.22"\n');
    await chmod(path.join(bin, 'pg_dump'), 0o755);
    const outcome = await shipshape(['db', 'backup'], { ...s.env, PG_BIN_DIR: bin });
    assert.equal(outcome.code, 3);
    assert.match(outcome.stderr, /pg_dump 12\.22 is older than the server \(PostgreSQL 15\.\d+\).*postgresql-client-15/);
  });

  test('an archive pg_restore cannot read is caught as it streams: exit 1, nothing listed, no dump left in storage', async () => {
    const s = await setup();
    // A pg_dump that exits 0 although its archive is damaged (its magic bytes overwritten).
    const bin = path.join(s.stateDir, 'damaging-bin');
    await mkdir(bin);
    const [realDump, realRestore] = ['pg_dump', 'pg_restore'].map((tool) => execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim());
    await writeFile(
      path.join(bin, 'pg_dump'),
      `#!/bin/sh\nif [ "$1" = "--version" ]; then exec "${realDump}" --version; fi\n"${realDump}" "$@" | { head -c 5 > /dev/null; printf 'XXXXX'; cat; }\n`,
    );
    await chmod(path.join(bin, 'pg_dump'), 0o755);
    await symlink(realRestore ?? 'pg_restore', path.join(bin, 'pg_restore'));

    const outcome = await shipshape(['db', 'backup', '--json'], { ...s.env, PG_BIN_DIR: bin });
    assert.equal(outcome.code, 1, `${outcome.stdout}\n${outcome.stderr}`);
    assert.equal(jsonOf(outcome).state, 'failed');
    assert.match(outcome.stderr, /does not verify: pg_restore --list rejects it \(pg_restore exited with code 1: .*not appear to be a valid archive\)/);
    assert.deepEqual(listingSchema.parse(jsonOf(await shipshape(['db', 'backups', '--json'], s.env))).backups, []);
    const stored = await readdir(path.join(s.stateDir, 'backups'), { recursive: true, withFileTypes: true }).catch(() => []);
    assert.deepEqual(
      stored.filter((entry) => entry.isFile()).map((entry) => entry.name),
      [],
      'the damaged dump was removed',
    );
  });

  test('a backup to S3 is checked as it streams, then its stored copy is read back once; the manifest lists the checks', async () => {
    const s = await setup();
    const prefix = `streamed-${s.database.name}`;
    const env = { ...s.env, ...s3Env(prefix) };
    const backupId = await takeBackup(env);
    const dumpKey = `${prefix}/${backupId}/dump`;
    assert.equal(s3.requests().filter((r) => r.key === dumpKey && r.method === 'GET').length, 1, 'the stored copy was read back, once');
    const store = openObjectStore(env.BACKUP_STORAGE_URL, s3.storageOptions);
    const manifest = z
      .object({ verification: z.object({ checks: z.array(z.string()) }) })
      .parse(JSON.parse((await store.getBuffer(`${backupId}/manifest.json`).finally(() => store.close())).toString('utf8')));
    const checks = manifest.verification.checks.join('\n');
    assert.match(checks, /SHA-256 [0-9a-f]{12}… measured as it streamed/);
    assert.match(checks, /pg_restore --list accepts it \(fed from the dump as it streamed\): \d+ entries, data for all \d+ tables/);
    assert.match(checks, /size \d+ bytes and SHA-256 [0-9a-f]{12}… match on re-read from s3:\/\//);
  });

  test('a backup whose scratch restore does not match the manifest’s row counts fails `db verify --restore` and is listed as failed', async () => {
    const s = await setup();
    const backupId = await takeBackup(s.env);
    const manifestFile = path.join(s.stateDir, 'backups', backupId, 'manifest.json');
    const manifest: unknown = JSON.parse(await readFile(manifestFile, 'utf8'));
    const parsed = z
      .object({ tables: z.array(z.object({ name: z.string(), rows: z.number() })) })
      .passthrough()
      .parse(manifest);
    const tables = parsed.tables.map((table) => (table.name === 'public.tasks' ? { ...table, rows: table.rows + 1 } : table));
    await writeFile(manifestFile, JSON.stringify({ ...parsed, tables }));

    const verified = await shipshape(['db', 'verify', backupId, '--restore'], s.env);
    assert.equal(verified.code, 3);
    assert.match(verified.stderr, /restores with different row counts \(public\.tasks: 6 restored, 7 in the manifest\)/);
    const listed = listingSchema.parse(jsonOf(await shipshape(['db', 'backups', '--json'], s.env)));
    assert.equal(listed.backups.find((entry) => entry.id === backupId)?.state, 'failed-verification');
  });
});

describe('db prune', () => {
  test('--dry-run lists what retention would delete and deletes nothing; the real run deletes exactly that and keeps the newest', async () => {
    const s = await setup();
    const newest = await takeBackup(s.env);
    const backups = path.join(s.stateDir, 'backups');
    const databaseTag = newest.replace(/^b-\d{8}-\d{6}-/, '');
    // Older copies of the same backup, as if taken on earlier days.
    const older = ['20250105', '20250104', '20241201'].map((day) => `b-${day}-020000-${databaseTag}`);
    for (const [index, id] of older.entries()) {
      await cp(path.join(backups, newest), path.join(backups, id), { recursive: true });
      const manifest = z.record(z.string(), z.unknown()).parse(JSON.parse(await readFile(path.join(backups, id, 'manifest.json'), 'utf8')));
      const dump = z.record(z.string(), z.unknown()).parse(manifest.dump);
      const day = older[index]?.slice(2, 10) ?? '';
      const createdAt = `${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6, 8)}T02:00:00.000Z`;
      await writeFile(path.join(backups, id, 'manifest.json'), JSON.stringify({ ...manifest, id, createdAt, dump: { ...dump, objectKey: `${id}/dump` } }));
    }
    const keepArgs = ['--keep-daily', '2', '--keep-weekly', '0', '--keep-monthly', '0'];

    const planned = await shipshape(['db', 'prune', ...keepArgs, '--dry-run'], s.env);
    assert.equal(planned.code, 0, planned.stderr);
    assert.match(planned.stdout, new RegExp(`would delete ${older[1]} \\(outside the retention policy\\), ${older[2]} \\(outside the retention policy\\)`));
    assert.equal(listingSchema.parse(jsonOf(await shipshape(['db', 'backups', '--json'], s.env))).backups.length, 4, 'a dry run deletes nothing');

    const pruned = await shipshape(['db', 'prune', ...keepArgs, '--yes', '--yes-irreversible', '--json'], s.env);
    assert.equal(pruned.code, 0, `${pruned.stdout}\n${pruned.stderr}`);
    const remaining = listingSchema.parse(jsonOf(await shipshape(['db', 'backups', '--json'], s.env))).backups.map((entry) => entry.id);
    assert.deepEqual(remaining, [newest, older[0]]);
  });
});
