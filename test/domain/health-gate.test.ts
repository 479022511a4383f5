/**
 * The shared judgement of the health gates (store rollouts and OTA update rollouts): one signal
 * against its control or a fixed limit, and one verdict for all signals.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { API_ERROR_RATE, combineVerdicts, CRASH_FREE_SESSIONS, judgeSignal } from '../../src/domain/health-gate.ts';

const crashFree = { ...CRASH_FREE_SESSIONS, minSample: 100, allowedWorsening: 0.005, fallbackLimit: 0.99 };
const apiErrors = { ...API_ERROR_RATE, minSample: 100, allowedWorsening: 0.005, fallbackLimit: 0.01 };
const control = (rate: number, sample = 10_000) => ({ name: '1.4.2', sample, rate });

describe('judging one signal', () => {
  test('waits while the candidate has less than the minimum sample, whatever its rate', () => {
    const judged = judgeSignal(crashFree, { name: '1.5.0', sample: 99, rate: 0.5 }, control(0.997));
    assert.equal(judged.verdict, 'wait');
    assert.equal(judged.detail, '99 of 100 sessions needed for 1.5.0');
    assert.equal(judgeSignal(apiErrors, { name: '1.5.0', sample: 1_000, rate: null }, control(0.002)).verdict, 'wait', 'no rate reported is not judged');
  });

  test('passes within the allowed worsening of the control and breaches beyond it, in the direction that is worse', () => {
    const passed = judgeSignal(crashFree, { name: '1.5.0', sample: 1_000, rate: 0.995 }, control(0.997));
    assert.equal(passed.verdict, 'pass');
    assert.ok(Math.abs(passed.limit - 0.992) < 1e-9);
    assert.equal(passed.detail, '1.5.0 99.50 % crash-free over 1000 sessions ≥ 99.20 %, against 1.4.2 at 99.70 % over 10000 sessions − 0.5 points');
    assert.equal(judgeSignal(crashFree, { name: '1.5.0', sample: 1_000, rate: 0.99 }, control(0.997)).verdict, 'breach');
    const erroring = judgeSignal(apiErrors, { name: '1.5.0', sample: 1_000, rate: 0.02 }, control(0.002));
    assert.equal(erroring.verdict, 'breach');
    assert.match(erroring.detail, /2\.00 % API errors over 1000 requests > 0\.70 %, against 1\.4\.2 at 0\.20 % over 10000 requests \+ 0\.5 points/);
    assert.equal(
      judgeSignal(apiErrors, { name: '1.5.0', sample: 1_000, rate: 0 }, control(0.002)).verdict,
      'pass',
      'fewer errors than the control is better, not worse',
    );
  });

  test('a candidate exactly at the limit passes, although the limit is a floating-point difference', () => {
    assert.equal(judgeSignal(crashFree, { name: '1.5.0', sample: 1_000, rate: 0.992 }, control(0.997)).verdict, 'pass');
    // 0.009 + 0.005 is 0.013999999999999999 in binary floating point, a hair below 0.014.
    assert.equal(judgeSignal(apiErrors, { name: '1.5.0', sample: 1_000, rate: 0.014 }, control(0.009)).verdict, 'pass');
    assert.equal(judgeSignal(crashFree, { name: '1.5.0', sample: 1_000, rate: 0.99 }, undefined).verdict, 'pass', 'at the fixed floor');
  });

  test('holds the candidate to the fixed limit when the control has too small a sample or there is none', () => {
    const small = judgeSignal(crashFree, { name: '1.5.0', sample: 1_000, rate: 0.985 }, control(0.98, 99));
    assert.equal(small.verdict, 'breach', "a poor control's own rate does not lower the bar");
    assert.equal(small.limit, 0.99);
    assert.match(small.detail, /against the fixed floor \(1\.4\.2 has fewer than 100 sessions\)/);
    const none = judgeSignal(apiErrors, { name: '1.5.0', sample: 1_000, rate: 0.009 }, undefined);
    assert.equal(none.verdict, 'pass');
    assert.equal(none.limit, 0.01);
    assert.match(none.detail, /≤ 1\.00 %, against the fixed ceiling \(no control\)/);
    assert.equal(
      judgeSignal(crashFree, { name: '1.5.0', sample: 1_000, rate: 0.995 }, { name: '1.4.2', sample: 5_000, rate: null }).limit,
      0.99,
      'a control without a rate is no baseline',
    );
  });
});

describe('combining the signals', () => {
  test('breach if any breached, else wait if any waits, else pass; nothing judged is never a pass', () => {
    assert.equal(combineVerdicts(['pass', 'wait', 'breach']), 'breach');
    assert.equal(combineVerdicts(['wait', 'pass']), 'wait');
    assert.equal(combineVerdicts(['pass', 'pass']), 'pass');
    assert.equal(combineVerdicts([]), 'wait');
  });
});
