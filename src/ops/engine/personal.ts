/**
 * Personal parameters: what a run knows about a person, kept apart from its journal so an
 * erasure can forget it.
 *
 * A procedure marks a parameter as personal in its schema (`personal(emailParam)`). The run's
 * journal — and so the database mirror, `runs show` and alerts — then never holds the value:
 * every string the journal would record has it replaced by `[personal:<field>]`, and the value
 * itself goes to a private record beside the journal (`STATE_DIR/runs/<run>.personal.json`,
 * 0600), which `runs resume` reads back. Erasing the person (`forgetPerson`) deletes those
 * records and scrubs the address from journals and run rows written before this existed, so
 * after `user delete` nothing under STATE_DIR or in the run tables names them.
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Pool } from '../../db/pool.ts';
import { errnoCode } from '../../errors.ts';
import { runsDirectory } from './journal.ts';
import { checkRunId } from './run-id.ts';
import type { JsonRedactor } from './redact.ts';
import type { JsonObject } from './types.ts';

/** The schemas marked personal; `personal()` registers one. */
const personalSchemas = z.registry<{ readonly personal: true }>();

/** Marks a parameter's schema as personal data (see the module comment). */
export function personal<S extends z.ZodType>(schema: S): S {
  personalSchemas.add(schema as z.ZodType, { personal: true });
  return schema;
}

/** What stands in a journal for a personal value. */
export function personalPlaceholder(field: string): string {
  return `[personal:${field}]`;
}

/** What replaces an erased person's details in journals and run rows written before they were kept apart. */
export const ERASED = '[erased]';

/** The top-level fields of a procedure's parameter schema that are marked personal. */
export function personalFields(schema: z.ZodType): string[] {
  if (!(schema instanceof z.ZodObject)) return [];
  return Object.entries(schema.shape as Record<string, z.ZodType>)
    .filter(([, field]) => isPersonal(field))
    .map(([name]) => name);
}

function isPersonal(schema: z.ZodType): boolean {
  for (let current: z.ZodType | undefined = schema; current !== undefined; current = unwrapOnce(current)) {
    if (personalSchemas.has(current)) return true;
  }
  return false;
}

function unwrapOnce(schema: z.ZodType): z.ZodType | undefined {
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable || schema instanceof z.ZodDefault) return schema.unwrap() as z.ZodType;
  return undefined;
}

/** The personal values among validated parameters, by field; strings only (an absent optional field has none). */
export function personalValues(schema: z.ZodType, params: unknown): Record<string, string> {
  const values: Record<string, string> = {};
  if (typeof params !== 'object' || params === null) return values;
  for (const field of personalFields(schema)) {
    const value = (params as Record<string, unknown>)[field];
    if (typeof value === 'string' && value !== '') values[field] = value;
  }
  return values;
}

/** A redactor that also replaces each personal value (in any letter case) with its placeholder. */
export function withPersonalValues(redactor: JsonRedactor, values: Readonly<Record<string, string>>): JsonRedactor {
  const replacements = Object.entries(values).map(([field, value]) => ({ pattern: caseInsensitive(value), placeholder: personalPlaceholder(field) }));
  if (replacements.length === 0) return redactor;
  const text = (value: string): string =>
    replacements.reduce((scrubbed, { pattern, placeholder }) => scrubbed.replace(pattern, placeholder), redactor.text(value));
  const deep = (value: unknown): unknown => {
    if (typeof value === 'string') return text(value);
    if (Array.isArray(value)) return value.map(deep);
    if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, deep(item)]));
    return value;
  };
  return {
    text,
    object: (value) => deep(redactor.object(value)) as JsonObject,
    objectWithPaths(value) {
      const secretsOut = redactor.objectWithPaths(value);
      return { value: deep(secretsOut.value) as JsonObject, redactedPaths: secretsOut.redactedPaths };
    },
  };
}

/** `value` as a regular expression source that matches it literally. */
function literalPattern(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function caseInsensitive(value: string): RegExp {
  return new RegExp(literalPattern(value), 'gi');
}

// ── the private record ────────────────────────────────────────────────────────────────

const recordSchema = z.object({ values: z.record(z.string(), z.string()) });

export function personalRecordPath(stateDir: string, runId: string): string {
  return path.join(runsDirectory(stateDir), `${checkRunId(runId)}.personal.json`);
}

/** Writes a run's personal values (owner-only, on disk before the journal names the run). */
export function writePersonalRecord(stateDir: string, runId: string, values: Readonly<Record<string, string>>): void {
  const fd = openSync(personalRecordPath(stateDir, runId), 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify({ values })}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A run's personal values; undefined when the run has none or they were erased. */
export async function readPersonalRecord(stateDir: string, runId: string): Promise<Record<string, string> | undefined> {
  let text: string;
  try {
    text = await readFile(personalRecordPath(stateDir, runId), 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = recordSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data.values : undefined;
}

// ── erasure ───────────────────────────────────────────────────────────────────────────

export interface Forgotten {
  /** Private records deleted (runs that named the person). */
  readonly records: number;
  /** Journal files rewritten without the value (written before values were kept apart). */
  readonly journals: number;
  /** Rows of shipshape.runs and shipshape.run_events rewritten the same way. */
  readonly runRows: number;
}

/**
 * Forgets a person in the engine's records: deletes every private record holding `value` and
 * replaces `value` (any letter case) with `[erased]` in every journal file and run row. Safe
 * to repeat. A run whose record is deleted can no longer be resumed (it can be rolled back).
 */
export async function forgetPerson(stateDir: string, pool: Pool | undefined, value: string): Promise<Forgotten> {
  const dir = runsDirectory(stateDir);
  const wanted = value.trim().toLowerCase();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') names = [];
    else throw error;
  }
  let records = 0;
  let journals = 0;
  for (const name of names) {
    const file = path.join(dir, name);
    if (name.endsWith('.personal.json')) {
      const text = await readFile(file, 'utf8');
      if (text.toLowerCase().includes(wanted)) {
        await rm(file, { force: true });
        records += 1;
      }
    } else if (name.endsWith('.jsonl')) {
      const text = await readFile(file, 'utf8');
      if (!text.toLowerCase().includes(wanted)) continue;
      // In place, not by rename: a process appending to this journal keeps writing to it.
      await writeFile(file, text.replace(caseInsensitive(wanted), ERASED));
      journals += 1;
    }
  }
  return { records, journals, runRows: pool ? await forgetInRunRows(pool, wanted) : 0 };
}

async function forgetInRunRows(pool: Pool, value: string): Promise<number> {
  const pattern = literalPattern(value);
  const runs = await pool.query(`UPDATE shipshape.runs SET params = regexp_replace(params::text, $1, $2, 'gi')::jsonb WHERE params::text ~* $1`, [
    pattern,
    ERASED,
  ]);
  const events = await pool.query(`UPDATE shipshape.run_events SET data = regexp_replace(data::text, $1, $2, 'gi')::jsonb WHERE data::text ~* $1`, [
    pattern,
    ERASED,
  ]);
  return (runs.rowCount ?? 0) + (events.rowCount ?? 0);
}
