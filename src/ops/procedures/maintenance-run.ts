/**
 * Runbook: "Monthly Maintenance Checklist", During Maintenance (T-0) — the runbook's
 * `maintenance.sh`, as `shipshape maintenance run`.
 *
 * When: the monthly window (first Sunday of each month, 2:00 AM PST; MAINTENANCE_WINDOW),
 * announced 72 hours before by `shipshape maintenance schedule`. The scheduler runs it at the
 * window when the `maintenance-window` schedule is on. Medium risk: it asks for confirmation.
 *
 *   1. Enable maintenance mode (and the status page, when configured).
 *   2. Backup database: a verified backup, as `shipshape db backup` takes it.
 *   3. Apply migrations: every pending migration, each in its own transaction.
 *   4. (Update dependencies: a checklist item of the plan, done in the release before the
 *      window — never `npm update` on a production host.)
 *   5. Rotate credentials: a new admin token (old ones expire after ADMIN_TOKEN_OVERLAP) and,
 *      with MAINTENANCE_ROTATE_DATABASE_PASSWORD, the application role's password.
 *   6. Clear old logs: `*.log` under APP_LOG_DIR older than APP_LOG_RETENTION_DAYS (30).
 *   7. Optimize database: VACUUM (ANALYZE).
 *   8. Run smoke tests against the running API (before it reopens).
 *   9. Disable maintenance mode (and take down the maintenance banner).
 *
 * Every step is also appended to STATE_DIR/maintenance/maintenance.log, like the script's
 * `>> maintenance.log`. Like its `set -e`, a failed step stops the run — and the app stays in
 * maintenance: step 1 is held (declared irreversible, so the engine never turns maintenance
 * off underneath a half-finished window), and so are the steps that cannot be taken back
 * automatically (migrations, rotated credentials, deleted logs). The failed step itself leaves
 * nothing half done; the engine alerts (a run left needing attention pages), and the message
 * names exactly the steps still to do. Every step checks before it acts, so running
 * `shipshape maintenance run` again after fixing the cause carries on safely.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { z } from 'zod';
import { readAppState, setBanner } from '../../domain/app-state.ts';
import { announceFrom, ownerLabel, switchMaintenance, type MaintenanceOwner } from '../../domain/maintenance-switch.ts';
import { issueAdminToken, listAdminTokens, revokeAdminToken, rotateAdminTokens } from '../../domain/admin-tokens.ts';
import { recordAudit } from '../../domain/audit.ts';
import { describeError, isShipError, ShipError } from '../../errors.ts';
import { announceAppStateChange } from '../../domain/app-state-announce.ts';
import { migratorFor } from '../../db/migrator.ts';
import { localParts } from '../../time/zoned-time.ts';
import { withClient } from '../backups/connections.ts';
import { applicationDatabaseName, databaseLockResource } from '../backups/database-target.ts';
import { backupSourceFor } from '../backups/take-backup.ts';
import { probeHealth, waitForHealth } from '../diagnostics/api-probe.ts';
import { defineProcedure, outputOf, stepFor, type JsonObject, type RunContext, type Step } from '../engine/types.ts';
import { rotateDatabasePassword } from '../maintenance/database-password.ts';
import { appendMaintenanceLog, maintenanceDir, maintenanceLogPath } from '../maintenance/maintenance-log.ts';
import { deleteLogs, findOldLogs } from '../maintenance/old-logs.ts';
import { prepareSmokeAccount, runSmokeTests, smokeSummary } from '../maintenance/smoke-tests.ts';
import { dbBackup, takeBackupInRun } from './db-backup.ts';
import { bannerJson, journaledBanner, procedureOwner, updateStatusPage } from './announcements.ts';

const params = z.object({});
type Params = z.output<typeof params>;
type Context = RunContext<Params>;

/** Banners put up by `maintenance schedule` carry this setter prefix, so the last step knows which to take down. */
export const MAINTENANCE_BANNER_SETTER = 'maintenance-notice:';
/** The new admin token of a rotation waits here (mode 0600) until `shipshape admin-token reveal` shows it once. */
export const NEW_ADMIN_TOKEN_FILE = 'new-admin-token';
const SMOKE_TOKEN_LIFETIME_MS = 15 * 60_000;

// The steps whose outputs later steps read (listed in `steps` below with the others).
const step = stepFor<Params>();

