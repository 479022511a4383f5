/**
 * Runbook: "Delete User Data (GDPR Request)" — recording the request (the runbook's "When: user
 * requests data deletion"), which starts the grace period.
 *
 * The operator path for requests that arrive by ticket (users can also ask themselves with
 * `DELETE /me`). Recording it signs the user out everywhere and blocks login at once; the data
 * stays until the grace period (DELETION_GRACE_DAYS) has passed, so the user — or
 * `shipshape user cancel-deletion` — can still change course. Undo cancels the request.
 */
import { z } from 'zod';
import { cancelDeletion, findPendingDeletion, requestDeletion } from '../../domain/deletion-requests.ts';
import { listLiveSessions } from '../../domain/session-list.ts';
import { defineProcedure, requireOutput, stepFor } from '../engine/types.ts';
import { accountExistsCheck, accountLock, emailParam, findAccount, requireAccount, ticketParam } from './user-common.ts';

const params = z.object({
  email: emailParam,
  ticket: ticketParam,
  /** How the requester's identity was verified (a KYC reference, "replied from the account's address"). */
  identityRef: z.string().trim().min(1, 'must say how the requester was identified').max(500),
});

type Params = z.output<typeof params>;

// The step whose output the checks read (listed in `steps` below with the others).
const step = stepFor<Params>();

const recordRequest = step({
  id: 'record-request',
  output: z.object({ requestId: z.string(), userId: z.string(), dueAt: z.string(), sessionsRevoked: z.number() }),
  title: 'Record the request, sign the user out everywhere, block login',
  describe: ({ params: p, config }) => [
    `INSERT INTO deletion_requests (user_id, requested_by, due_at, ticket, identity_reference) VALUES (<id of ${p.email}>, <operator>, now() + ${config.deletionGraceDays} days, '${p.ticket}', …)`,
    'UPDATE sessions SET revoked_at = now() WHERE user_id = <id> AND revoked_at IS NULL',
  ],
  async run(context) {
    const { params: p, config, operator } = context;
    const user = await requireAccount(context);
    const { pool } = await context.database();
    const { request, sessionsRevoked } = await requestDeletion(pool, {
      userId: user.id,
      requestedBy: `operator:${operator}`,
      graceDays: config.deletionGraceDays,
      ticket: p.ticket,
      identityReference: p.identityRef,
    });
    context.note(`erasable from ${request.dueAt.toISOString()}; ${sessionsRevoked} session(s) ended`);
    return { requestId: request.id, userId: user.id, dueAt: request.dueAt.toISOString(), sessionsRevoked };
  },
  // Ended sessions stay ended: the user signs in again.
  async undo(context, output) {
    const { pool } = await context.database();
    await cancelDeletion(pool, { userId: output.userId, cancelledBy: `operator:${context.operator}`, withinGraceOnly: false });
  },
});

export const userRequestDeletion = defineProcedure({
  id: 'user.request-deletion',
  command: 'user request-deletion',
  title: "Record a user's deletion request (starts the grace period)",
  runbookSection: 'Delete User Data (GDPR Request)',
  whenToUse: 'A user asked (by ticket) for their data to be deleted and their identity has been verified.',
  risk: 'low',
  expectedDuration: '1 minute',
  issueType: 'security',
  params,
  locks: (p) => [accountLock(p.email)],
  prerequisites: [
    { name: 'account exists', run: accountExistsCheck },
    {
      name: 'no deletion request already pending',
      run: async (context) => {
        const user = await findAccount(context);
        if (!user) return { ok: false, detail: 'no account' };
        const { pool } = await context.database();
        const pending = await findPendingDeletion(pool, user.id);
        return pending
          ? {
              ok: false,
              detail: `a request is already pending since ${pending.requestedAt.toISOString()} (erasable from ${pending.dueAt.toISOString()})`,
              remedy: 'nothing to do; `shipshape user cancel-deletion` cancels it',
            }
          : { ok: true, detail: 'none pending' };
      },
    },
  ],
  steps: [recordRequest],
  verification: [
    {
      name: 'login is blocked until the request is cancelled or carried out',
      run: async (context) => {
        const { pool } = await context.database();
        const pending = await findPendingDeletion(pool, requireOutput(context, recordRequest).userId);
        return pending ? { ok: true, detail: `pending, erasable from ${pending.dueAt.toISOString()}` } : { ok: false, detail: 'no pending request found' };
      },
    },
    {
      name: 'no session of the user is live',
      run: async (context) => {
        const { pool } = await context.database();
        const live = await listLiveSessions(pool, requireOutput(context, recordRequest).userId);
        return live.length === 0 ? { ok: true, detail: 'signed out everywhere' } : { ok: false, detail: `${live.length} session(s) still live` };
      },
    },
  ],
});
