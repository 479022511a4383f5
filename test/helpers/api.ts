/**
 * Starts the real API server (same code path as `shipshape serve`) on a random port,
 * against a fresh PostgreSQL database or the embedded one, and gives tests a small
 * JSON client for it.
 */
import { loadConfig, type Config } from '../../src/config/index.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type RunningServer } from '../../src/runtime/server.ts';
import { BUSY_MACHINE_ENV } from './patience.ts';
import { createStateDir, createTestDatabase } from './postgres.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface TestApi {
  readonly server: RunningServer;
  readonly config: Config;
  readonly url: string;
  request(method: string, path: string, options?: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string }): Promise<ApiResponse>;
  close(): Promise<void>;
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  // Tests read response fields freely; each assertion states the expected shape.
  readonly json: Record<string, any>;
}

export async function startTestApi(options: { embedded?: boolean; env?: Record<string, string> } = {}): Promise<TestApi> {
  const state = await createStateDir();
  const database = options.embedded ? undefined : await createTestDatabase();
  const config = loadConfig({
    PORT: '0',
    STATE_DIR: state.path,
    ADMIN_TOKEN,
    LOG_LEVEL: 'silent',
    ...BUSY_MACHINE_ENV,
    ...(database ? { DATABASE_URL: database.url } : {}),
    ...options.env,
  });
  const server = await startServer(config, createLogger('silent'), { migrate: true });
  const request: TestApi['request'] = async (method, path, { body, token, headers = {}, raw } = {}) => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await response.text();
    let json: Record<string, any> = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      // not JSON (e.g. Prometheus text); tests read `text`
    }
    return { status: response.status, headers: response.headers, text, json };
  };
  return {
    server,
    config,
    url: server.url,
    request,
    close: async () => {
      await server.close();
      await database?.drop();
      await state.cleanup();
    },
  };
}

let counter = 0;
/** Registers a fresh user and returns their token. */
export async function signUp(
  api: TestApi,
  email = `user${++counter}-${Date.now()}@example.com`,
  password = 'correct horse battery',
): Promise<{ token: string; email: string; password: string; id: string }> {
  const response = await api.request('POST', '/auth/register', { body: { email, password } });
  if (response.status !== 201) throw new Error(`sign-up failed: ${response.status} ${response.text}`);
  return { token: response.json.token, email, password, id: response.json.user.id };
}
