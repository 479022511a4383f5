/**
 * The embedded database: PGlite (PostgreSQL compiled to WASM) persisted under
 * `STATE_DIR/db`, served on a loopback port so all of Shipshape uses one driver and the
 * real wire protocol whether it runs embedded or against a production server.
 *
 * PGlite is a single-process database: exactly one process may open its data directory.
 * That process (the owner) records its port in `STATE_DIR/db/server.json`; any other
 * Shipshape process on the machine (a CLI command while `serve` runs) connects to that
 * port instead of opening the files a second time.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile, open } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PGlite } from '@electric-sql/pglite';
import { ShipError, describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { BASELINE_WASM_ONLY, pgliteOptions } from './embedded-options.ts';
import { BackendLease, serveWireProtocol, type WireServer } from './embedded-wire.ts';

/** Told what opening the database is doing, for the progress lines of a slow start (src/runtime/progress.ts). */
export type StageListener = (stage: string) => void;

interface OwnerRecord {
  pid: number;
  port: number;
  startedAt: string;
}

export interface EmbeddedDatabase {
  /** Connection string for the loopback wire server. */
  readonly url: string;
  readonly dataDir: string;
  /** The PGlite instance, for in-process tools (pg_dump in WASM) that need it directly. */
  readonly pglite: PGlite;
  /** Hold this while using `pglite` directly so no connection's transaction is interleaved. */
  readonly lease: BackendLease;
  close(): Promise<void>;
}

export type EmbeddedConnection =
  | { readonly role: 'owner'; readonly database: EmbeddedDatabase }
  | { readonly role: 'guest'; readonly url: string; readonly ownerPid: number };

const urlFor = (port: number) => `postgres://postgres@127.0.0.1:${port}/postgres`;

/**
 * Opens the embedded database under `stateDir`: as its owner when no other process has
 * it, otherwise as a guest of the process that does.
 */
export async function connectEmbedded(stateDir: string, logger: Logger, onStage: StageListener = () => undefined): Promise<EmbeddedConnection> {
  const dir = path.join(stateDir, 'db');
  await mkdir(dir, { recursive: true });
  const owner = await liveOwner(dir);
  if (owner) return { role: 'guest', url: urlFor(owner.port), ownerPid: owner.pid };
  return { role: 'owner', database: await startEmbedded(dir, logger, onStage) };
}

async function startEmbedded(dir: string, logger: Logger, onStage: StageListener): Promise<EmbeddedDatabase> {
  const lockFile = path.join(dir, 'owner.lock');
  await takeOwnerLock(lockFile);
  const dataDir = path.join(dir, 'data');
  let pglite: PGlite | undefined;
  let wire: WireServer | undefined;
  try {
    // PG_VERSION is what PGlite itself looks for to decide whether the cluster exists.
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      onStage('the embedded database: creating the cluster (first start only)');
      logger.info({ dataDir }, 'creating the embedded database cluster (first start only; this takes a while)');
      await createCluster(dataDir);
    }
    onStage('the embedded database: starting PGlite');
    const { PGlite } = await import('@electric-sql/pglite');
    pglite = await PGlite.create(dataDir, pgliteOptions(PGlite.defaultStartParams));
    const lease = new BackendLease();
    wire = await serveWireProtocol(pglite, lease);
    const record: OwnerRecord = { pid: process.pid, port: wire.port, startedAt: new Date().toISOString() };
    await writeFile(path.join(dir, 'server.json'), JSON.stringify(record, null, 2));
    logger.debug({ dataDir, port: wire.port }, 'embedded database started');
    const opened = pglite;
    const server = wire;
    return {
      url: urlFor(wire.port),
      dataDir,
      pglite: opened,
      lease,
      close: async () => {
        await server.close();
        await opened.close();
        await rm(path.join(dir, 'server.json'), { force: true });
        await rm(lockFile, { force: true });
      },
    };
  } catch (error) {
    await wire?.close();
    await pglite?.close().catch(() => undefined);
    await rm(lockFile, { force: true });
    throw new ShipError(
      'SHIP_ERR_DATABASE_UNAVAILABLE',
      `The embedded database under ${dataDir} could not be opened: ${describeError(error)}. ` +
        'If another program has these files open, stop it; otherwise set DATABASE_URL to use a PostgreSQL server.',
      { cause: error },
    );
  }
}

/**
 * Runs initdb in its own process (embedded-create.ts says why) into a folder beside `dataDir`,
 * renamed into place only once complete: an interrupted first start leaves no half-made cluster
 * that a later start would take for a real one.
 */
async function createCluster(dataDir: string): Promise<void> {
  const creating = `${dataDir}.creating`;
  await rm(creating, { recursive: true, force: true });
  const script = fileURLToPath(new URL('./embedded-create.ts', import.meta.url));
  // The same Node and the same flags that run TypeScript here, minus those that attach a debugger
  // or profiler, and WebAssembly in baseline code only (embedded-options.ts): initdb took 4.7–5.0 s
  // and peaked at ≈570 MB with it, 5.7–7.8 s and ≈1.1 GB without.
  const flags = process.execArgv.filter((flag) => !/^--(inspect|cpu-prof|heap-prof|prof)/.test(flag));
  const wasmFlags = flags.some((flag) => /wasm|liftoff/.test(flag)) ? [] : BASELINE_WASM_ONLY;
  const child = spawn(process.execPath, [...flags, ...wasmFlags, script, creating], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => resolve(exitCode));
  });
  if (code !== 0) {
    await rm(creating, { recursive: true, force: true });
    throw new Error(`creating the cluster failed (exit code ${code}): ${stderr.trim() || 'no output'}`);
  }
  await rm(dataDir, { recursive: true, force: true });
  await rename(creating, dataDir);
}

/** Creates the lock file exclusively; a lock left by a process that no longer exists is taken over. */
async function takeOwnerLock(lockFile: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockFile, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new ShipError(
          'SHIP_ERR_EMBEDDED_DB_LOCKED',
          `The embedded database is held by process ${pid}, which is still starting or not serving. ` + 'Wait for it to start, or stop it, then try again.',
          { details: { pid } },
        );
      }
      await rm(lockFile, { force: true });
    }
  }
}

async function liveOwner(dir: string): Promise<OwnerRecord | undefined> {
  let record: OwnerRecord;
  try {
    record = JSON.parse(await readFile(path.join(dir, 'server.json'), 'utf8')) as OwnerRecord;
  } catch {
    return undefined;
  }
  if (record.pid === process.pid || !isAlive(record.pid)) return undefined;
  return (await portAnswers(record.port)) ? record : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}