const maintenanceOn = step({
  id: 'maintenance-on',
  title: 'Enable maintenance mode',
  output: z.object({
    alreadyOn: z.boolean(),
    /** On before this run, and not left on by an earlier maintenance run. */
    heldByOthers: z.boolean(),
    setBy: z.string().nullable().optional(),
    message: z.string().optional(),
    statusPage: z.json().optional(),
  }),
  describe: ({ config }) => [
    `UPDATE app_state SET maintenance_enabled = true, maintenance_message = '${maintenanceMessage(config.maintenance.durationMs, config.maintenance.timeZone, new Date())}' — unless it is on already`,
    config.statusPageWebhookUrl === undefined
      ? 'status page: STATUS_PAGE_WEBHOOK_URL is not set (update it by hand)'
      : 'POST STATUS_PAGE_WEBHOOK_URL {"status":"maintenance", …}',
  ],
  irreversible:
    'held on purpose: when a later step fails the app stays in maintenance until an operator has looked. The last step ends it, or `shipshape maintenance off` when the window must end unfinished',
  async run(context) {
    const { pool } = await context.database();
    // Only columns every schema version has: the migrations of this release come in step 3.
    const { rows } = await pool.query<{ enabled: boolean; message: string | null; set_by: string | null }>(
      'SELECT maintenance_enabled AS enabled, maintenance_message AS message, maintenance_set_by AS set_by FROM app_state',
    );
    const before = { enabled: rows[0]?.enabled === true, message: rows[0]?.message ?? null, setBy: rows[0]?.set_by ?? null };
    const statusPage = await updateStatusPage(context, 'maintenance', 'Scheduled maintenance in progress.');
    if (before.enabled) {
      const heldByUs = before.setBy?.includes(MAINTENANCE_RUN_SETTER) ?? false;
      context.note(
        `maintenance mode was already on ("${before.message ?? ''}", set by ${before.setBy ?? '?'})` +
          (heldByUs
            ? ': an earlier maintenance run left it on; this run carries on'
            : ': left as it is, and left on at the end (whoever turned it on turns it off)'),
      );
      return { alreadyOn: true, heldByOthers: !heldByUs, setBy: before.setBy, statusPage };
    }
    const message = maintenanceMessage(context.config.maintenance.durationMs, context.config.maintenance.timeZone, new Date());
    await switchMaintenance(
      pool,
      { enabled: true, message, owner: owner(context), details: { scheduledMaintenance: true } },
      announceFrom(context.config, context.logger),
    );
    context.note(`maintenance mode on: "${message}"`);
    return { alreadyOn: false, heldByOthers: false, message, statusPage };
  },
});

