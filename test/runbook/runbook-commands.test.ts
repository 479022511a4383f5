/**
 * The runbook reader cuts ```bash blocks into commands where bash would, so the verbatim test
 * runs each command whole and nothing else.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRunbook, splitCommands } from './runbook-commands.ts';

const texts = (lines: string[]) => splitCommands(lines).map((command) => command.text);

test('a command goes on over trailing backslashes, open quotes and a trailing pipe', () => {
  assert.deepEqual(
    texts([
      '# 1. a comment line is not a command',
      'curl -X POST https://api.yourdomain.com/admin/maintenance \\',
      '  -H "Content-Type: application/json" \\',
      "  -d '{",
      '    "enabled": true',
      "  }'",
      '',
      'echo "done - $(date)" | \\',
      '  slack-cli -c "#incidents" -m -',
      'psql -c \\',
      '  "SELECT 1',
      '   FROM t;"  # it\'s a trailing comment with an apostrophe',
    ]),
    [
      'curl -X POST https://api.yourdomain.com/admin/maintenance \\\n  -H "Content-Type: application/json" \\\n  -d \'{\n    "enabled": true\n  }\'',
      'echo "done - $(date)" | \\\n  slack-cli -c "#incidents" -m -',
      'psql -c \\\n  "SELECT 1\n   FROM t;"  # it\'s a trailing comment with an apostrophe',
    ],
  );
});

test('a here-document belongs to its command up to the terminator, quotes inside it included', () => {
  assert.deepEqual(texts(["cat > notice.md << 'EOF'", "We've identified an issue.", 'EOF', 'rm notice.md']), [
    "cat > notice.md << 'EOF'\nWe've identified an issue.\nEOF",
    'rm notice.md',
  ]);
});

test('an unterminated command is an error, not a silently shorter command', () => {
  assert.throws(() => splitCommands(["curl -d '{", '  "open": true']), /unterminated command/);
});

test('commands carry their section, block label, line and tool; a #! block is a script', () => {
  const runbook = parseRunbook(
    [
      '### Emergency App Disable',
      '**Steps:**',
      '```bash',
      'echo "EMERGENCY" | \\',
      '  slack-cli -c "#incidents" -m -',
      '```',
      '```typescript',
      'await AsyncStorage.clear();',
      '```',
      '### Monthly Maintenance Checklist',
      '**During Maintenance (T-0):**',
      '```bash',
      '#!/bin/bash',
      '# maintenance.sh',
      'set -e',
      '```',
    ].join('\n'),
  );
  assert.deepEqual(runbook.sections, ['Emergency App Disable', 'Monthly Maintenance Checklist']);
  assert.deepEqual(
    runbook.commands.map(({ section, block, line, tool }) => ({ section, block, line, tool })),
    [{ section: 'Emergency App Disable', block: 'Steps', line: 4, tool: 'slack-cli' }],
  );
  assert.deepEqual(
    runbook.scripts.map(({ name, block, line }) => ({ name, block, line })),
    [{ name: 'maintenance.sh', block: 'During Maintenance (T-0)', line: 13 }],
  );
});
