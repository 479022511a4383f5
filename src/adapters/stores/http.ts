/**
 * JSON over HTTP for the store APIs: bounded in time, errors that name the store, the status
 * and the store's own message — never the credentials.
 */
import { ShipError } from '../../errors.ts';

export interface JsonRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: string;
  readonly token?: string;
  readonly body?: unknown;
  /** A form body (application/x-www-form-urlencoded) instead of JSON. */
  readonly form?: Record<string, string>;
  readonly timeoutMs?: number;
}

export async function requestJson(store: string, request: JsonRequest, advice: (status: number) => string): Promise<unknown> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (request.token !== undefined) headers.authorization = `Bearer ${request.token}`;
  let body: string | undefined;
  if (request.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(request.form).toString();
  } else if (request.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(request.body);
  }
  const where = `${request.method} ${new URL(request.url).pathname}`;
  let response: Response;
  try {
    response = await fetch(request.url, { method: request.method, headers, body, signal: AbortSignal.timeout(request.timeoutMs ?? 15_000) });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : error instanceof Error ? error.message : String(error);
    throw new ShipError(
      'SHIP_ERR_PROVIDER_FAILED',
      `${store} did not answer ${where} (${cause}). Check the API URL and the network, then run the command again.`,
    );
  }
  const text = await response.text();
  if (!response.ok) {
    throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `${store} answered HTTP ${response.status} to ${where}${storeMessage(text)}. ${advice(response.status)}`, {
      details: { store, status: response.status, request: where },
    });
  }
  if (text === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `${store} answered ${where} with something that is not JSON. Check the API URL points at ${store}.`);
  }
}

/** Google's `{error: {message}}` and Apple's `{errors: [{detail}]}`, shortened. */
function storeMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown }; errors?: Array<{ detail?: unknown; title?: unknown }> };
    const message = body.error?.message ?? body.errors?.[0]?.detail ?? body.errors?.[0]?.title;
    if (typeof message === 'string') return ` (${message.slice(0, 300)})`;
  } catch {
    // not JSON
  }
  return '';
}

export function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}