const rotateCredentials = step({
  id: 'rotate-credentials',
  title: 'Rotate credentials',
  output: z.object({
    adminRotation: z.json(),
    roleRotation: z.object({
      rotated: z.boolean(),
      role: z.string().optional(),
      urlFile: z.string().optional(),
      previousFile: z.string().nullable().optional(),
    }),
  }),
  describe: ({ config }) => [
    `INSERT INTO admin_tokens (a new admin token, stored as its sha256; written once to ${path.join(maintenanceDir(config), NEW_ADMIN_TOKEN_FILE)} (mode 0600) for \`shipshape admin-token reveal\`)`,
    `UPDATE admin_tokens SET expires_at = now() + ${config.maintenance.adminTokenOverlapMs / 3_600_000} h for every other live token, ADMIN_TOKEN included (they keep working until then)`,
    config.maintenance.rotateDatabasePassword
      ? `ALTER ROLE <DATABASE_URL's role> PASSWORD '<SCRAM verifier>' (format('%I … %L')); new DATABASE_URL → ${config.maintenance.databaseUrlFile ?? '(MAINTENANCE_DATABASE_URL_FILE not set)'}, old one kept as .previous`
      : 'database role password: not rotated (MAINTENANCE_ROTATE_DATABASE_PASSWORD is off)',
  ],
  irreversible:
    'the new admin token has been handed out and may be in use, and instances may have picked up a new database password; take it back deliberately with `shipshape admin-token revoke <id>` or the `.previous` connection string',
  async run(context) {
    const { pool } = await context.database();
    const label = `maintenance rotation ${windowDate(context)}`;
    const existing = (await listAdminTokens(pool)).find((token) => token.label === label && token.source === 'issued' && token.state === 'active');
    // Output names avoid "token"/"password": the journal would redact them, and none holds a secret.
    let adminRotation: JsonObject;
    if (existing) {
      context.note(`admin tokens were rotated for this window already (token ${existing.id}); not rotated again`);
      adminRotation = { id: existing.id, rotated: false };
    } else {
      const rotation = await rotateAdminTokens(pool, {
        createdBy: `operator:${context.operator} (run ${context.runId})`,
        overlapMs: context.config.maintenance.adminTokenOverlapMs,
        environmentToken: context.config.adminToken,
        label,
      });
      const file = await writeNewAdminToken(context, rotation.token);
      await recordAudit(pool, {
        actor: `operator:${context.operator}`,
        action: 'admin.tokens.rotated',
        details: {
          tokenId: rotation.record.id,
          expiring: rotation.expiring.length,
          overlapEndsAt: rotation.overlapEndsAt.toISOString(),
          runId: context.runId,
        },
      });
      context.note(
        `new admin token ${rotation.record.id}: show it once with \`shipshape admin-token reveal\` (it waits in ${file}); ${rotation.expiring.length} older token(s) stop working at ${rotation.overlapEndsAt.toISOString()} — put the new one in ADMIN_TOKEN everywhere before then`,
      );
      adminRotation = {
        id: rotation.record.id,
        rotated: true,
        expiring: rotation.expiring.length,
        overlapEndsAt: rotation.overlapEndsAt.toISOString(),
        revealFile: file,
      };
    }
    if (!context.config.maintenance.rotateDatabasePassword) return { adminRotation, roleRotation: { rotated: false } };
    const { databaseUrl } = context.config;
    const urlFile = context.config.maintenance.databaseUrlFile;
    if (databaseUrl === undefined || urlFile === undefined) {
      throw new ShipError(
        'SHIP_ERR_CONFIG',
        'MAINTENANCE_ROTATE_DATABASE_PASSWORD needs DATABASE_URL (with a password) and MAINTENANCE_DATABASE_URL_FILE. The admin token was rotated; the database password was not.',
      );
    }
    const rotated = await rotateDatabasePassword({ currentUrl: databaseUrl, urlFile, connectTimeoutMs: context.config.database.connectTimeoutMs });
    await recordAudit(pool, {
      actor: `operator:${context.operator}`,
      action: 'database.password.rotated',
      details: { role: rotated.role, runId: context.runId },
    });
    context.note(
      `database role ${rotated.role}: new password in force; the new DATABASE_URL is in ${rotated.urlFile}${rotated.previousFile ? ` (the old one kept in ${rotated.previousFile})` : ''} — restart the instances so they use it`,
    );
    return { adminRotation, roleRotation: { rotated: true, role: rotated.role, urlFile: rotated.urlFile, previousFile: rotated.previousFile } };
  },
});

