/**
 * The status page (runbook: "Emergency App Disable", step 4 "Update status page"), as a
 * webhook: `POST <STATUS_PAGE_WEBHOOK_URL>` with `{"status", "message"}` JSON. Status page
 * services and in-house pages alike can take that through a small relay or an automation
 * (Statuspage, Instatus and Better Stack all accept inbound webhooks).
 *
 * The webhook URL is a credential (whoever holds it can post), so errors never include it.
 */
import { ShipError } from '../errors.ts';

export const statusPageStates = ['maintenance', 'operational'] as const;
export type StatusPageState = (typeof statusPageStates)[number];

export interface StatusPageUpdate {
  readonly status: StatusPageState;
  readonly message: string;
}

export async function postStatusPage(
  options: { readonly webhookUrl: string; readonly timeoutMs?: number },
  update: StatusPageUpdate,
): Promise<{ status: number }> {
  let response: Response;
  try {
    response = await fetch(options.webhookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: update.status, message: update.message }),
      signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
    });
  } catch (error) {
    // Only the error code: undici's messages can name the URL, which is the secret.
    const cause = error instanceof Error && error.name === 'TimeoutError' ? 'no answer within the timeout' : errorCode(error);
    throw new ShipError(
      'SHIP_ERR_PROVIDER_FAILED',
      `The status page webhook did not answer (${cause}). Check STATUS_PAGE_WEBHOOK_URL and that the status page is reachable from here.`,
    );
  }
  await response.body?.cancel();
  if (!response.ok) {
    throw new ShipError(
      'SHIP_ERR_PROVIDER_FAILED',
      `The status page webhook answered HTTP ${response.status}. Check STATUS_PAGE_WEBHOOK_URL and the status page's own logs.`,
    );
  }
  return { status: response.status };
}

function errorCode(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  if (typeof cause === 'object' && cause !== null && 'code' in cause && typeof cause.code === 'string') return cause.code;
  return 'network error';
}
