/**
 * HTML for the few server-rendered pages (reset password, status, console): plain template
 * literals through one escaping tag, so no page needs a build step and nothing a user or an
 * operator typed reaches the page unescaped.
 *
 * `html\`…${value}…\`` escapes every interpolated value unless it is itself `html` output
 * (a `SafeHtml`); arrays are joined. There is deliberately no way to mark a plain string safe.
 */

/** Markup produced by `html`: already escaped, safe to interpolate as is. */
export class SafeHtml {
  readonly markup: string;
  constructor(markup: string) {
    this.markup = markup;
  }
  toString(): string {
    return this.markup;
  }
}

type Interpolated = SafeHtml | string | number | boolean | null | undefined | readonly Interpolated[];

/** Escapes text for element content and double-quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function render(value: Interpolated): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.markup;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Interpolated[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, index) => {
    out += render(value) + (strings[index + 1] ?? '');
  });
  return new SafeHtml(out);
}

/**
 * Content Security Policy of every page: nothing inline, nothing from elsewhere. Styles and the
 * console's one script come from /pages/assets on this origin; forms post only here; no page may
 * be framed (clickjacking) or change its base URL.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "style-src 'self'",
  "script-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export interface PageOptions {
  readonly title: string;
  readonly body: SafeHtml;
  /** Extra scripts from /pages/assets (the console's log streaming); none by default. */
  readonly scripts?: readonly string[];
  /** e.g. a status page refreshing itself without JavaScript. */
  readonly refreshSeconds?: number;
}

/** A whole document: language, viewport, one stylesheet, a skip link and a main landmark. */
export function page(options: PageOptions): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
${options.refreshSeconds ? html`<meta http-equiv="refresh" content="${options.refreshSeconds}">` : ''}
<title>${options.title}</title>
<link rel="stylesheet" href="/pages/assets/pages.css">
${(options.scripts ?? []).map((script) => html`<script src="/pages/assets/${script}" defer></script>`)}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<main id="main">
${options.body}
</main>
</body>
</html>
`.markup;
}