const steps: ReadonlyArray<Step<Params>> = [
  maintenanceOn,
  {
    id: 'backup',
    title: 'Backup database',
    describe: ({ config }) => [
      `a full backup of ${applicationDatabaseName(config)} into ${config.backupStorageUrl}, verified (size, SHA-256, restore listing) before it counts — as \`shipshape db backup\``,
    ],
    // No undo: the backup is the way back from this window's changes; a failed run keeps it.
    async run(context): Promise<JsonObject> {
      const manifest = await takeBackupInRun(context, 'maintenance');
      context.note(`backup ${manifest.id} taken and verified (${manifest.dump.bytes} bytes, ${manifest.tables.length} tables)`, { backupId: manifest.id });
      return { backupId: manifest.id, bytes: manifest.dump.bytes };
    },
  },
  {
    id: 'migrations',
    title: 'Apply migrations',
    describe: ({ profile }) => [
      `every pending migration in ${profile.migrations.directory}, each in its own transaction, recorded in ${profile.migrations.trackingTable}`,
    ],
    irreversible:
      'schema changes are reverted deliberately, not automatically in the middle of a window: `shipshape db migrate down`, or restore the backup taken in step 2',
    async run(context): Promise<JsonObject> {
      const database = await context.database();
      const migrator = migratorFor(database, context.logger, context.profile);
      const status = await migrator.status();
      const pending = status.filter((row) => row.state === 'pending');
      if (pending.length === 0) {
        context.note('no pending migrations');
        return { applied: [] };
      }
      const before = Math.max(0, ...status.filter((row) => row.state === 'applied').map((row) => row.version));
      const outcome = await migrator.up({ noWait: true });
      const applied = outcome.results.filter((result) => result.status === 'success').map((result) => result.version);
      if (outcome.error === undefined) {
        context.note(`applied ${applied.map((version) => String(version).padStart(4, '0')).join(', ')}`);
        return { applied };
      }
      // A failed step leaves nothing half done: take back the ones this step applied before the failure.
      if (applied.length > 0) {
        const reverted = await migrator.down({ noWait: true, to: before });
        if (reverted.error) {
          throw new ShipError(
            'SHIP_ERR_MIGRATION_FAILED',
            `${outcome.error.message} Reverting the ${applied.length} migration(s) applied before it failed too (${reverted.error.message}); they stay applied. Restore the backup from step 2 if the schema must go back.`,
            { cause: outcome.error },
          );
        }
      }
      throw new ShipError(
        'SHIP_ERR_MIGRATION_FAILED',
        `${outcome.error.message}${applied.length > 0 ? ` The ${applied.length} migration(s) applied before it were reverted.` : ''}`,
        { cause: outcome.error },
      );
    },
  },
  rotateCredentials,
  {
    id: 'clear-old-logs',
    title: 'Clear old logs',
    describe: ({ config }) =>
      config.maintenance.appLogDir === undefined
        ? ['APP_LOG_DIR is not set: no log folder to clear']
        : [
            `find ${config.maintenance.appLogDir} -type f \\( -name "*.log" -o -name "*.log.[0-9]*" -o -name "*.log.gz" \\) -mtime +${config.maintenance.appLogRetentionDays} -delete   (symbolic links are not followed)`,
          ],
    irreversible: 'deleted log files cannot be brought back',
    async run(context): Promise<JsonObject> {
      const directory = context.config.maintenance.appLogDir;
      if (directory === undefined) {
        context.note('APP_LOG_DIR is not set: nothing to clear');
        return { skipped: true };
      }
      const old = await findOldLogs(directory, context.config.maintenance.appLogRetentionDays, new Date());
      const result = await deleteLogs(old, context.signal).catch((error: unknown) => {
        throw new ShipError(
          'SHIP_ERR_STEP_FAILED',
          `Deleting old logs under ${directory} stopped: ${describeError(error)}. Files older than ${context.config.maintenance.appLogRetentionDays} days that were deleted before it stay deleted; fix the permissions and run again.`,
        );
      });
      context.note(
        `deleted ${result.deleted} log file(s), ${result.bytes} bytes, older than ${context.config.maintenance.appLogRetentionDays} days under ${directory}`,
      );
      return { skipped: false, deleted: result.deleted, bytes: result.bytes };
    },
  },
  {
    id: 'vacuum-analyze',
    title: 'Optimize database (VACUUM ANALYZE)',
    describe: ({ config }) => [`VACUUM (ANALYZE);   -- on ${applicationDatabaseName(config)}, on its own connection without the statement timeout`],
    // No undo: VACUUM and ANALYZE change how rows are stored and planned, not what they are.
    async run(context): Promise<JsonObject> {
      const started = performance.now();
      await withDirectConnection(context, async (client) => {
        await client.query('SET statement_timeout = 0');
        await client.query('VACUUM (ANALYZE)');
      });
      const seconds = Math.round((performance.now() - started) / 100) / 10;
      context.note(`VACUUM (ANALYZE) done in ${seconds} s`);
      return { seconds };
    },
  },
  {
    id: 'smoke-tests',
    title: 'Run smoke tests',
    describe: ({ config }) => [
      `against ${config.apiUrl} (X-Maintenance-Bypass with an admin token that lives ${SMOKE_TOKEN_LIFETIME_MS / 60_000} minutes):`,
      'GET /health; the smoke account ' +
        config.maintenance.smokeTestEmail +
        ' (password set fresh for this run) POST /auth/login, POST /tasks, GET /tasks/:id, DELETE /tasks/:id, POST /auth/logout',
    ],
    async run(context): Promise<JsonObject> {
      const { pool } = await context.database();
      const account = await prepareSmokeAccount(pool, context.config.maintenance.smokeTestEmail);
      if (account.created) context.note(`smoke account ${context.config.maintenance.smokeTestEmail} created`);
      const bypass = await issueAdminToken(pool, {
        label: `maintenance smoke tests (run ${context.runId})`,
        createdBy: `operator:${context.operator}`,
        expiresAt: new Date(Date.now() + SMOKE_TOKEN_LIFETIME_MS),
      });
      try {
        const checks = await runSmokeTests({
          apiUrl: context.config.apiUrl,
          email: context.config.maintenance.smokeTestEmail,
          password: account.password,
          bypassToken: bypass.token,
          signal: context.signal,
        });
        const summary = smokeSummary(checks);
        if (checks.some((check) => !check.ok)) throw new ShipError('SHIP_ERR_STEP_FAILED', `Smoke tests failed: ${summary}`);
        context.note(summary);
        return { passed: checks.length, checks: checks.map((check) => ({ name: check.name, ms: check.durationMs })) };
      } finally {
        await revokeAdminToken(pool, bypass.record.id, `run:${context.runId}`).catch(() => undefined);
      }
    },
  },
  {
    id: 'maintenance-off',
    title: 'Disable maintenance mode',
    describe: ({ config }) => [
      'UPDATE app_state SET maintenance_enabled = false; the maintenance banner comes down',
      config.statusPageWebhookUrl === undefined
        ? 'status page: STATUS_PAGE_WEBHOOK_URL is not set (update it by hand)'
        : 'POST STATUS_PAGE_WEBHOOK_URL {"status":"operational","message":"All systems operational"}',
    ],
    async run(context): Promise<JsonObject> {
      const { pool } = await context.database();
      const state = await readAppState(pool);
      if (heldByOthers(context)) {
        // An emergency disable (or an operator) had the app closed before this run: not ours to reopen.
        context.note(`maintenance mode stays on: it was on before this run (set by ${state.maintenance.setBy ?? '?'}); turn it off where it was turned on`);
        return { wasOn: true, leftOn: true };
      }
      const banner = state.banner?.setBy?.startsWith(MAINTENANCE_BANNER_SETTER) ? state.banner : null;
      if (banner) await setBanner(pool, { message: null, until: null, setBy: setter(context) });
      const { previous } = await switchMaintenance(
        pool,
        { enabled: false, owner: owner(context), details: { scheduledMaintenance: true } },
        announceFrom(context.config, context.logger),
      );
      const statusPage = await updateStatusPage(context, 'operational', 'All systems operational');
      context.note('maintenance mode off: the app is open again');
      return {
        previousMessage: previous.message,
        wasOn: previous.enabled,
        banner: bannerJson(banner),
        statusPage,
      };
    },
    async undo(context, output) {
      if (output.leftOn === true) return;
      const { pool } = await context.database();
      const message = typeof output.previousMessage === 'string' ? output.previousMessage : undefined;
      const banner = journaledBanner(output.banner);
      if (banner) await setBanner(pool, { ...banner, setBy: banner.setBy ?? setter(context) });
      if (output.wasOn === true)
        await switchMaintenance(
          pool,
          { enabled: true, message, owner: owner(context), restoring: { setBy: null } },
          announceFrom(context.config, context.logger),
        );
      else await announceAppStateChange(context.config, context.logger);
    },
  },
];

