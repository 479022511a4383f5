/**
 * Telling every instance that shared state (maintenance, cache epochs) changed: after a commit,
 * whoever changed it publishes "re-read now" on Redis when REDIS_URL is set. The NOTIFY
 * triggers (migration 0004) and each instance's poll carry the change anyway; Redis covers
 * deployments where NOTIFY does not arrive (PgBouncer in transaction mode). Listening is the
 * running process's business (src/runtime/app-state-feeds.ts); announcing is everyone's, so it
 * lives here, below the procedures and the CLI that change state.
 */
import { closeRedis, connectRedis, createRedis } from '../adapters/redis.ts';
import type { Config } from '../config/index.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';

/** The Redis channel for state changes; the prefix keeps deployments sharing a Redis apart. */
export function appStateChannel(redisPrefix: string): string {
  return `${redisPrefix}app-state`;
}

/** For processes without feeds of their own (the CLI): publish one change notice, if Redis is configured. */
export async function announceAppStateChange(config: Pick<Config, 'redisUrl' | 'redisPrefix'>, logger: Logger): Promise<void> {
  if (!config.redisUrl) return;
  const redis = await createRedis({ url: config.redisUrl, name: 'shipshape-cli', logger });
  try {
    if (await connectRedis(redis)) await redis.publish(appStateChannel(config.redisPrefix), 'changed');
  } catch (error) {
    logger.warn({ err: describeError(error) }, 'could not publish the state change to Redis; instances will see it through NOTIFY or their poll');
  } finally {
    await closeRedis(redis);
  }
}
