import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  defaultAlertRouting,
  escalationPath,
  issueTypes,
  loadAlertRouting,
  resolveAlertRoute,
  type Alert,
  type IssueType,
} from '../../src/adapters/alerts/index.ts';
import { isShipError, type ShipError } from '../../src/errors.ts';

const key = 'a'.repeat(32);

function alert(overrides: Partial<Alert> = {}): Alert {
  return {
    issueType: 'database',
    severity: 'info',
    event: 'procedure.succeeded',
    title: 'Backup done',
    text: 'ok',
    ...overrides,
  };
}

describe('built-in escalation matrix', () => {
  const expected: Record<IssueType, string> = {
    database: 'DBA On-Call → Engineering Lead → CTO',
    security: 'Security Team → CISO → CTO',
    infrastructure: 'DevOps On-Call → Infrastructure Lead → CTO',
    application: 'Dev On-Call → Engineering Lead → CTO',
  };
  for (const issueType of issueTypes) {
    const path = expected[issueType];
    test(`routes ${issueType} alerts to the runbook's contacts (${path})`, () => {
      const route = resolveAlertRoute(defaultAlertRouting, alert({ issueType }));
      assert.equal(escalationPath(route.escalation), path);
    });
  }

  test('sends problems to #incidents, the runbook contact channel, through the default webhook', () => {
    const route = resolveAlertRoute(defaultAlertRouting, alert({ severity: 'error' }), {
      slackWebhook: 'https://hooks.example/default',
    });
    assert.deepEqual(route.slack, [{ webhookUrl: 'https://hooks.example/default', channels: ['#incidents'], shared: true }]);
    assert.deepEqual(route.unrouted, []);
  });

  test('keeps routine notices out of #incidents but still delivers them where hinted', () => {
    const route = resolveAlertRoute(defaultAlertRouting, alert({ channelHints: ['#ops-backups'] }), {
      slackWebhook: 'https://hooks.example/default',
    });
    assert.deepEqual(
      route.slack.map((s) => s.channels),
      [['#ops-backups']],
    );
  });

  test('posts once per webhook when several channels share the default webhook', () => {
    const route = resolveAlertRoute(defaultAlertRouting, alert({ severity: 'critical', channelHints: ['#ops-backups'] }), {
      slackWebhook: 'https://hooks.example/default',
    });
    assert.equal(route.slack.length, 1);
    assert.deepEqual(route.slack[0]?.channels, ['#ops-backups', '#incidents']);
  });

  test('reports channels and pages with nowhere to go as unrouted', () => {
    const route = resolveAlertRoute(defaultAlertRouting, alert({ severity: 'critical', channelHints: ['ops-team'], page: 'trigger' }));
    assert.deepEqual(route.slack, []);
    assert.deepEqual(route.unrouted, ['ops-team', '#incidents', 'pagerduty']);
  });

  test('pages with the default PagerDuty key when the issue type has none', () => {
    const route = resolveAlertRoute(defaultAlertRouting, alert({ page: 'trigger' }), { pagerDutyRoutingKey: key });
    assert.deepEqual(route.pagerduty, { routingKey: key, action: 'trigger' });
  });
});

