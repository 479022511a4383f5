/**
 * /tasks: the signed-in user's own tasks. Another user's task answers 404, not 403,
 * so ids cannot be probed.
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import {
  createTask,
  deleteTask,
  getTask,
  listFirstPageUnlessHeld,
  listFirstPageVersioned,
  listTasks,
  signInCreatingTask,
  signInListingFirstPage,
  updateTask,
} from '../../domain/tasks.ts';
import { hashToken } from '../../domain/secrets.ts';
import { bearerToken, currentUser } from '../plugins/guards.ts';
import { routeSchema, type RouteDoc } from '../route-schema.ts';
import type { RouteDeps } from '../route-deps.ts';
import { calendarDate, taskBody, taskPage, uuid } from '../schemas.ts';
import { acceptedInput, parseInput } from '../validation.ts';

const title = z.string().trim().min(1, 'must not be empty').max(500);
const notes = z.string().max(10_000).nullable();
const newTask = z.strictObject({ title, notes: notes.optional(), done: z.boolean().optional(), dueDate: calendarDate.nullable().optional() });
const taskChanges = z
  .strictObject({ title: title.optional(), notes: notes.optional(), done: z.boolean().optional(), dueDate: calendarDate.nullable().optional() })
  .refine((changes) => Object.keys(changes).length > 0, 'send at least one of title, notes, done, dueDate');
const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,200}$/, 'is not a cursor this API issued: use nextCursor from the previous page')
    .optional(),
});
const taskParams = z.strictObject({ id: uuid });
const JSON_BODY = 'application/json; charset=utf-8';

export const taskRoutes: FastifyPluginAsync<RouteDeps> = async (app, { context, guards }) => {
  const { pool } = context.database;
  const signedIn = (doc: Omit<RouteDoc, 'audience'>) => ({ schema: routeSchema('tasks', { ...doc, audience: 'user' }), preHandler: [guards.requireUser] });

  // GET and POST /tasks sign in themselves (`requireUserWith`), so that a session that is not
  // cached costs one statement with the work the request came for. Signing in still comes
  // first: a bad session answers 401 whatever the input, and input errors are reported after it.
  const documented = (doc: Omit<RouteDoc, 'audience'>) => ({ schema: routeSchema('tasks', { ...doc, audience: 'user' }) });
  const { cache } = context.live;

  app.get(
    '/tasks',
    documented({ summary: 'List your tasks, newest first, a page at a time', input: { query: listQuery }, ok: { 200: taskPage } }),
    async (request, reply) => {
      const asked = acceptedInput(listQuery, request.query, 'query');
      const limit = asked !== undefined && asked.cursor === undefined ? asked.limit : undefined;
      // The first page is the hot read. Writes need no invalidation call: see task-list-cache.ts.
      // The session's token hash names the reader whose last page the cache remembers (`heldVersion`).
      const token = bearerToken(request);
      const reader = limit !== undefined && token !== undefined ? hashToken(token).toString('base64') : undefined;
      const found =
        limit === undefined || reader === undefined
          ? await guards.requireUser(request)
          : await guards.requireUserWith(request, (db, tokenHash) =>
              signInListingFirstPage(db, tokenHash, { limit, unlessVersion: cache.heldVersion(reader, limit) }),
            );
      const query = parseInput(listQuery, request.query, 'query');
      const userId = currentUser(request).user.id;
      if (query.cursor !== undefined || reader === undefined) return listTasks(pool, userId, query);
      // A session from memory: the same one statement without the sign-in. Either way the page
      // was read only if the list moved on from the version of the last page this session was served.
      const read = found ?? (await listFirstPageUnlessHeld(pool, userId, query.limit, cache.heldVersion(reader, query.limit)));
      // The cache hands back the page as its JSON body, sent as it is (a hit is never parsed).
      reply.type(JSON_BODY);
      if (read.page) {
        reply.header('x-cache', 'miss');
        return cache.remember(userId, query.limit, { page: read.page, version: read.listVersion }, reader);
      }
      // Unchanged: the page from the cache, or from the database if the cache has lost it since.
      const { body, hit } = await cache.firstPage(userId, query.limit, () => listFirstPageVersioned(pool, userId, query.limit), {
        knownVersion: read.listVersion,
        reader,
      });
      reply.header('x-cache', hit ? 'hit' : 'miss');
      return body;
    },
  );

  app.post('/tasks', documented({ summary: 'Create a task', input: { body: newTask }, ok: { 201: taskBody } }), async (request, reply) => {
    const asked = acceptedInput(newTask, request.body, 'body');
    const found = asked
      ? await guards.requireUserWith(request, (db, tokenHash) => signInCreatingTask(db, tokenHash, asked))
      : await guards.requireUser(request);
    if (found) return reply.status(201).send(found.task);
    const input = parseInput(newTask, request.body, 'body');
    return reply.status(201).send(await createTask(pool, currentUser(request).user.id, input));
  });

  app.get('/tasks/:id', signedIn({ summary: 'One of your tasks', input: { params: taskParams }, ok: { 200: taskBody } }), async (request) => {
    const { id } = parseInput(taskParams, request.params, 'params');
    return getTask(pool, currentUser(request).user.id, id);
  });

  app.patch(
    '/tasks/:id',
    signedIn({ summary: 'Change one of your tasks', input: { params: taskParams, body: taskChanges }, ok: { 200: taskBody } }),
    async (request) => {
      const { id } = parseInput(taskParams, request.params, 'params');
      const changes = parseInput(taskChanges, request.body, 'body');
      return updateTask(pool, currentUser(request).user.id, id, changes);
    },
  );

  app.delete('/tasks/:id', signedIn({ summary: 'Delete one of your tasks', input: { params: taskParams }, ok: { 204: null } }), async (request, reply) => {
    const { id } = parseInput(taskParams, request.params, 'params');
    await deleteTask(pool, currentUser(request).user.id, id);
    return reply.status(204).send();
  });
};
