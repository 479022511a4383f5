/**
 * Finding pg_dump and pg_restore and checking they can handle the server.
 *
 * pg_dump refuses to dump a server of a newer major version ("aborting because of server
 * version mismatch"), and pg_restore cannot read archives written by a newer pg_dump, so the
 * versions are compared up front and the message names both and how to get the right one.
 */
import path from 'node:path';
import type { Config } from '../../config/index.ts';
import { isShipError, ShipError, describeError } from '../../errors.ts';
import { withClient } from './connections.ts';
import { runTool } from './tool-process.ts';

export type PgToolName = 'pg_dump' | 'pg_restore';

export interface ToolVersion {
  /** What is run: a bare name (found on PATH) or a path under PG_BIN_DIR. */
  readonly command: string;
  /** e.g. "15.20" */
  readonly version: string;
  readonly major: number;
}

export function toolCommand(config: Config, name: PgToolName): string {
  return config.backups.pgBinDir === undefined ? name : path.join(config.backups.pgBinDir, name);
}

/**
 * How long an answer of `<tool> --version` is reused. A backup asks twice within a second (its
 * prerequisite, then the dump step), and on Debian `pg_dump` is a Perl wrapper that costs
 * 50–100 ms to start; an upgrade of the client tools is seen within a minute.
 */
const VERSION_REUSE_MS = 60_000;
const knownVersions = new Map<string, { readonly at: number; readonly version: ToolVersion }>();

/** Runs `<tool> --version` (or reuses its answer from the last minute). Throws SHIP_ERR_TOOL_MISSING when the tool is not there. */
export async function toolVersion(config: Config, name: PgToolName): Promise<ToolVersion> {
  const command = toolCommand(config, name);
  const known = knownVersions.get(command);
  if (known !== undefined && Date.now() - known.at < VERSION_REUSE_MS) return known.version;
  const version = await askVersion(config, name, command);
  knownVersions.set(command, { at: Date.now(), version });
  return version;
}

async function askVersion(config: Config, name: PgToolName, command: string): Promise<ToolVersion> {
  let output: string;
  try {
    output = await runTool(command, ['--version'], { env: process.env });
  } catch (error) {
    if (isShipError(error) && error.code === 'SHIP_ERR_TOOL_MISSING') {
      throw new ShipError(
        'SHIP_ERR_TOOL_MISSING',
        `${name} is not installed (looked for \`${command}\`${config.backups.pgBinDir === undefined ? ' on PATH' : ''}). ${installHint(undefined)}`,
      );
    }
    throw error;
  }
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(output);
  if (match?.[1] === undefined) {
    throw new ShipError(
      'SHIP_ERR_TOOL_MISSING',
      `\`${command} --version\` printed "${output.trim().slice(0, 120)}", which is not a PostgreSQL ${name}. ${installHint(undefined)}`,
    );
  }
  return { command, version: match[2] === undefined ? match[1] : `${match[1]}.${match[2]}`, major: Number(match[1]) };
}

/** `server_version_num` (e.g. 150020) → 15. */
export function serverMajor(versionNum: number): number {
  // Before PostgreSQL 10 the major version had two parts (90624 → 9.6); those servers are unsupported anyway.
  return Math.floor(versionNum / 10_000);
}

/** How to get client tools of a given major version. */
export function installHint(major: number | undefined): string {
  const v = major === undefined ? 'N' : String(major);
  return (
    `Install the PostgreSQL ${major === undefined ? '' : `${v} `}client tools — Debian/Ubuntu: \`apt-get install postgresql-client-${v}\` ` +
    `(from apt.postgresql.org for versions your release lacks); macOS: \`brew install postgresql@${v}\`; ` +
    `then put them first on PATH or set PG_BIN_DIR (e.g. /usr/lib/postgresql/${v}/bin).`
  );
}

/** Throws SHIP_ERR_TOOL_MISSING unless `tool` is at least the server's major version. */
export function requireAtLeast(name: PgToolName, tool: ToolVersion, serverMajorVersion: number, serverVersion: string): void {
  if (tool.major >= serverMajorVersion) return;
  throw new ShipError(
    'SHIP_ERR_TOOL_MISSING',
    `${name} ${tool.version} is older than the server (PostgreSQL ${serverVersion}); ${name} must be version ${serverMajorVersion} or newer. ${installHint(serverMajorVersion)}`,
    { details: { tool: name, toolVersion: tool.version, serverVersion } },
  );
}

/** The server's version, e.g. { text: "15.20", major: 15 }. Throws SHIP_ERR_DATABASE_UNAVAILABLE when it does not answer. */
export async function serverVersionAt(url: string): Promise<{ text: string; major: number }> {
  try {
    return await withClient(
      url,
      async (client) => {
        const { rows } = await client.query<{ version: string; num: string }>(
          "SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num",
        );
        return { text: (rows[0]?.version ?? '?').split(' ')[0] ?? '?', major: serverMajor(Number(rows[0]?.num ?? 0)) };
      },
      'shipshape-backup',
    );
  } catch (error) {
    throw new ShipError(
      'SHIP_ERR_DATABASE_UNAVAILABLE',
      `Cannot reach the database: ${describeError(error)}. Check that it is running and that DATABASE_URL is right.`,
      { cause: error },
    );
  }
}

/** The prerequisite "pg_dump installed, at least the server's major version", as a check result. */
export async function pgDumpCheck(config: Config, url: string): Promise<{ ok: boolean; detail: string }> {
  const server = await serverVersionAt(url);
  try {
    const tool = await toolVersion(config, 'pg_dump');
    requireAtLeast('pg_dump', tool, server.major, server.text);
    return { ok: true, detail: `pg_dump ${tool.version} (${tool.command}) for server ${server.text}` };
  } catch (error) {
    if (isShipError(error) && error.code === 'SHIP_ERR_TOOL_MISSING') return { ok: false, detail: error.message };
    throw error;
  }
}
