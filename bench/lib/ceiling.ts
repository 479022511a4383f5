/**
 * Starting the HTTP-ceiling server (`http-ceiling-server.ts`) from the harness.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { benchDir } from './paths.ts';
import { freePort, spawnTs, stopChild, waitUntilAnswering, watchChild, type ChildServer } from './processes.ts';

/** Response bodies recorded from the real server, served as-is by the ceiling. */
export interface CeilingPayloads {
  readonly health: unknown;
  readonly taskPage: unknown;
  readonly createdTask: unknown;
}

export const CEILING_ROUTES = { health: '/ceiling/health', listTasks: '/ceiling/tasks', createTask: '/ceiling/tasks' } as const;

export async function startHttpCeiling(databaseUrl: string, payloads: CeilingPayloads, workDir: string): Promise<ChildServer> {
  const payloadFile = path.join(workDir, 'ceiling-payloads.json');
  await writeFile(payloadFile, JSON.stringify(payloads));
  const port = await freePort();
  const child = spawnTs(path.join(benchDir, 'lib/http-ceiling-server.ts'), [String(port), payloadFile], {
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
  });
  const watched = watchChild(child, 'the HTTP-ceiling server');
  const url = `http://127.0.0.1:${port}`;
  await waitUntilAnswering(child, `${url}${CEILING_ROUTES.health}`, 'the HTTP-ceiling server');
  return {
    url,
    pid: child.pid,
    ...watched,
    command: `DATABASE_URL=<bench database> HOST=127.0.0.1 LOG_LEVEL=warn node bench/lib/http-ceiling-server.ts ${port} ceiling-payloads.json`,
    stop: () => stopChild(child),
  };
}
