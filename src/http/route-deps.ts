/**
 * What every route plugin is registered with (`app.register(taskRoutes, { context, guards })`).
 */
import type { ApiContext } from './context.ts';
import type { Guards } from './plugins/guards.ts';

export interface RouteDeps {
  readonly context: ApiContext;
  readonly guards: Guards;
}
