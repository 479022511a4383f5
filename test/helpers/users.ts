/**
 * A user with data in every table Shipshape has (tasks, preferences, sessions, reset token,
 * audit rows, a deletion request with approvals, an export record), for export and erasure tests.
 */
import { createMailer } from '../../src/adapters/mailer.ts';
import { loadConfig, type Config } from '../../src/config/index.ts';
import type { Pool } from '../../src/db/pool.ts';
import { requestPasswordReset } from '../../src/domain/auth.ts';
import { createLogger } from '../../src/log.ts';
import { runProcedure, type RunReport } from '../../src/ops/engine/index.ts';
import type { Procedure } from '../../src/ops/engine/types.ts';
import { startS3rver } from '../fakes/s3.ts';
import { startSmtpServer, type FakeSmtpServer } from '../fakes/smtp.ts';
import { signUp, startTestApi, type TestApi } from './api.ts';
import { createStateDir } from './postgres.ts';

export interface SeededUser {
  readonly id: string;
  readonly email: string;
  readonly password: string;
  readonly token: string;
  readonly taskIds: string[];
  readonly requestId: string;
}

let sequence = 0;

export async function seedUser(api: TestApi, options: { label?: string } = {}): Promise<SeededUser> {
  const label = options.label ?? `user${++sequence}`;
  const user = await signUp(api, `${label}-${Date.now()}-${sequence}@example.com`);
  const taskIds: string[] = [];
  for (const title of [`${label}: Buy milk, eggs and "good" bread`, `${label}: call mum\nthen dad`]) {
    const created = await api.request('POST', '/tasks', { token: user.token, body: { title, notes: title.includes('milk') ? '' : null } });
    taskIds.push(created.json.id);
  }
  await api.request('PUT', '/me/preferences', { token: user.token, body: { theme: 'dark', locale: 'en' } });
  const pool = api.server.database.pool;
  const logger = createLogger('silent');
  const reset = await requestPasswordReset(pool, createMailer({ smtpUrl: undefined, from: 'test@example.com' }, logger), logger, {
    email: user.email,
    ttlMinutes: 60,
    publicUrl: 'http://127.0.0.1',
    requestedBy: 'anonymous',
  });
  await reset.delivery;
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO deletion_requests (user_id, requested_by, due_at, ticket, identity_reference)
     VALUES ($1, 'operator:alice', now() + interval '30 days', 'GDPR-1', 'passport checked by alice') RETURNING id`,
    [user.id],
  );
  const requestId = rows[0]!.id;
  await pool.query("INSERT INTO deletion_approvals (request_id, kind, ticket, approved_by) VALUES ($1, 'legal', 'GDPR-1', 'bob')", [requestId]);
  return { id: user.id, email: user.email, password: user.password, token: user.token, taskIds, requestId };
}

/** Rows per table that reference `userId` by a `user_id` column, plus the users row. */
export async function directRowCounts(pool: Pool, userId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of ['users', 'tasks', 'sessions', 'user_preferences', 'password_reset_tokens', 'audit_log', 'deletion_requests', 'user_exports']) {
    const column = table === 'users' ? 'id' : 'user_id';
    const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${column} = $1`, [userId]);
    counts[table] = rows[0]!.n;
  }
  return counts;
}

/**
 * The world the user procedures run in: the API on a fresh database, a real SMTP peer, s3rver as
 * legal storage, a STATE_DIR; `run` runs a procedure as `operator`, confirmed like `--yes --yes-irreversible`.
 */
export interface UserProcedureWorld {
  readonly api: TestApi;
  readonly smtp: FakeSmtpServer;
  readonly stateDir: string;
  configAs(operator: string): Config;
  run(procedure: Procedure, input: Record<string, unknown>, operator: string): Promise<RunReport>;
  close(): Promise<void>;
}

export async function startUserProcedureWorld(): Promise<UserProcedureWorld> {
  const [smtp, s3, state] = await Promise.all([startSmtpServer(), startS3rver({ bucket: 'legal' }), createStateDir()]);
  // The legal store reads S3 credentials the way the AWS SDK always does: from the environment.
  process.env.AWS_ACCESS_KEY_ID = s3.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.secretAccessKey;
  const api = await startTestApi({ env: { SMTP_URL: smtp.url } });
  const configAs = (operator: string) =>
    loadConfig({
      DATABASE_URL: api.config.databaseUrl ?? '',
      STATE_DIR: state.path,
      LOG_LEVEL: 'silent',
      SMTP_URL: smtp.url,
      MAIL_FROM: 'Tasks <privacy@tasks.test>',
      LEGAL_STORAGE_URL: 's3://legal/gdpr',
      S3_ENDPOINT: s3.endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      AWS_REGION: s3.region,
      DELETION_GRACE_DAYS: '30',
      SHIPSHAPE_OPERATOR: operator,
    });
  return {
    api,
    smtp,
    stateDir: state.path,
    configAs,
    run: (procedure, input, operator) =>
      runProcedure(procedure, input, { yes: true, yesIrreversible: true }, { config: configAs(operator), logger: createLogger('silent') }),
    async close() {
      await api.close();
      await Promise.all([smtp.close(), s3.close(), state.cleanup()]);
    },
  };
}
