/**
 * Runbook: "Clear App Cache".
 *
 * When: stale data issues, troubleshooting. The runbook's remote cache clear ("update remote
 * config to trigger cache clear; this will affect all users on next app open") is the scope's
 * epoch in `cache_epochs`: apps read it from `GET /config` and drop their local cache when it
 * grew. The same epoch is part of every server-cache key, so each API instance stops using
 * the scope's entries as soon as the change reaches it (NOTIFY from the database trigger,
 * Redis pub/sub, or at worst its poll), and a shared Redis cache is flushed outright.
 *
 * Scopes: `all`, `tasks`, `preferences`, or `user:<email>` for one user (stored by user id,
 * so no address sits in shared state; per-user epochs are not shown in the public /config).
 *
 * Undo: none is needed or possible. Epochs only grow (apps compare "grew"), and a cleared
 * cache simply refills on the next reads; rolling back leaves the new epoch in place.
 */
import { z } from 'zod';
import { createRedisStore } from '../../adapters/cache/index.ts';
import { closeRedis, connectRedis, createRedis } from '../../adapters/redis.ts';
import { clearCacheScope, parseCacheScope } from '../../domain/cache-clear.ts';
import { flushTaskListScope } from '../../domain/task-list-cache.ts';
import { findUserByEmail } from '../../domain/users.ts';
import { describeError } from '../../errors.ts';
import { redactUrl } from '../../redact.ts';
import { announceAppStateChange } from '../../domain/app-state-announce.ts';
import { defineProcedure, outputOf, stepFor, unverified, type CheckResult, type RunContext } from '../engine/types.ts';

const params = z.object({
  scope: z.string().refine((scope) => {
    try {
      return parseCacheScope(scope) === scope;
    } catch {
      return false;
    }
  }, 'must be all, tasks, preferences or user:<email>'),
});
type Params = z.output<typeof params>;

/** How long verification waits for the API to report the new epoch (it hears within a second). */
const API_WAIT_MS = 5_000;

// The step whose output the flush and the checks read (listed in `steps` below with the others).
const step = stepFor<Params>();

const bumpEpoch = step({
  id: 'bump-epoch',
  output: z.object({ storedScope: z.string(), epoch: z.number() }),
  title: 'Update remote config to trigger the cache clear',
  describe: ({ params: p }) => [
    `INSERT INTO cache_epochs (scope, epoch, cleared_at, cleared_by) VALUES (${storedScopeText(p)}, 1, now(), <operator>)`,
    '  ON CONFLICT (scope) DO UPDATE SET epoch = cache_epochs.epoch + 1, …   -- apps see it in GET /config',
    "INSERT INTO audit_log (actor, action, details) VALUES ('operator:<name>', 'admin.cache.cleared', {scope, epoch})",
    'the cache_epochs trigger NOTIFYs shipshape_app_state at commit: every API instance re-reads at once',
  ],
  async run(context) {
    const { pool } = await context.database();
    const cleared = await clearCacheScope(pool, { scope: context.params.scope, actor: `operator:${context.operator}` });
    context.note(`scope ${cleared.scope}: epoch is now ${cleared.epoch}`);
    return { storedScope: cleared.storedScope, epoch: cleared.epoch };
  },
  async undo(context) {
    context.note('nothing to undo: epochs only grow, and a cleared cache refills on the next reads');
  },
});

