/**
 * `shipshape update publish|list|show|rollout`: over-the-air updates for the Expo app
 * (Expo Updates protocol v1, served at GET /updates/manifest). `update rollback` is a runbook
 * procedure (src/ops/procedures/update-rollback.ts): high risk, so a second operator approves it.
 *
 *   npx expo export --output-dir dist
 *   shipshape update publish dist --channel production --runtime-version 1.0.0 --staged
 *   shipshape update rollout <id> --schedule 1,5,25,50,100 --every 6h --auto-rollback
 */
import type { Command } from 'commander';
import { openObjectStore } from '../../adapters/storage/index.ts';
import { humanDuration, parseDuration } from '../../config/duration.ts';
import type { Pool } from '../../db/pool.ts';
import { parseSchedule, rolloutsOf, startRollout, type Rollout } from '../../domain/update-rollouts.ts';
import { listUpdates, publishUpdate, requireUpdate, type PublishResult, type Update, type UpdateSummary } from '../../domain/updates.ts';
import { ShipError } from '../../errors.ts';
import { cliContext, withDatabase, type CliContext } from '../context.ts';
import { emit, table } from '../output.ts';

interface PublishOptions {
  channel: string;
  runtimeVersion: string;
  message?: string;
  staged: boolean;
  json: boolean;
}

interface RolloutOptions {
  schedule: string;
  every: string;
  autoRollback: boolean;
  minSample?: string;
  json: boolean;
}

export function registerUpdate(program: Command): void {
  const update = program.command('update').description('over-the-air updates of the Expo app (Expo Updates protocol v1 at GET /updates/manifest)');

  update
    .command('publish <dist-dir>')
    .description('upload the output of `npx expo export` (metadata.json, bundles, assets), checking every file against its hash')
    .requiredOption('--channel <name>', 'the channel apps ask for (expo-channel-name), e.g. production')
    .requiredOption('--runtime-version <version>', "the runtimeVersion of the builds this update runs on (app.json's runtimeVersion)")
    .option('--message <text>', 'what the update changes, shown in `update list`')
    .option('--staged', 'store it without serving it; `update rollout <id>` then serves it to a growing share of devices', false)
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (distDir: string, options: PublishOptions) => {
      const context = cliContext();
      const store = openObjectStore(context.config.updates.storageUrl, { ...context.config.s3, settingName: 'UPDATES_STORAGE_URL' });
      const result = await withUpdates(context, async (pool) =>
        publishUpdate(pool, store, {
          distDir,
          channel: options.channel,
          runtimeVersion: options.runtimeVersion,
          message: options.message,
          actor: actor(context),
          staged: options.staged,
        }),
      );
      emit(options, result, describePublish);
    });

  update
    .command('list')
    .description('published updates, newest first, with where each is served')
    .option('--channel <name>', 'only this channel')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { channel?: string; json: boolean }) => {
      const context = cliContext();
      const updates = await withUpdates(context, async (pool) => listUpdates(pool, { channel: options.channel }));
      emit(options, { updates }, ({ updates: rows }) => describeList(rows));
    });

  update
    .command('show <id>')
    .description('one update: its platforms, files and rollouts')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (id: string, options: { json: boolean }) => {
      const context = cliContext();
      const shown = await withUpdates(context, async (pool) => ({ update: await requireUpdate(pool, id), rollouts: await rolloutsOf(pool, id) }));
      emit(options, shown, ({ update: row, rollouts }) => describeOne(row, rollouts));
    });

  update
    .command('rollout <id>')
    .description(
      'serve a staged update to a growing share of devices; the workers take each step only while its crash-free rate and API error rate hold against the control',
    )
    .option('--schedule <percentages>', 'the steps, increasing and ending at 100', '1,5,25,50,100')
    .option('--every <duration>', 'how long each step lasts before the next, e.g. 6h', '6h')
    .option('--auto-rollback', 'when the gates breach, serve the control update again (or the embedded one) instead of only halting', false)
    .option('--min-sample <n>', 'sessions and API requests the update needs before the gates judge it (default UPDATES_GATE_MIN_SAMPLE)')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (id: string, options: RolloutOptions) => {
      const context = cliContext();
      const schedule = parseSchedule(options.schedule);
      const everyMs = parseDuration(options.every);
      if (everyMs === undefined || everyMs < 1_000)
        throw new ShipError('SHIP_ERR_VALIDATION', `--every "${options.every}" is not a duration of at least 1s; write it like 30m, 6h or 1d.`);
      const minSample = options.minSample === undefined ? context.config.updates.gateMinSample : Number(options.minSample);
      if (!Number.isInteger(minSample) || minSample < 1)
        throw new ShipError('SHIP_ERR_VALIDATION', `--min-sample "${options.minSample}" must be a whole number of at least 1.`);
      const rollout = await withUpdates(context, async (pool) =>
        startRollout(pool, { updateId: id, schedule, everyMs, autoRollback: options.autoRollback, minSample, actor: actor(context) }),
      );
      emit(options, { rollout }, ({ rollout: row }) =>
        row.status === 'completed'
          ? `Update ${row.updateId} is served to every device on ${row.channel} (runtime ${row.runtimeVersion}).`
          : [
              `Rollout ${row.id}: update ${row.updateId} now goes to ${row.percent} % of devices on ${row.channel} (runtime ${row.runtimeVersion}).`,
              `Next steps ${row.schedule.slice(1).join(' → ')} %, one every ${humanDuration(row.everyMs)}, each only while the gates hold (at least ${row.minSample} sessions and requests).`,
              `On a breach the workers ${row.autoRollback ? `roll back to ${row.controlUpdateId ? `update ${row.controlUpdateId}` : 'the embedded update'}` : 'halt the rollout'} and alert. Watch it with \`shipshape update show ${row.updateId}\`.`,
            ].join('\n'),
      );
    });
}