export const maintenanceRun = defineProcedure({
  id: 'maintenance.run',
  command: 'maintenance run',
  title: 'Monthly maintenance',
  runbookSection: 'Monthly Maintenance Checklist',
  whenToUse: 'The monthly maintenance window (first Sunday of each month, 2:00 AM PST), announced 72 hours before with `shipshape maintenance schedule`.',
  risk: 'medium',
  expectedDuration: '2 hours',
  issueType: 'infrastructure',
  params,
  locks: (_params, config) => [databaseLockResource(config), 'app:maintenance-window'],
  prerequisites: [
    {
      name: 'database reachable',
      run: async (context) => {
        const database = await context.database();
        await database.pool.query('SELECT 1');
        return { ok: true, detail: database.description };
      },
    },
    {
      name: 'this process can back up the database',
      run: async (context) => {
        if (context.config.databaseUrl !== undefined) return { ok: true, detail: `pg_dump of ${applicationDatabaseName(context.config)}` };
        try {
          backupSourceFor(context.config, await context.database());
          return { ok: true, detail: 'the embedded database is open in this process' };
        } catch (error) {
          return {
            ok: false,
            detail: describeError(error),
            remedy: 'on the embedded database, let the scheduler of `shipshape serve` run the window (`shipshape schedule resume maintenance-window`)',
          };
        }
      },
    },
    ...dbBackup.prerequisites
      .filter((check) => check.name !== 'database reachable')
      .map((check) => ({ name: check.name, run: (context: Context) => check.run(withBackupParams(context)) })),
    {
      name: 'the API answers, for the smoke tests',
      run: async (context) => {
        const answer = await probeHealth(context.config.apiUrl, 5_000);
        if (answer.status === null)
          return {
            ok: false,
            detail: `${answer.url} did not answer (${answer.error ?? '?'})`,
            remedy: 'start `shipshape serve` (or set API_URL to where it runs): the smoke tests need it',
          };
        if (answer.db !== 'ok')
          return {
            ok: false,
            detail: `${answer.url} answers HTTP ${answer.status} with database ${answer.db ?? '?'}`,
            remedy: 'fix the API’s database connection first',
          };
        return { ok: true, detail: `${answer.url} answers HTTP ${answer.status} (${answer.state ?? '?'}), database ok` };
      },
    },
    {
      name: 'log folder (APP_LOG_DIR)',
      run: async (context) => {
        const directory = context.config.maintenance.appLogDir;
        if (directory === undefined) return { ok: true, detail: 'not set: the clear-old-logs step does nothing' };
        try {
          const old = await findOldLogs(directory, context.config.maintenance.appLogRetentionDays, new Date());
          return { ok: true, detail: `${directory}: ${old.length} log file(s) older than ${context.config.maintenance.appLogRetentionDays} days` };
        } catch (error) {
          return { ok: false, detail: describeError(error), remedy: 'fix or unset APP_LOG_DIR' };
        }
      },
    },
    {
      name: 'database password rotation',
      run: async ({ config }) => {
        if (!config.maintenance.rotateDatabasePassword) return { ok: true, detail: 'off (MAINTENANCE_ROTATE_DATABASE_PASSWORD)' };
        if (config.databaseUrl === undefined)
          return { ok: false, detail: 'the embedded database has no role password to rotate', remedy: 'unset MAINTENANCE_ROTATE_DATABASE_PASSWORD' };
        if (config.maintenance.databaseUrlFile === undefined)
          return {
            ok: false,
            detail: 'MAINTENANCE_DATABASE_URL_FILE is not set, so the new connection string would have nowhere to go',
            remedy: 'set MAINTENANCE_DATABASE_URL_FILE to the file your deployment reads DATABASE_URL from',
          };
        if (new URL(config.databaseUrl).password === '')
          return { ok: false, detail: 'DATABASE_URL has no password', remedy: 'unset MAINTENANCE_ROTATE_DATABASE_PASSWORD' };
        return { ok: true, detail: `the new connection string goes to ${config.maintenance.databaseUrlFile}` };
      },
    },
  ],
  steps: steps.map((step, index) => logged(step, index)),
  verification: [
    {
      name: 'maintenance mode is off (unless it was on before the run)',
      run: async (context) => {
        const { pool } = await context.database();
        const { maintenance } = await readAppState(pool);
        if (heldByOthers(context)) return { ok: true, detail: `on, as before the run (set by ${maintenance.setBy ?? '?'})` };
        return maintenance.enabled ? { ok: false, detail: `still on ("${maintenance.message ?? ''}")` } : { ok: true, detail: 'off' };
      },
    },
    {
      name: 'no migration is pending',
      run: async (context) => {
        const pending = await migratorFor(await context.database(), context.logger, context.profile).pending();
        return pending.length === 0
          ? { ok: true, detail: 'the schema is up to date' }
          : { ok: false, detail: `pending: ${pending.map((file) => file.fileName).join(', ')}` };
      },
    },
    {
      name: 'the API is open again',
      run: async (context) => {
        if (heldByOthers(context)) return { ok: true, detail: 'not expected: maintenance mode was on before the run and stays on' };
        const seen = await waitForHealth(context.config.apiUrl, { maintenance: false });
        return { ok: seen.ok, detail: seen.detail, ...(seen.ok ? {} : { remedy: 'check the API instances: `shipshape health`' }) };
      },
    },
  ],
});

