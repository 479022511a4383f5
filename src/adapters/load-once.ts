/**
 * Heavy client libraries (nodemailer, the AWS SDK, ioredis, pg-boss, Fastify, PGlite) are
 * imported when first used, not when their adapter's module is: every CLI command loads the
 * whole program's modules to build its help, and importing them all cost each command about a
 * second of CPU. `loadOnce` runs its loader on the first call and hands every caller the same
 * promise; a failed load is not cached, so the next call tries again.
 */
export function loadOnce<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => {
    loading ??= load().catch((error: unknown) => {
      loading = undefined;
      throw error;
    });
    return loading;
  };
}