export const cacheClear = defineProcedure({
  id: 'cache.clear',
  command: 'cache clear',
  title: 'Clear the app and server caches for a scope',
  runbookSection: 'Clear App Cache',
  whenToUse: 'Stale data issues, troubleshooting (after fixing data directly in the database, for instance).',
  risk: 'low',
  expectedDuration: 'Immediate',
  issueType: 'application',
  params,
  locks: (p) => [`cache:${p.scope}`],
  prerequisites: [
    {
      name: 'the database has the cache epochs',
      run: async (context) => {
        const { pool } = await context.database();
        const { rows } = await pool.query<{ found: boolean }>("SELECT to_regclass('cache_epochs') IS NOT NULL AS found");
        return rows[0]?.found
          ? { ok: true, detail: 'cache_epochs exists' }
          : {
              ok: false,
              detail: 'this database has no Shipshape schema yet',
              remedy: 'run `shipshape db migrate up` (or start `shipshape serve` once on the embedded database)',
            };
      },
    },
    {
      name: 'the scope exists',
      run: async (context) => {
        const scope = context.params.scope;
        if (!scope.startsWith('user:')) return { ok: true, detail: `scope "${scope}"` };
        const { pool } = await context.database();
        const user = await findUserByEmail(pool, scope.slice('user:'.length));
        return user
          ? { ok: true, detail: `account ${user.id}` }
          : {
              ok: false,
              detail: `no account has the email in "${scope}"`,
              remedy: 'check the address (shipshape user export <email> --dry-run shows whether it exists)',
            };
      },
    },
  ],
  steps: [
    bumpEpoch,
    {
      id: 'flush-server-cache',
      title: 'Flush the server cache',
      describe: ({ params: p, config }) =>
        config.redisUrl
          ? [
              `SCAN MATCH ${config.redisPrefix}${flushPattern(p)} + UNLINK in Redis at ${redactUrl(config.redisUrl)}`,
              `PUBLISH ${config.redisPrefix}app-state changed   -- instances re-read at once`,
            ]
          : ['in-process caches: each API instance drops the scope’s entries when it sees the new epoch (nothing to do here)'],
      async run(context) {
        const { config, logger } = context;
        const storedScope = outputOf(context, bumpEpoch)?.storedScope ?? context.params.scope;
        if (!config.redisUrl) return { flushed: null };
        const redis = await createRedis({ url: config.redisUrl, name: 'shipshape-cli', logger });
        try {
          if (!(await connectRedis(redis))) {
            context.note('Redis did not answer: its entries of the old epoch are unreachable anyway and expire within 10 minutes');
            return { flushed: 0 };
          }
          const flushed = await flushTaskListScope(createRedisStore({ redis, prefix: config.redisPrefix }), storedScope);
          context.note(`flushed ${flushed} entries from the shared Redis cache`);
          return { flushed };
        } finally {
          await closeRedis(redis);
          await announceAppStateChange(config, logger);
        }
      },
    },
  ],
  verification: [
    {
      name: 'the new epoch is stored',
      run: async (context) => {
        const { pool } = await context.database();
        const { storedScope, epoch } = bumped(context);
        const { rows } = await pool.query<{ epoch: number }>('SELECT epoch FROM cache_epochs WHERE scope = $1::text', [storedScope]);
        const stored = Number(rows[0]?.epoch ?? 0);
        return stored >= epoch
          ? { ok: true, detail: `cache_epochs: ${context.params.scope} = ${stored}` }
          : { ok: false, detail: `cache_epochs holds ${stored}, expected at least ${epoch}` };
      },
    },
    {
      name: 'apps see the new epoch in GET /config',
      run: async (context) => {
        const { scope } = context.params;
        const { epoch } = bumped(context);
        if (scope.startsWith('user:')) {
          return unverified(
            'per-user epochs are private, so GET /config does not show them',
            undefined,
            'the stored epoch is checked above, and the app of that user drops its cache on its next authenticated sync',
          );
        }
        return apiShowsEpoch(context.config.apiUrl, scope, epoch);
      },
    },
  ],
});

function storedScopeText(p: Params): string {
  return p.scope.startsWith('user:') ? "'user:<id of the account>'" : `'${p.scope}'`;
}

function flushPattern(p: Params): string {
  if (p.scope === 'all' || p.scope === 'tasks') return 'tasks:*';
  if (p.scope.startsWith('user:')) return 'tasks:<id of the account>:*';
  return '(nothing cached server-side for this scope)';
}

function bumped(context: RunContext<Params>): { storedScope: string; epoch: number } {
  return outputOf(context, bumpEpoch) ?? { storedScope: context.params.scope, epoch: 0 };
}

/**
 * Polls /config until it shows `epoch` for `scope`. An API that does not answer could not be
 * checked: it may be down (then it reads the database when it starts) or API_URL may point
 * nowhere while the real instances never heard — the run says "unverified", never ✓.
 */
async function apiShowsEpoch(apiUrl: string, scope: string, epoch: number): Promise<CheckResult> {
  const url = new URL('/config', apiUrl).toString();
  const deadline = Date.now() + API_WAIT_MS;
  let seen: number | undefined;
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      const body: unknown = await response.json();
      const epochs = isRecord(body) ? body.cacheEpochs : undefined;
      const value = isRecord(epochs) ? epochs[scope] : undefined;
      seen = typeof value === 'number' ? value : undefined;
      if (seen !== undefined && seen >= epoch) return { ok: true, detail: `${url} reports ${scope} = ${seen}` };
    } catch (error) {
      if (seen === undefined) {
        const reason = describeError(error);
        return unverified(
          `the API at ${url} did not answer (${reason}), so whether it serves the new epoch could not be checked`,
          `once the API answers, \`curl -s ${url}\` must show cacheEpochs.${scope} ≥ ${epoch} (check that API_URL points at the running API)`,
        );
      }
    }
    if (Date.now() > deadline) {
      return {
        ok: false,
        detail: `${url} still reports ${scope} = ${seen ?? 'nothing'} after ${API_WAIT_MS / 1000} s`,
        remedy: 'check that API_URL points at an instance using this database (DATABASE_URL), and that its logs show no "could not refresh app state"',
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