/**
 * Adds the runbook's `>> maintenance.log` to a step, and on failure the list of what is left
 * to do, so the engine's message names it.
 */
function logged(step: Step<Params>, index: number): Step<Params> {
  const last = index === steps.length - 1;
  return {
    ...step,
    async run(context) {
      const position = `step ${index + 1}/${steps.length} ${step.id} (${step.title})`;
      if (index === 0)
        await appendMaintenanceLog(context.config, context.runId, `=== Maintenance Started: ${new Date().toISOString()} by ${context.operator} ===`);
      await appendMaintenanceLog(context.config, context.runId, `${position}: started`);
      try {
        const output = await step.run(context);
        await appendMaintenanceLog(context.config, context.runId, `${position}: done${output ? ` ${JSON.stringify(output).slice(0, 500)}` : ''}`);
        if (last) await appendMaintenanceLog(context.config, context.runId, `=== Maintenance Completed: ${new Date().toISOString()} ===`);
        return output;
      } catch (error) {
        const remaining = steps
          .slice(index)
          .map((s) => s.id)
          .join(', ');
        // The engine ends the sentence: "Step <id> (<title>) failed: <message>."
        const state =
          index === 0
            ? 'Nothing was changed'
            : `Maintenance mode stays ON. Still to do: ${remaining}. Fix the cause, then run \`shipshape maintenance run --yes --yes-irreversible\` again (steps already done check first and carry on), or end the window unfinished with \`shipshape maintenance off\``;
        const message = `${describeError(error).replace(/\.?$/, '.')} ${state}`;
        await appendMaintenanceLog(
          context.config,
          context.runId,
          `${position}: FAILED — ${message}\n=== Maintenance stopped at ${step.id}: ${new Date().toISOString()} (log: ${maintenanceLogPath(context.config)}) ===`,
        );
        throw new ShipError(isShipError(error) ? error.code : 'SHIP_ERR_STEP_FAILED', message, { cause: error });
      }
    },
  };
}

