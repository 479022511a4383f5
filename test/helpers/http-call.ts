/**
 * One HTTP request to a running Shipshape, the way the app makes it (JSON body, bearer token),
 * for tests that drive a real server process. The body is parsed when it is JSON; otherwise the
 * status says enough.
 */
export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly json: Record<string, any>;
}

export interface CallOptions {
  readonly body?: unknown;
  readonly token?: string | undefined;
  readonly headers?: Readonly<Record<string, string>>;
}

export async function call(url: string, method: string, path: string, options: CallOptions = {}): Promise<Reply> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  let json: Record<string, any> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, any>) : {};
  } catch {
    // not JSON: the status says enough
  }
  return { status: response.status, headers: response.headers, json };
}
