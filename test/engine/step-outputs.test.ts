/**
 * The typed step-output contract (src/ops/engine/types.ts): readers get a step's journaled
 * output parsed with the schema the step declares, and `stepFor` type-checks `run` against it.
 * Pure functions over a context's outputs: no database, no runner.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { isShipError } from '../../src/errors.ts';
import { outputOf, requireOutput, stepFor, type JsonObject, type Step } from '../../src/ops/engine/types.ts';

const step = stepFor<{ readonly name: string }>();
const dump = step({
  id: 'dump',
  title: 'Dump',
  output: z.object({ backupId: z.string(), bytes: z.number(), checks: z.array(z.string()).default([]) }),
  describe: () => ['dump'],
  run: async () => ({ backupId: 'b-1', bytes: 12 }),
});
// A declared step is still a Step of the procedure's parameters, so it goes in `steps: [...]`.
const listed: ReadonlyArray<Step<{ readonly name: string }>> = [dump];

step({
  id: 'wrong',
  title: 'Returns what it does not declare',
  output: z.object({ backupId: z.string() }),
  describe: () => [],
  // @ts-expect-error run must return what `output` accepts (z.input of the schema)
  run: async () => ({ backupId: 42 }),
});

function contextWith(outputs: Record<string, JsonObject>) {
  return { runId: 'run-1', outputs };
}

describe('typed step outputs', () => {
  test('outputOf parses the journaled output with the step’s schema (defaults applied) and is undefined before the step completed', () => {
    assert.equal(listed.length, 1);
    assert.deepEqual(outputOf(contextWith({ dump: { backupId: 'b-1', bytes: 12 } }), dump), { backupId: 'b-1', bytes: 12, checks: [] });
    assert.equal(outputOf(contextWith({}), dump), undefined);
  });

  test('a journaled output the schema no longer accepts is a ShipError naming the step and the field, not a wrong value', () => {
    assert.throws(
      () => outputOf(contextWith({ dump: { backupId: 'b-1', bytes: '12' } }), dump),
      (error: unknown) => isShipError(error) && /step dump/.test(error.message) && /bytes/.test(error.message),
    );
  });

  test('requireOutput names the step whose output is missing', () => {
    assert.throws(
      () => requireOutput(contextWith({}), dump),
      (error: unknown) => isShipError(error) && /Step dump of run run-1 has no output/.test(error.message),
    );
    assert.equal(requireOutput(contextWith({ dump: { backupId: 'b-2', bytes: 1 } }), dump).backupId, 'b-2');
  });
});