describe('loadAlertRouting', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shipshape-alert-routing-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function file(name: string, content: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, content);
    return path;
  }

  async function loadError(path: string): Promise<ShipError> {
    try {
      await loadAlertRouting(path);
    } catch (error) {
      assert.ok(isShipError(error), 'expected a ShipError');
      assert.equal(error.code, 'SHIP_ERR_ALERT_ROUTING_INVALID');
      return error;
    }
    assert.fail('expected loadAlertRouting to throw');
  }

  test('gives the built-in runbook matrix when no file is configured', async () => {
    assert.equal(await loadAlertRouting(undefined), defaultAlertRouting);
  });

  test('merges a file over the runbook matrix and uses its channels and keys', async () => {
    const path = await file(
      'ok.json',
      JSON.stringify({
        channels: {
          '#ops-backups': { slack: 'https://hooks.slack.com/services/T0/B0/backups' },
          '#security': { slack: 'https://hooks.slack.com/services/T0/B1/security' },
          'ops-team': { email: ['ops-team@example.com'] },
        },
        matrix: {
          database: { pagerdutyRoutingKey: key },
          security: { channels: ['#security', 'ops-team'], minSeverity: 'info' },
        },
      }),
    );
    const routing = await loadAlertRouting(path);
    assert.equal(routing.source, path);
    assert.equal(routing.matrix.database.primary, 'DBA On-Call');
    assert.equal(routing.matrix.database.pagerdutyRoutingKey, key);
    assert.deepEqual(routing.matrix.database.channels, ['#incidents']);
    assert.equal(escalationPath(routing.matrix.security), 'Security Team → CISO → CTO');

    const route = resolveAlertRoute(routing, alert({ issueType: 'security', channelHints: ['#ops-backups'] }));
    assert.deepEqual(
      route.slack.map((s) => [s.webhookUrl, s.channels]),
      [
        ['https://hooks.slack.com/services/T0/B0/backups', ['#ops-backups']],
        ['https://hooks.slack.com/services/T0/B1/security', ['#security']],
      ],
    );
    assert.deepEqual(route.email, { recipients: ['ops-team@example.com'], channels: ['ops-team'] });
  });

  test('names the file when it does not exist', async () => {
    const path = join(dir, 'missing.json');
    const error = await loadError(path);
    assert.match(error.message, new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not exist`));
    assert.match(error.message, /ALERT_ROUTING_FILE/);
  });

  test('reports bad JSON with its position but without quoting the file (it may hold webhook URLs)', async () => {
    const path = await file('bad.json', '{"channels": {"#x": {"slack": "https://hooks.slack.com/services/SECRET"}} oops');
    const error = await loadError(path);
    assert.match(error.message, /bad\.json is not valid JSON/);
    assert.match(error.message, /line 1 column/);
    assert.doesNotMatch(error.message, /SECRET/);
  });

  test('names the file, the JSON path and the problem for each invalid value', async () => {
    const path = await file(
      'invalid.json',
      JSON.stringify({
        channels: {
          '#ops-backups': { slack: 'not a url' },
          'ops-team': { email: ['nope'] },
          empty: {},
        },
        matrix: {
          database: { escalation: ['Engineering Lead', 7], pagerdutyRoutingKey: 'short' },
          security: { escalations: [] },
          application: { channels: ['ops-tea'] },
          network: {},
        },
      }),
    );
    const error = await loadError(path);
    const lines = error.message.split('\n');
    assert.match(lines[0] ?? '', /Alert routing file .*invalid\.json is invalid:/);
    const expected = [
      /\$\.channels\["#ops-backups"\]\.slack: must be an http\(s\) Slack incoming-webhook URL/,
      /\$\.channels\["ops-team"\]\.email\[0\]: must be an email address/,
      /\$\.channels\.empty: needs "slack", "email" or both/,
      /\$\.matrix\.database\.escalation\[1\]: .*expected string/,
      /\$\.matrix\.database\.pagerdutyRoutingKey: must be a 32-character PagerDuty Events API v2 integration key/,
      /\$\.matrix\.security: unknown key "escalations" \(expected primary, escalation/,
      /\$\.matrix: unknown key "network" \(expected database, security, infrastructure, application\)/,
    ];
    for (const pattern of expected)
      assert.ok(
        lines.some((line) => pattern.test(line)),
        `missing ${pattern}\n${error.message}`,
      );
    assert.match(error.message, /Fix the file or point ALERT_ROUTING_FILE at a valid one\./);
  });

  test('rejects a matrix channel that is neither defined nor a Slack channel', async () => {
    const path = await file('typo.json', JSON.stringify({ matrix: { application: { channels: ['ops-tea'] } } }));
    const error = await loadError(path);
    assert.match(error.message, /\$\.matrix\.application\.channels\[0\]: "ops-tea" is not defined under "channels"/);
  });

  test('does not echo a secret value back in validation messages', async () => {
    const path = await file('secret.json', JSON.stringify({ matrix: { database: { pagerdutyRoutingKey: 'sk-0123456789-very-secret-value' } } }));
    const error = await loadError(path);
    assert.doesNotMatch(error.message, /very-secret/);
  });
});