/** What `ownerLabel` puts in every `set_by` of a maintenance run (`operator:<name> (maintenance run <id>)`). */
const MAINTENANCE_RUN_SETTER = '(maintenance run ';

function owner(context: Context): MaintenanceOwner {
  return procedureOwner(context, 'maintenance run');
}

function setter(context: Context): string {
  return ownerLabel(owner(context));
}

/** Maintenance was on before this run, and not left on by an earlier maintenance run. */
function heldByOthers(context: Context): boolean {
  return outputOf(context, maintenanceOn)?.heldByOthers === true;
}

/** "Scheduled maintenance in progress. We expect to be back by 4:00 AM PST." */
export function maintenanceMessage(durationMs: number, timeZone: string, now: Date): string {
  const back = new Intl.DateTimeFormat('en-US', { timeZone, hour: 'numeric', minute: '2-digit', timeZoneName: 'short' }).format(
    new Date(now.getTime() + durationMs),
  );
  return `Scheduled maintenance in progress. We expect to be back by ${back}.`;
}

/** The window's date where it happens (one rotation per window, however often the run is repeated). */
function windowDate(context: Context): string {
  const local = localParts(new Date(), context.config.maintenance.timeZone);
  return `${local.year}-${String(local.month).padStart(2, '0')}-${String(local.day).padStart(2, '0')}`;
}

async function writeNewAdminToken(context: Context, token: string): Promise<string> {
  const directory = maintenanceDir(context.config);
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const file = path.join(directory, NEW_ADMIN_TOKEN_FILE);
  await rm(file, { force: true });
  const handle = await open(file, 'wx', 0o600);
  try {
    await handle.writeFile(`${token}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return file;
}

/**
 * A connection of its own for VACUUM: after a database password rotation the run's pool
 * would open new connections with the old password, so the new connection string is used.
 */
async function withDirectConnection<T>(context: Context, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  const file = outputOf(context, rotateCredentials)?.roleRotation.rotated === true ? context.config.maintenance.databaseUrlFile : undefined;
  if (file === undefined) {
    const client = await (await context.database()).pool.connect();
    try {
      return await fn(client);
    } finally {
      await client.query('RESET statement_timeout').catch(() => undefined);
      client.release();
    }
  }
  return withClient((await readFile(file, 'utf8')).trim(), fn, 'shipshape-maintenance');
}

function withBackupParams(context: Context): RunContext<{ verifyRestore: boolean; compression?: number | undefined }> {
  return {
    runId: context.runId,
    params: { verifyRestore: false },
    operator: context.operator,
    config: context.config,
    profile: context.profile,
    logger: context.logger,
    outputs: context.outputs,
    database: () => context.database(),
    note: (message, data) => context.note(message, data),
    progress: (update) => context.progress(update),
    signal: context.signal,
  };
}
