/**
 * The runbook's scripts POST JSON to the admin routes with `curl -d '…'` and no Content-Type,
 * so curl labels it `application/x-www-form-urlencoded`. The admin routes read such a body as
 * JSON; a body that is not JSON is a 415 that says which header to send. App routes keep
 * taking `application/json` only (README "HTTP API" gives the reason).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN_TOKEN, signUp, startTestApi, type TestApi } from '../helpers/api.ts';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe("admin routes take JSON sent with curl's default form content type", () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(async () => {
    await api.close();
  });

  test('POST /admin/maintenance with a JSON body labelled form-urlencoded turns maintenance on and off', async () => {
    const on = await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, headers: FORM, raw: '{"enabled": true}' });
    assert.equal(on.status, 200, on.text);
    assert.equal(on.json.maintenance.enabled, true);
    assert.equal((await api.request('GET', '/health')).json.status, 'maintenance');
    const off = await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, headers: FORM, raw: '{"enabled": false}' });
    assert.equal(off.status, 200, off.text);
    assert.equal((await api.request('GET', '/health')).json.status, 'ok');
  });

  test('POST /admin/notifications/schedule, /admin/notifications/send and /admin/cache/clear read the JSON body too', async () => {
    const at = new Date(Date.now() + 72 * 3_600_000).toISOString();
    const scheduled = await api.request('POST', '/admin/notifications/schedule', {
      token: ADMIN_TOKEN,
      headers: FORM,
      raw: JSON.stringify({ scheduledFor: at, title: 'Scheduled Maintenance', body: 'Sunday, 2:00 AM.' }),
    });
    assert.equal(scheduled.status, 201, scheduled.text);
    assert.equal(scheduled.json.notification.status, 'pending');
    const sent = await api.request('POST', '/admin/notifications/send', { token: ADMIN_TOKEN, headers: FORM, raw: '{"title":"Hello","body":"World"}' });
    assert.equal(sent.status, 202, sent.text);
    const cleared = await api.request('POST', '/admin/cache/clear', { token: ADMIN_TOKEN, headers: FORM, raw: '{"scope":"tasks"}' });
    assert.equal(cleared.status, 200, cleared.text);
    assert.equal(cleared.json.scope, 'tasks');
  });

  test('a form-urlencoded body that is not JSON is a 415 envelope that says to send Content-Type: application/json', async () => {
    for (const raw of ['enabled=true', '{"enabled": tru}']) {
      const response = await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, headers: FORM, raw });
      assert.equal(response.status, 415, raw);
      assert.equal(response.json.error.code, 'SHIP_ERR_UNSUPPORTED_MEDIA_TYPE');
      assert.match(response.json.error.message, /Content-Type: application\/json/);
      assert.ok(!response.text.includes('    at '), 'no stack trace');
    }
    assert.equal((await api.request('GET', '/health')).json.status, 'ok');
  });

  test('JSON that would poison a prototype is refused as it is with application/json', async () => {
    const response = await api.request('POST', '/admin/cache/clear', {
      token: ADMIN_TOKEN,
      headers: FORM,
      raw: '{"scope":"all","__proto__":{"polluted":true}}',
    });
    assert.ok(response.status >= 400 && response.status < 500, response.text);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('an empty form-urlencoded body is a 400 that names the missing body, as with no body at all', async () => {
    const response = await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, headers: FORM, raw: '' });
    assert.equal(response.status, 400, response.text);
    assert.equal(response.json.error.code, 'SHIP_ERR_VALIDATION');
    assert.match(response.json.error.message, /^body/);
  });

  test('app routes still take application/json only: the same JSON labelled form-urlencoded is a 415', async () => {
    const user = await signUp(api);
    const login = await api.request('POST', '/auth/login', { headers: FORM, raw: JSON.stringify({ email: user.email, password: user.password }) });
    assert.equal(login.status, 415, login.text);
    assert.equal(login.json.error.code, 'SHIP_ERR_UNSUPPORTED_MEDIA_TYPE');
    const task = await api.request('POST', '/tasks', { token: user.token, headers: FORM, raw: '{"title":"Buy milk"}' });
    assert.equal(task.status, 415, task.text);
  });
});
