import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { headerSettings, PlainDumpScanner, withoutSettings } from '../../src/ops/backups/plain-sql.ts';

const dump = [
  '--',
  '-- PostgreSQL database dump',
  '--',
  'SET statement_timeout = 0;',
  'SET transaction_timeout = 0;',
  "SELECT pg_catalog.set_config('search_path', '', false);",
  '',
  '--',
  '-- Name: f(); Type: FUNCTION; Schema: public; Owner: -',
  '--',
  'CREATE FUNCTION public.f() RETURNS void LANGUAGE plpgsql AS $$',
  'BEGIN',
  'SET transaction_timeout = 0;',
  'END $$;',
  'CREATE TABLE public.users (',
  '    id integer',
  ');',
  'CREATE TABLE "Odd"."Mixed Case" (',
  '    id integer',
  ');',
  '--',
  '-- PostgreSQL database dump complete',
  '--',
  '',
].join('\n');

describe('plain SQL dumps', () => {
  test('only the header SET lines count as the dump settings', () => {
    assert.deepEqual(headerSettings(dump), ['statement_timeout', 'transaction_timeout']);
  });

  test('a setting the target does not know is left out of the header and nowhere else', () => {
    const filtered = withoutSettings(dump, new Set(['transaction_timeout']));
    const lines = filtered.split('\n');
    assert.ok(lines[4]?.startsWith('-- shipshape: left out `SET transaction_timeout = 0;`'));
    assert.equal(lines[3], 'SET statement_timeout = 0;');
    assert.equal(lines[12], 'SET transaction_timeout = 0;', "the function body is the function author's business");
  });

  test('the scanner sees a complete dump and the tables it creates, across any chunking', () => {
    const scanner = new PlainDumpScanner();
    const bytes = Buffer.from(dump, 'utf8');
    for (let at = 0; at < bytes.length; at += 7) scanner.push(bytes.subarray(at, at + 7));
    const shape = scanner.finish();
    assert.equal(shape.complete, true);
    assert.deepEqual([...shape.tables].sort(), ['Odd.Mixed Case', 'public.users']);
  });

  test('a dump cut off before its closing line is not complete', () => {
    const scanner = new PlainDumpScanner();
    scanner.push(Buffer.from(dump.slice(0, dump.indexOf('-- PostgreSQL database dump complete')), 'utf8'));
    assert.equal(scanner.finish().complete, false);
  });
});