async function withUpdates<T>(context: CliContext, fn: (pool: Pool) => Promise<T>): Promise<T> {
  return withDatabase(context, async (database) => {
    const { rows } = await database.pool.query<{ found: boolean }>("SELECT to_regclass('ota_updates') IS NOT NULL AS found");
    if (!rows[0]?.found)
      throw new ShipError(
        'SHIP_ERR_MIGRATIONS_PENDING',
        'This database has no update tables yet (migration 0012). Run `shipshape db migrate up`, or start `shipshape serve` once.',
      );
    return fn(database.pool);
  });
}

function actor(context: CliContext): string {
  return `operator:${context.config.operator}`;
}

function describePublish(result: PublishResult): string {
  const { update } = result;
  return [
    `Published update ${update.id} to ${update.channel} (runtime ${update.runtimeVersion}) for ${Object.keys(update.platforms).join(' and ')}.`,
    `${result.uploaded} files uploaded, ${result.alreadyStored} already stored; every file matched its hash.`,
    result.released
      ? 'Every device on that channel and runtime version gets it at its next check.'
      : `Staged: nothing serves it yet. Start serving it with \`shipshape update rollout ${update.id} --schedule 1,5,25,50,100 --every 6h\`.`,
  ].join('\n');
}

function describeList(rows: readonly UpdateSummary[]): string {
  if (rows.length === 0) return 'No updates published yet. Publish one with `shipshape update publish dist --channel production --runtime-version <version>`.';
  return table(
    ['id', 'channel', 'runtime', 'platforms', 'state', 'published', 'message'],
    rows.map((row) => [
      row.id,
      row.channel,
      row.runtimeVersion,
      row.platforms.join(','),
      row.state,
      row.createdAt.toISOString(),
      (row.message ?? '').slice(0, 60),
    ]),
  );
}

function describeOne(update: Update, rollouts: readonly Rollout[]): string {
  const lines = [
    `Update ${update.id}`,
    `  channel ${update.channel}, runtime ${update.runtimeVersion}, published ${update.createdAt.toISOString()} by ${update.publishedBy}`,
  ];
  if (update.message) lines.push(`  ${update.message}`);
  for (const [platform, files] of Object.entries(update.platforms)) {
    lines.push(`  ${platform}: launch asset ${files.launchAsset.sha256} (${files.launchAsset.bytes} bytes), ${files.assets.length} assets`);
  }
  for (const rollout of rollouts) {
    lines.push(
      `  rollout ${rollout.id}: ${rollout.status} at ${rollout.percent} % (schedule ${rollout.schedule.join(',')} every ${humanDuration(rollout.everyMs)}${rollout.autoRollback ? ', auto-rollback' : ''})${rollout.statusReason ? ` — ${rollout.statusReason}` : ''}`,
    );
  }
  return lines.join('\n');
}
