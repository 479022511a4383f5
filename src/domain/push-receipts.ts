/**
 * Push receipts: Expo's later word on each ticket, once Apple or Google had the message.
 *
 * Receipts are read some minutes after a send (Expo: allow up to 30 minutes; they are kept
 * for about a day), at most 1000 ids per request. A `DeviceNotRegistered` receipt means the
 * app is gone from that device: the device is deactivated so the next send skips it, as
 * Apple and Google expect (they may throttle senders who keep writing to dead tokens).
 *
 * Due deliveries are claimed for a few minutes with `SKIP LOCKED`, so any number of instances
 * can check receipts without fetching the same ones twice.
 */
import type { ExpoReceipt } from '../adapters/expo-push.ts';
import { EXPO_MAX_RECEIPT_IDS_PER_REQUEST } from '../adapters/expo-push.ts';
import { withTransaction, type Pool } from '../db/pool.ts';
import { deactivateDevices } from './devices.ts';

export interface ReceiptSource {
  getReceipts(ids: readonly string[]): Promise<Map<string, ExpoReceipt>>;
}

export interface ReceiptCheckOptions {
  /** Only tickets at least this old; Expo needs time to hear back from Apple and Google. */
  readonly minAgeMs?: number;
  /** Stop after this many ids in one call. */
  readonly maxIds?: number;
}

export interface ReceiptCheckResult {
  readonly checked: number;
  readonly ok: number;
  readonly errors: number;
  /** Not available yet; asked for again on a later check. */
  readonly notReady: number;
  /** Older than Expo keeps receipts and still absent: given up on. */
  readonly expired: number;
  readonly devicesDeactivated: number;
}

export const DEFAULT_RECEIPT_MIN_AGE_MS = 15 * 60_000;
/** Expo keeps receipts for about a day. */
const RECEIPT_LIFETIME_MS = 24 * 60 * 60_000;
const CLAIM_MS = 5 * 60_000;

interface DueRow {
  job_id: string;
  token: string;
  ticket_id: string;
  sent_at: Date;
  expired: boolean;
}

export async function checkReceipts(pool: Pool, source: ReceiptSource, options: ReceiptCheckOptions = {}): Promise<ReceiptCheckResult> {
  const totals = { checked: 0, ok: 0, errors: 0, notReady: 0, expired: 0, devicesDeactivated: 0 };
  const maxIds = options.maxIds ?? 20_000;
  while (totals.checked < maxIds) {
    const due = await claimDue(pool, Math.min(EXPO_MAX_RECEIPT_IDS_PER_REQUEST, maxIds - totals.checked), options.minAgeMs ?? DEFAULT_RECEIPT_MIN_AGE_MS);
    if (due.length === 0) break;
    // A failure here leaves the batch claimed; it becomes due again when the claim lapses.
    const receipts = await source.getReceipts(due.map((row) => row.ticket_id));
    totals.checked += due.length;
    await withTransaction(pool, async (client) => {
      const settled: Array<{ row: DueRow; status: 'ok' | 'error' | 'expired'; error: string | null }> = [];
      for (const row of due) {
        const receipt = receipts.get(row.ticket_id);
        if (receipt) settled.push({ row, status: receipt.status, error: receipt.status === 'error' ? (receipt.error ?? receipt.message).slice(0, 500) : null });
        else if (row.expired) settled.push({ row, status: 'expired', error: null });
        else totals.notReady += 1;
      }
      if (settled.length > 0) {
        await client.query(
          `UPDATE notification_deliveries d SET receipt_status = r.status, receipt_error = r.error, receipt_checked_at = now(), receipt_claimed_until = NULL
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS r(job_id, token, status, error)
            WHERE d.job_id = r.job_id AND d.token = r.token`,
          [settled.map((s) => s.row.job_id), settled.map((s) => s.row.token), settled.map((s) => s.status), settled.map((s) => s.error)],
        );
      }
      // Grouped by send time, because a token registered again after its send is not deactivated.
      const gone = settled.filter((s) => s.error === 'DeviceNotRegistered');
      for (const sentAt of new Set(gone.map((s) => s.row.sent_at.getTime()))) {
        const tokens = gone.filter((s) => s.row.sent_at.getTime() === sentAt).map((s) => s.row.token);
        totals.devicesDeactivated += await deactivateDevices(client, tokens, 'DeviceNotRegistered (push receipt)', new Date(sentAt));
      }
      for (const s of settled) {
        if (s.status === 'ok') totals.ok += 1;
        else if (s.status === 'error') totals.errors += 1;
        else totals.expired += 1;
      }
    });
  }
  return totals;
}

async function claimDue(pool: Pool, limit: number, minAgeMs: number): Promise<DueRow[]> {
  const { rows } = await pool.query<DueRow>(
    `UPDATE notification_deliveries d SET receipt_claimed_until = now() + $3::int * interval '1 millisecond'
       FROM (SELECT nd.job_id, nd.token, c.sent_at
               FROM notification_deliveries nd
               JOIN notification_chunks c ON c.job_id = nd.job_id AND c.seq = nd.seq
              WHERE nd.ticket_id IS NOT NULL AND nd.receipt_checked_at IS NULL
                AND (nd.receipt_claimed_until IS NULL OR nd.receipt_claimed_until < now())
                AND c.sent_at <= now() - $2::int * interval '1 millisecond'
              ORDER BY c.sent_at
              LIMIT $1::int
              FOR UPDATE OF nd SKIP LOCKED) AS due
      WHERE d.job_id = due.job_id AND d.token = due.token
      RETURNING d.job_id, d.token, d.ticket_id, due.sent_at, due.sent_at < now() - $4::int * interval '1 millisecond' AS expired`,
    [limit, minAgeMs, CLAIM_MS, RECEIPT_LIFETIME_MS],
  );
  return rows;
}
