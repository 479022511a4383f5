/**
 * Rollout bucketing: a percentage of 100,000 simulated devices lands within ±0.5 percentage
 * points of the target, a device never flips between updates (sticky across requests and as
 * the percentage grows), and each update draws its own sample.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { choose, inRollout, type ChannelState } from '../../src/domain/updates.ts';

const DEVICES = 100_000;
// expo-updates sends a random UUID per installation as EAS-Client-ID. These are derived from a
// counter, so the run is the same every time (a random draw would miss ±0.5 pp about once in a thousand runs).
const uuidFrom = (seed: string) => {
  const hex = createHash('sha256').update(seed).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
};
const devices = Array.from({ length: DEVICES }, (_, index) => uuidFrom(`device ${index}`));
const candidate = uuidFrom('candidate update');
const control = uuidFrom('control update');

test('over 100,000 devices each step of 1, 5, 25, 50 and 100 % lands within ±0.5 percentage points', () => {
  for (const percent of [1, 5, 25, 50, 100]) {
    const chosen = devices.filter((device) => inRollout(device, candidate, percent)).length;
    const actual = (chosen / DEVICES) * 100;
    assert.ok(Math.abs(actual - percent) <= 0.5, `${percent} %: ${actual.toFixed(3)} % of devices`);
  }
});

test('a device gets the same update on every request, and growing the percentage only adds devices', () => {
  let previous = new Set<string>();
  for (const percent of [1, 5, 25, 50, 100]) {
    const state: ChannelState = { rollout: { id: 'r', updateId: candidate, percent }, headUpdateId: control, rolledBackAt: undefined };
    const current = new Set<string>();
    for (const device of devices) {
      const first = choose(state, device);
      // Sticky: asking again (the app launches again) never changes the answer.
      assert.deepEqual(choose(state, device), first);
      if (first.kind === 'update' && first.updateId === candidate) current.add(device);
      else assert.deepEqual(first, { kind: 'update', updateId: control });
    }
    for (const device of previous) assert.ok(current.has(device), `a device on the update at a lower percentage lost it at ${percent} %`);
    previous = current;
  }
  assert.equal(previous.size, DEVICES);
});

test('each update draws its own devices, and a request without EAS-Client-ID gets the control', () => {
  const other = uuidFrom('another update');
  const first = devices.filter((device) => inRollout(device, candidate, 10));
  const overlap = first.filter((device) => inRollout(device, other, 10)).length / first.length;
  // Independent samples overlap by about the percentage itself (10 %), not wholly.
  assert.ok(overlap > 0.07 && overlap < 0.13, `overlap ${overlap}`);
  const state: ChannelState = { rollout: { id: 'r', updateId: candidate, percent: 99.99 }, headUpdateId: control, rolledBackAt: undefined };
  assert.deepEqual(choose(state, undefined), { kind: 'update', updateId: control });
});
