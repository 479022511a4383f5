/**
 * `shipshape admin-token list|rotate|revoke|reveal`: admin bearer tokens as hashed records
 * (src/domain/admin-tokens.ts). `rotate` prints the new token once; the maintenance run's
 * rotation leaves it in a 0600 file for `reveal`, which prints it once and deletes the file.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { formatDurationMs, parseDuration } from '../../config/duration.ts';
import { listAdminTokens, revokeAdminToken, rotateAdminTokens, type AdminToken } from '../../domain/admin-tokens.ts';
import { recordAudit } from '../../domain/audit.ts';
import { ShipError } from '../../errors.ts';
import { maintenanceDir } from '../../ops/maintenance/maintenance-log.ts';
import { NEW_ADMIN_TOKEN_FILE } from '../../ops/procedures/maintenance-run.ts';
import { cliContext, withDatabase } from '../context.ts';
import { emit, table } from '../output.ts';

export function registerAdminToken(program: Command): void {
  const tokens = program.command('admin-token').description('admin API tokens: list, rotate (old ones keep working for an overlap), revoke');

  tokens
    .command('list')
    .description('admin tokens and their state (the tokens themselves are never stored)')
    .option('--all', 'include tokens that expired or were revoked more than 7 days ago', false)
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { all: boolean; json: boolean }) => {
      const context = cliContext();
      const rows = await withDatabase(context, ({ pool }) => listAdminTokens(pool, { includeDead: options.all }));
      emit(options, { tokens: rows }, ({ tokens: shown }) => describeTokens(shown, context.config.adminToken !== undefined));
    });

  tokens
    .command('rotate')
    .description('issue a new admin token and expire every other one (ADMIN_TOKEN included) after the overlap')
    .option('--overlap <duration>', 'how long the old tokens keep working (default ADMIN_TOKEN_OVERLAP, 24h)')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { overlap?: string; json: boolean }) => {
      const context = cliContext();
      const overlapMs = options.overlap === undefined ? context.config.maintenance.adminTokenOverlapMs : parseDuration(options.overlap);
      if (overlapMs === undefined || overlapMs < 0)
        throw new ShipError('SHIP_ERR_VALIDATION', `--overlap: "${options.overlap ?? ''}" is not a duration; write it like 1h or 24h.`);
      const actor = `operator:${context.config.operator}`;
      const rotation = await withDatabase(context, async ({ pool }) => {
        const done = await rotateAdminTokens(pool, { createdBy: actor, overlapMs, environmentToken: context.config.adminToken });
        await recordAudit(pool, {
          actor,
          action: 'admin.tokens.rotated',
          details: { tokenId: done.record.id, expiring: done.expiring.length, overlapEndsAt: done.overlapEndsAt.toISOString() },
        });
        return done;
      });
      process.stderr.write(
        `This is the only time the new token is shown. ${rotation.expiring.length} older token(s) stop working at ${rotation.overlapEndsAt.toISOString()} (in ${formatDurationMs(overlapMs)}): set ADMIN_TOKEN to the new one everywhere before then.\n`,
      );
      emit(
        options,
        { token: rotation.token, id: rotation.record.id, overlapEndsAt: rotation.overlapEndsAt, expiring: rotation.expiring.map((token) => token.id) },
        (r) => r.token,
      );
    });

  tokens
    .command('revoke <id>')
    .description('end an admin token now')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (id: string, options: { json: boolean }) => {
      const context = cliContext();
      const actor = `operator:${context.config.operator}`;
      const token = await withDatabase(context, async ({ pool }) => {
        const revoked = await revokeAdminToken(pool, id, actor);
        await recordAudit(pool, { actor, action: 'admin.tokens.revoked', details: { tokenId: id } });
        return revoked;
      });
      emit(options, { token }, ({ token: shown }) => `Revoked admin token ${shown.id} (${shown.label}).`);
    });

  tokens
    .command('reveal')
    .description('print the admin token the last maintenance rotation issued, once (the file is deleted)')
    .action(async () => {
      const { config } = cliContext();
      const file = path.join(maintenanceDir(config), NEW_ADMIN_TOKEN_FILE);
      let token: string;
      try {
        token = (await readFile(file, 'utf8')).trim();
      } catch {
        throw new ShipError(
          'SHIP_ERR_NOT_FOUND',
          `There is no unrevealed admin token (${file} does not exist): it was revealed already, or no maintenance run rotated the tokens. Issue one with \`shipshape admin-token rotate\`.`,
        );
      }
      await rm(file, { force: true });
      process.stderr.write('This is the only time this token is shown; the file holding it is deleted.\n');
      process.stdout.write(`${token}\n`);
    });
}

function describeTokens(rows: readonly AdminToken[], environmentSet: boolean): string {
  const body =
    rows.length === 0
      ? 'No admin tokens are recorded.'
      : table(
          ['id', 'label', 'state', 'expires', 'last used', 'created by'],
          rows.map((row) => [
            row.id,
            row.label,
            row.state,
            row.expiresAt?.toISOString() ?? (row.state === 'revoked' ? row.revokedAt?.toISOString() : 'never'),
            row.lastUsedAt?.toISOString(),
            row.createdBy,
          ]),
        );
  const recorded = rows.some((row) => row.source === 'environment');
  const note = environmentSet && !recorded ? '\nADMIN_TOKEN (environment) is valid too: it is recorded here, with an expiry, at the first rotation.' : '';
  return `${body}${note}`;
}
