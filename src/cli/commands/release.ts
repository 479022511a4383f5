/**
 * `shipshape release list|show|status|advance|review-requested`: the release records and the
 * rollout in progress. (`release deploy|halt|resume|complete|rollback` are procedures and come
 * from the registry.)
 */
import type { Command } from 'commander';
import { recordAudit } from '../../domain/audit.ts';
import { API_ERROR_RATE, CRASH_FREE_SESSIONS } from '../../domain/health-gate.ts';
import { currentRollout, getRelease, listReleases, releaseJson, type Release } from '../../domain/releases.ts';
import { ShipError } from '../../errors.ts';
import { evaluateGates, gateSettings, type GateResult } from '../../ops/release/gates.ts';
import { advanceRelease } from '../../ops/release/rollout.ts';
import { cliContext, withDatabase } from '../context.ts';
import { emit, table } from '../output.ts';

function releaseCommand(program: Command): Command {
  const release = program.commands.find((command) => command.name() === 'release') ?? program.command('release');
  return release.description('app releases: deploy, staged rollout under health gates, rollback (runbook: Deployment Operations)');
}

export function registerRelease(program: Command): void {
  const release = releaseCommand(program);

  release
    .command('list')
    .description('the releases recorded, newest first: version, state, rollout per platform')
    .option('--limit <n>', 'how many', '20')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { limit: string; json: boolean }) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new ShipError('SHIP_ERR_VALIDATION', '--limit must be a whole number from 1 to 500.');
      const context = cliContext();
      const releases = await withDatabase(context, (db) => listReleases(db.pool, limit));
      emit(options, { releases: releases.map(releaseJson) }, () =>
        releases.length === 0
          ? 'No releases recorded yet. `shipshape release deploy --bump patch|minor|major` ships one.'
          : table(
              ['VERSION', 'STATE', 'IOS', 'ANDROID', 'CREATED', 'BY'],
              releases.map((r) => [r.version, r.state, rolloutText(r, 'ios'), rolloutText(r, 'android'), r.createdAt.toISOString(), r.createdBy]),
            ),
      );
    });

  release
    .command('show <version>')
    .description('one release: tag, commit, builds, submissions, rollouts, last gate reading')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (version: string, options: { json: boolean }) => {
      const context = cliContext();
      const found = await withDatabase(context, (db) => getRelease(db.pool, version));
      emit(options, { release: releaseJson(found) }, () => describe(found));
    });

  release
    .command('status')
    .description('the rollout in progress: each platform’s fraction, the gate values now, the next step’s time')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { json: boolean }) => {
      const context = cliContext();
      const result = await withDatabase(context, async (db) => {
        const current = await currentRollout(db.pool);
        const latest = current ?? (await listReleases(db.pool, 1))[0];
        if (latest === undefined) return undefined;
        const gate = await evaluateGates({ candidate: latest.version, control: latest.controlVersion, db: db.pool, ...gateSettings(context.config) });
        return { release: latest, gate };
      });
      if (result === undefined) {
        emit(options, { release: null }, () => 'No releases recorded yet.');
        return;
      }
      emit(
        options,
        { release: releaseJson(result.release), gates: result.gate },
        () => `${describe(result.release)}\n\nGates now (${result.gate.verdict}):\n${gateLines(result.gate)}`,
      );
    });

  release
    .command('advance')
    .description('evaluate the gates of the release rolling out now and move, hold or halt it (what the scheduler does each step)')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { json: boolean }) => {
      const context = cliContext();
      const outcome = await withDatabase(context, async (db) => {
        const current = await currentRollout(db.pool);
        if (current === undefined)
          throw new ShipError('SHIP_ERR_PREREQUISITE_FAILED', 'No release is rolling out. `shipshape release list` shows the releases.');
        return advanceRelease({ config: context.config, logger: context.logger, db: db.pool, actor: `operator:${context.config.operator}` }, current.version);
      });
      emit(options, outcome, (o) =>
        [
          `${o.version}: ${o.summary}`,
          ...o.rollouts.map((r) => `  ${r.platform}: ${r.status} at ${(r.fraction * 100).toFixed(0)} %`),
          ...o.errors.map((e) => `  FAILED ${e}`),
          o.paged ? '  paged the Application on-call' : '',
        ]
          .filter(Boolean)
          .join('\n'),
      );
      if (outcome.errors.length > 0) process.exitCode = 4;
    });

  release
    .command('review-requested <version>')
    .description('record that a person requested the expedited review `release rollback` printed the steps for')
    .action(async (version: string) => {
      const context = cliContext();
      await withDatabase(context, async (db) => {
        await getRelease(db.pool, version);
        await recordAudit(db.pool, { actor: `operator:${context.config.operator}`, action: 'release.expedited-review.requested', details: { version } });
      });
      process.stdout.write(`Recorded: ${context.config.operator} requested an expedited review of ${version}.\n`);
    });
}

function rolloutText(release: Release, platform: 'ios' | 'android'): string {
  const rollout = release.rollouts.find((r) => r.platform === platform);
  return rollout === undefined ? '-' : `${rollout.status} ${Number((rollout.fraction * 100).toFixed(2))}%`;
}

function describe(r: Release): string {
  const lines = [
    `Release ${r.version} (${r.gitTag}${r.gitCommit ? ` at ${r.gitCommit.slice(0, 12)}` : ''}): ${r.state}`,
    `  created ${r.createdAt.toISOString()} by ${r.createdBy}${r.runId ? ` (run ${r.runId})` : ''}; gates compare against ${r.controlVersion ?? 'fixed limits'}`,
  ];
  for (const platform of ['ios', 'android'] as const) {
    const build = r.builds[platform];
    const submission = r.submissions[platform];
    const rollout = r.rollouts.find((o) => o.platform === platform);
    lines.push(
      `  ${platform}: build ${build ? `${build.id} ${build.status}${build.buildVersion ? ` (${build.buildVersion})` : ''}` : '-'}; submission ${submission ? (submission.submissionId ?? 'yes') : '-'}; rollout ${rollout ? `${rollout.status} at ${Number((rollout.fraction * 100).toFixed(2))} %` : '-'}`,
    );
  }
  if (r.nextStepAt) lines.push(`  next step: ${r.nextStepAt.toISOString()} (if the gates hold)`);
  if (r.rolledBackAt) lines.push(`  rolled back ${r.rolledBackAt.toISOString()} by ${r.rolledBackBy ?? '?'}`);
  return lines.join('\n');
}

function gateLines(gate: GateResult): string {
  return [
    `  ${CRASH_FREE_SESSIONS.name}: ${gate.crashFree.verdict} — ${gate.crashFree.detail}`,
    `  ${API_ERROR_RATE.name}: ${gate.errorRate.verdict} — ${gate.errorRate.detail}`,
  ].join('\n');
}
