/**
 * Reads the shell commands out of docs/RUNBOOK.md exactly as written, so tests can run them
 * verbatim and break when the runbook changes.
 *
 * Every ```bash block is cut into commands the way bash reads them: a command goes on while a
 * line ends with `\`, `|`, `&&` or `||`, while a quote is open (`-d '{` … `}'`, `-c "SELECT …`
 * over several lines) and until each here-document's terminator line. Lines that are only a
 * comment, outside a command, are left out; a comment after a command stays in its text (bash
 * ignores it). A block that starts with `#!` is a script and is kept whole.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../helpers/cli.ts';

export const RUNBOOK_PATH = path.join(PROJECT_ROOT, 'docs/RUNBOOK.md');

export interface RunbookCommand {
  /** The `###` heading the command is under, e.g. "Emergency App Disable". */
  readonly section: string;
  /** The bold label before the block, e.g. "Steps", "Verification", "Re-enable". */
  readonly block: string;
  /** 1-based line in RUNBOOK.md where the command starts. */
  readonly line: number;
  /** The command as written: continuation lines, quotes and here-documents included. */
  readonly text: string;
  /** The program that does the work: the first word, or what `echo … |` feeds. */
  readonly tool: string;
}

export interface RunbookScript {
  readonly section: string;
  readonly block: string;
  readonly line: number;
  /** From the script's first comment, e.g. "maintenance.sh". */
  readonly name: string;
  /** The whole block, shebang included. */
  readonly text: string;
}

export interface Runbook {
  /** Every `###` heading, in order. */
  readonly sections: readonly string[];
  readonly commands: readonly RunbookCommand[];
  readonly scripts: readonly RunbookScript[];
}

export function readRunbook(file = RUNBOOK_PATH): Runbook {
  return parseRunbook(readFileSync(file, 'utf8'));
}

export function parseRunbook(markdown: string): Runbook {
  const lines = markdown.split('\n');
  const sections: string[] = [];
  const commands: RunbookCommand[] = [];
  const scripts: RunbookScript[] = [];
  let section = '';
  let block = '';
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] ?? '';
    const heading = /^### (.+)$/.exec(line);
    if (heading?.[1]) {
      section = heading[1].trim();
      sections.push(section);
      block = '';
      continue;
    }
    const label = /^\*\*(.+?):?\*\*/.exec(line);
    if (label?.[1]) block = label[1].replace(/:$/, '');
    if (!/^```/.test(line)) continue;
    const language = line.slice(3).trim();
    const start = index + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end] ?? '')) end++;
    const body = lines.slice(start, end);
    index = end;
    if (language !== 'bash') continue;
    if (body[0]?.startsWith('#!')) {
      const name =
        body
          .slice(1)
          .find((text) => /^#\s*\S/.test(text))
          ?.replace(/^#\s*/, '')
          .trim() ?? 'script';
      scripts.push({ section, block, line: start + 1, name, text: `${body.join('\n')}\n` });
      continue;
    }
    for (const command of splitCommands(body)) {
      commands.push({ section, block, line: start + 1 + command.offset, text: command.text, tool: toolOf(command.text) });
    }
  }
  return { sections, commands, scripts };
}

/** Cuts a block's lines into commands; `offset` is the command's first line within the block. */
export function splitCommands(lines: readonly string[]): Array<{ offset: number; text: string }> {
  const commands: Array<{ offset: number; text: string }> = [];
  let current: string[] = [];
  let offset = 0;
  let quote: "'" | '"' | null = null;
  const heredocs: Array<{ terminator: string; stripTabs: boolean }> = [];

  lines.forEach((line, index) => {
    if (current.length === 0) {
      if (line.trim() === '' || line.trimStart().startsWith('#')) return;
      offset = index;
    }
    current.push(line);
    const pending = heredocs[0];
    if (pending) {
      if ((pending.stripTabs ? line.replace(/^\t+/, '') : line) === pending.terminator) heredocs.shift();
      if (heredocs.length === 0 && quote === null) flush();
      return;
    }
    const scan = scanLine(line, quote);
    quote = scan.quote;
    heredocs.push(...scan.heredocs);
    if (quote !== null || heredocs.length > 0 || scan.continues) return;
    flush();
  });
  if (current.length > 0) throw new Error(`unterminated command in the runbook:\n${current.join('\n')}`);
  return commands;

  function flush(): void {
    commands.push({ offset, text: current.join('\n') });
    current = [];
  }
}

/**
 * Reads one line as bash would for what matters here: where quotes open and close, here-document
 * operators, an unquoted comment, and whether the command carries on to the next line.
 */
function scanLine(
  line: string,
  startQuote: "'" | '"' | null,
): { quote: "'" | '"' | null; heredocs: Array<{ terminator: string; stripTabs: boolean }>; continues: boolean } {
  let quote = startQuote;
  const heredocs: Array<{ terminator: string; stripTabs: boolean }> = [];
  let code = '';
  for (let i = 0; i < line.length; i++) {
    const char = line[i] ?? '';
    if (quote === "'") {
      if (char === "'") quote = null;
      continue;
    }
    if (char === '\\') {
      if (i === line.length - 1) return { quote, heredocs, continues: true };
      i++;
      code += ' ';
      continue;
    }
    if (quote === '"') {
      if (char === '"') quote = null;
      continue;
    }
    if (char === "'" || char === '"') {
      quote = char;
      continue;
    }
    if (char === '#' && (i === 0 || /\s/.test(line[i - 1] ?? ''))) break;
    if (char === '<' && line[i + 1] === '<' && line[i + 2] !== '<') {
      const operator = /^<<(-?)\s*(['"]?)([A-Za-z_][\w]*)\2/.exec(line.slice(i));
      if (operator?.[3]) {
        heredocs.push({ terminator: operator[3], stripTabs: operator[1] === '-' });
        i += operator[0].length - 1;
        code += ' ';
        continue;
      }
    }
    code += char;
  }
  const trimmed = code.trimEnd();
  return { quote, heredocs, continues: quote === null && /(\||&&)$/.test(trimmed) };
}

function toolOf(text: string): string {
  const words = text
    .replace(/^(\s*[A-Za-z_]\w*=\S*\s+)+/, '')
    .trim()
    .split(/\s+/);
  const first = words[0] ?? '';
  if (first === 'echo') {
    const fed = /\|\s*(?:\\\n\s*)?([\w./-]+)/.exec(text);
    if (fed?.[1]) return fed[1];
  }
  return first;
}
