/**
 * Request generators for the HTTP fuzzer (test/http/fuzz.test.ts), built with fast-check from
 * the zod schemas a route declares (its `schema`, see src/http/route-schema.ts).
 *
 * Each request is one of: valid by its schemas; valid but for one hostile field (control
 * characters, NUL, lone surrogates, extreme numbers and dates, deep or wide JSON, a wrong type,
 * an oversize string, an unknown key); or hostile through and through (arbitrary JSON, bodies
 * that are not JSON, odd content types, duplicate and odd headers, over-long path parameters).
 * Header values stay within what Node's HTTP parser lets through, since in-process `inject`
 * would deliver bytes a real socket never could.
 */
import fc from 'fast-check';
import type { z } from 'zod';
import type { RouteEntry } from '../../src/http/app.ts';

/** The tokens and ids a generated request may use; never the victim's. */
export interface FuzzIdentities {
  readonly attackerToken: () => string;
  readonly adminToken: string;
  /** Ids that exist: the attacker's own task, the victim's task, and so on. */
  readonly knownIds: readonly string[];
  /** Emails that exist (the victim's among them: asking for its reset or guessing its password must change nothing). */
  readonly knownEmails: readonly string[];
}

export interface FuzzRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[]>;
  readonly payload?: string;
  readonly remoteAddress: string;
  /** What was generated, for the failure message. */
  readonly label: string;
}

// zod 4 keeps a schema's definition at `_zod.def`; only the parts the generator reads are typed here.
interface Def {
  type: string;
  format?: string;
  pattern?: RegExp;
  coerce?: boolean;
  checks?: Array<{
    _zod: { def: { check: string; format?: string; pattern?: RegExp; value?: number; inclusive?: boolean; maximum?: number; minimum?: number } };
  }>;
  in?: z.ZodType;
  out?: z.ZodType;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  options?: z.ZodType[];
  entries?: Record<string, string | number>;
  values?: unknown[];
  keyType?: z.ZodType;
  valueType?: z.ZodType;
  element?: z.ZodType;
  getter?: () => z.ZodType;
}
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

// ---------------------------------------------------------------------------------------------
// Hostile values

const CONTROL = fc.integer({ min: 0, max: 0x1f }).map((code) => String.fromCharCode(code));
const LONE_SURROGATE = fc.constantFrom('\ud800', '\udfff', 'a\ud83d', '\ude00b');
const ODD_TEXT = fc.constantFrom(
  '\u0000',
  'a\u0000b',
  '\u202eevil',
  '\ufeff',
  '\u200b',
  '🙂'.repeat(50),
  "' OR 1=1 --",
  '"; DROP TABLE users; --',
  '../../../../etc/passwd',
  '%00',
  '%2e%2e%2f',
  '<script>alert(1)</script>',
  '${jndi:ldap://x}',
  '__proto__',
  'constructor',
  '\\',
  '\r\nX-Injected: 1',
  ' ',
  '',
);
const EXTREME_DATES = fc.constantFrom(
  '0000-01-01',
  '0000-02-29',
  '0001-01-01',
  '9999-12-31',
  '10000-01-01',
  '-000001-01-01',
  '2026-02-30',
  '2026-13-01',
  '+275760-09-13T00:00:00.000Z',
  '-271821-04-20T00:00:00Z',
  '1970-01-01T00:00:00+25:00',
  '2026-03-01T25:61:61Z',
  '4713-01-01 BC',
  '294277-01-01',
  'infinity',
  '-infinity',
  'epoch',
  'now',
  'allballs',
);
const EXTREME_NUMBERS = fc.constantFrom(0, -0, -1, 1e308, -1e308, 5e-324, 2 ** 31, 2 ** 53 + 2, -(2 ** 63), 1.5, Number.MAX_SAFE_INTEGER, 999_999_999_999);

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.string({ maxLength: 10 }), fc.constantFrom('\u0000', '\u0000\u0000', '\u0001', '\u001f', '\u007f'), fc.string({ maxLength: 10 }))
      .map((parts) => parts.join('')),
  },
  { weight: 3, arbitrary: fc.tuple(fc.string({ maxLength: 10 }), LONE_SURROGATE, fc.string({ maxLength: 10 })).map((parts) => parts.join('')) },
  { weight: 2, arbitrary: fc.string({ unit: fc.oneof(CONTROL, fc.constantFrom('a', 'é', '€', '🙂')), minLength: 1, maxLength: 40 }) },
  { weight: 3, arbitrary: ODD_TEXT },
  { weight: 3, arbitrary: EXTREME_DATES },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 70_000 }).map((length) => 'x'.repeat(length)) },
);

/** JSON nested `depth` levels deep, as text (JSON.stringify would recurse as deep). */
const deepJsonText = (depth: number, open: string, close: string, inner = '1') => `${open.repeat(depth)}${inner}${close.repeat(depth)}`;

const hostileJsonText: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: 33, max: 30_000 }).map((depth) => deepJsonText(depth, '[', ']')),
  fc.integer({ min: 33, max: 6_000 }).map((depth) => deepJsonText(depth, '{"a":', '}')),
  fc.integer({ min: 100, max: 20_000 }).map((width) => `[${'0,'.repeat(width)}0]`),
  fc.integer({ min: 100, max: 5_000 }).map((width) => `{${Array.from({ length: width }, (_, index) => `"k${index}":${index}`).join(',')}}`),
  fc.constantFrom('1e400', '-1e400', '123456789012345678901234567890', '"\\ud800"', '"\\u0000"', 'null', 'true', '[]', '{}', '""'),
);

/** A value in place of a field: wrong type, hostile text, extreme number, deep or wide JSON (as text). */
const hostileFieldText: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: hostileString.map((text) => JSON.stringify(text)) },
  { weight: 1, arbitrary: EXTREME_NUMBERS.map((number) => JSON.stringify(number)) },
  { weight: 2, arbitrary: hostileJsonText },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)) },
);

/** `valid` with hostile text spliced in, so a field whose pattern admits odd characters inside is tried with them. */
export function spliced(valid: string): fc.Arbitrary<string> {
  return fc
    .tuple(
      hostileString.filter((text) => text.length < 200),
      fc.nat({ max: valid.length }),
    )
    .map(([hostile, at]) => `${valid.slice(0, at)}${hostile}${valid.slice(at)}`);
}

// ---------------------------------------------------------------------------------------------
// Valid values, from a zod schema

function safeStringMatching(pattern: RegExp): fc.Arbitrary<string> {
  try {
    // fast-check cannot honour `i`; the case-sensitive subset is still valid.
    return fc.stringMatching(new RegExp(pattern.source, pattern.flags.replace(/[^dgmsu]/g, '')));
  } catch {
    return fc.string();
  }
}

function stringArbitrary(def: Def): fc.Arbitrary<string> {
  let min = 0;
  let max = 60;
  let pattern: RegExp | undefined;
  for (const check of def.checks ?? []) {
    const c = check._zod.def;
    if (c.check === 'min_length' && c.minimum !== undefined) min = c.minimum;
    if (c.check === 'max_length' && c.maximum !== undefined) max = Math.min(c.maximum, 300);
    if (c.check === 'string_format' && c.format === 'regex' && c.pattern) pattern = c.pattern;
  }
  if (def.format === 'email')
    return fc
      .tuple(fc.stringMatching(/^[a-z0-9][a-z0-9._+-]{0,30}$/), fc.constantFrom('example.com', 'example.org', 'mail.example.net'))
      .map(([local, domain]) => `${local}@${domain}`);
  if (def.format === 'uuid' || def.format === 'guid') return fc.uuid();
  if (def.format === 'date')
    return fc
      .date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T00:00:00Z'), noInvalidDate: true })
      .map((date) => date.toISOString().slice(0, 10));
  if (def.format === 'datetime') return fc.date({ noInvalidDate: true }).map((date) => date.toISOString());
  if (pattern) return safeStringMatching(pattern);
  if (def.pattern && def.format !== undefined) return safeStringMatching(def.pattern);
  return fc.string({ minLength: min, maxLength: Math.max(min, max) });
}

function numberArbitrary(def: Def): fc.Arbitrary<number> {
  let min = -1e9;
  let max = 1e9;
  let integer = false;
  for (const check of def.checks ?? []) {
    const c = check._zod.def;
    if (c.check === 'greater_than' && c.value !== undefined) min = c.value + (c.inclusive ? 0 : 1);
    if (c.check === 'less_than' && c.value !== undefined) max = c.value - (c.inclusive ? 0 : 1);
    if (c.check === 'number_format') integer = true;
  }
  return integer ? fc.integer({ min, max }) : fc.double({ min, max, noNaN: true });
}

/**
 * Fields whose schema is a bare string that the route then checks further: valid values the
 * schema cannot describe, so that requests get past that check too.
 */
const FIELD_HINTS: Readonly<Record<string, fc.Arbitrary<unknown>>> = {
  // Any time within the next year, with an offset (parseScheduledFor).
  scheduledFor: fc.integer({ min: 60_000, max: 360 * 86_400_000 }).map((ahead) => new Date(Date.now() + ahead).toISOString()),
  // The shape of a cursor this API issues (microseconds.uuid in base64url), naming no real position.
  cursor: fc.tuple(fc.bigInt({ min: 0n, max: 9_999_999_999_999_999n }), fc.uuid()).map(([micros, id]) => Buffer.from(`${micros}.${id}`).toString('base64url')),
};

/** Values the schema means to accept (refinements aside), `depth` guarding recursive schemas such as z.json(). */
export function validValue(schema: z.ZodType, depth = 0): fc.Arbitrary<unknown> {
  const def = defOf(schema);
  switch (def.type) {
    case 'string':
      return stringArbitrary(def);
    case 'number':
      return numberArbitrary(def);
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'enum':
      return fc.constantFrom(...Object.values(def.entries ?? {}));
    case 'literal':
      return fc.constantFrom(...(def.values ?? []));
    case 'optional':
    case 'default':
      return validValue(def.innerType!, depth);
    case 'nullable':
      return fc.option(validValue(def.innerType!, depth), { nil: null, freq: 4 });
    // A pipe's output side carries the constraints (email: trim → lowercase → email → max).
    case 'pipe': {
      const out = defOf(def.out!);
      const plainString = out.type === 'string' && out.format === undefined && !(out.checks ?? []).some((check) => check._zod.def.check === 'string_format');
      return out.type === 'transform' || plainString ? validValue(def.in!, depth) : validValue(def.out!, depth);
    }
    case 'union':
      return fc.oneof(...def.options!.map((option) => validValue(option, depth)));
    case 'lazy':
      return depth > 3 ? fc.constant(null) : validValue(def.getter!(), depth + 1);
    case 'array':
      return fc.array(validValue(def.element!, depth + 1), { maxLength: 4 });
    case 'record':
      return fc.dictionary(validValue(def.keyType!, depth + 1) as fc.Arbitrary<string>, validValue(def.valueType!, depth + 1), { maxKeys: 4 });
    case 'object': {
      const shape = def.shape ?? {};
      const fields = Object.fromEntries(Object.entries(shape).map(([key, field]) => [key, FIELD_HINTS[key] ?? validValue(field, depth + 1)]));
      const requiredKeys = Object.entries(shape)
        .filter(([, field]) => !['optional', 'default'].includes(defOf(field).type))
        .map(([key]) => key);
      return fc.record(fields, { requiredKeys });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

// ---------------------------------------------------------------------------------------------
// Requests

const headerSafe = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength: 80 });

function authorizationFor(identities: FuzzIdentities): fc.Arbitrary<string | string[] | undefined> {
  return fc.oneof(
    { weight: 10, arbitrary: fc.constant(null).map(() => `Bearer ${identities.attackerToken()}`) },
    { weight: 4, arbitrary: fc.constant(`Bearer ${identities.adminToken}`) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: headerSafe },
    { weight: 1, arbitrary: headerSafe.map((token) => `Bearer ${token}`) },
    { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 12_000 }).map((length) => `Bearer ${'a'.repeat(length)}`) },
    { weight: 1, arbitrary: fc.constant(null).map(() => [`Bearer ${identities.attackerToken()}`, `Bearer ${identities.adminToken}`]) },
  );
}

const contentTypes = fc.oneof(
  { weight: 12, arbitrary: fc.constant('application/json') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'application/json; charset=utf-16',
      'application/x-www-form-urlencoded',
      'text/plain',
      'multipart/form-data; boundary=x',
      'application/xml',
      'application/json; charset=',
      '*/*',
      '',
    ),
  },
  { weight: 1, arbitrary: headerSafe },
);

const oddHeaders: fc.Arbitrary<Record<string, string | string[]>> = fc.record(
  {
    'x-request-id': fc.oneof(
      headerSafe,
      fc.constant('a'.repeat(3000)),
      fc.constant(null).map(() => ['one', 'two']),
    ),
    'idempotency-key': fc.oneof(
      headerSafe,
      fc.constant('k'.repeat(300)),
      fc.constant(null).map(() => ['k1', 'k2']),
    ),
    'x-maintenance-bypass': headerSafe,
    'x-forwarded-for': headerSafe,
    accept: fc.constantFrom('text/plain', 'application/json', '*/*', 'text/html;q=0.1'),
    'user-agent': fc.oneof(headerSafe, fc.constant('u'.repeat(5000))),
    'content-length': fc.constant(null).map(() => ['10', '20']),
  },
  { requiredKeys: [] },
);

/** `encodeURIComponent`, but a lone surrogate (which it refuses) is sent as raw %-escapes of its UTF-16 unit. */
function encodeSegment(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return [...text].map((character) => (character.isWellFormed() ? encodeURIComponent(character) : '%ED%A0%80')).join('');
  }
}

function fillPath(url: string, params: Record<string, string>): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => encodeSegment(params[name] ?? 'x'));
}

function queryString(values: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    for (const item of [value].flat()) parts.push(`${encodeSegment(key)}=${encodeSegment(typeof item === 'string' ? item : (JSON.stringify(item) ?? ''))}`);
  }
  return parts.length === 0 ? '' : `?${parts.join('&')}`;
}

/** One field of `valid` made hostile (or an unknown key added, or a required one removed), as JSON text. */
function mutateObject(valid: unknown): fc.Arbitrary<string> {
  if (typeof valid !== 'object' || valid === null || Array.isArray(valid)) return hostileFieldText;
  const entries = Object.entries(valid);
  const keys = entries.map(([key]) => key);
  const withField = (key: string, text: string) =>
    `{${[...entries.filter(([name]) => name !== key).map(([name, value]) => `${JSON.stringify(name)}:${JSON.stringify(value)}`), `${JSON.stringify(key)}:${text}`].join(',')}}`;
  const stringKeys = entries.filter(([, value]) => typeof value === 'string').map(([key]) => key);
  return fc.oneof(
    { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...(keys.length > 0 ? keys : ['extra'])), hostileFieldText).map(([key, text]) => withField(key, text)) },
    {
      weight: stringKeys.length > 0 ? 4 : 0,
      arbitrary: fc
        .constantFrom(...(stringKeys.length > 0 ? stringKeys : ['none']))
        .chain((key) => spliced(String((valid as Record<string, unknown>)[key] ?? '')).map((text) => withField(key, JSON.stringify(text)))),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.oneof(hostileString, fc.constantFrom('__proto__', 'constructor', 'admin', 'userId', 'user_id')), hostileFieldText)
        .map(([key, text]) => withField(key, text)),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(...(keys.length > 0 ? keys : ['']))
        .map((drop) => JSON.stringify(Object.fromEntries(entries.filter(([name]) => name !== drop)))),
    },
  );
}

/** A body as text: valid, mutated, or hostile; undefined for none. */
function bodyText(schema: z.ZodType | undefined, identities: FuzzIdentities): fc.Arbitrary<string | undefined> {
  const validBody = schema ? validValue(schema) : fc.jsonValue({ maxDepth: 2 });
  const withKnownEmail = validBody.chain((value) =>
    typeof value === 'object' && value !== null && 'email' in value && identities.knownEmails.length > 0
      ? fc.constantFrom(...identities.knownEmails).map((email) => ({ ...value, email }))
      : fc.constant(value),
  );
  return fc.oneof(
    { weight: 6, arbitrary: validBody.map((value) => JSON.stringify(value)) },
    { weight: 2, arbitrary: withKnownEmail.map((value) => JSON.stringify(value)) },
    { weight: 6, arbitrary: validBody.chain(mutateObject) },
    { weight: 2, arbitrary: hostileJsonText },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '{',
        '{"a":',
        'nul',
        '\ufeff{}',
        '{"a":1}{"b":2}',
        "{'a':1}",
        '{"__proto__":{"x":1}}',
        '{"constructor":{"prototype":{"x":1}}}',
      ),
    },
    { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 70_000 }).map((length) => JSON.stringify({ title: 'x'.repeat(length) })) },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

type Perturbation =
  | { kind: 'none' }
  | { kind: 'body'; body: string | undefined }
  | { kind: 'param'; name: string; value: string }
  | { kind: 'query'; query: Record<string, unknown> }
  | { kind: 'authorization'; value: string | string[] | undefined }
  | { kind: 'content-type'; value: string }
  | { kind: 'headers'; headers: Record<string, string | string[]> }
  | { kind: 'declared-header'; name: string; value: string }
  | { kind: 'path'; suffix: string };

/**
 * Requests for `route`: a valid baseline (the right kind of token, valid parameters, query and
 * body by the route's schemas) changed in at most one way, so each hostile value gets past
 * everything else and reaches the code that must cope with it.
 */
export function requestsFor(route: RouteEntry, identities: FuzzIdentities): fc.Arbitrary<FuzzRequest> {
  const paramNames = [...route.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((match) => match[1]!);
  const paramShape = route.input.params ? (defOf(route.input.params).shape ?? {}) : {};
  const validParam = (name: string) => {
    const schema = paramShape[name];
    const generated = schema ? validValue(schema).map(String) : fc.string({ minLength: 1, maxLength: 20 });
    return identities.knownIds.length > 0 && schema && defOf(schema).format === 'uuid'
      ? fc.oneof(generated, fc.constantFrom(...identities.knownIds))
      : generated;
  };
  const params = fc.record(Object.fromEntries(paramNames.map((name) => [name, validParam(name)])));
  const query = route.input.query ? (validValue(route.input.query) as fc.Arbitrary<Record<string, unknown>>) : fc.constant({});
  // Headers a route declares (the Expo Updates protocol's, for instance) are sent valid by their schema, or one of them hostile.
  const headerNames = route.input.headers ? Object.keys(defOf(route.input.headers).shape ?? {}) : [];
  const declaredHeaders = route.input.headers ? (validValue(route.input.headers) as fc.Arbitrary<Record<string, unknown>>) : fc.constant({});
  const withBody = route.method !== 'GET' && route.method !== 'HEAD' && route.method !== 'DELETE' ? true : route.input.body !== undefined;
  const validBody = route.input.body ? validValue(route.input.body) : fc.constant(undefined);
  const knownEmailBody = validBody.chain((value) =>
    typeof value === 'object' && value !== null && 'email' in value && identities.knownEmails.length > 0
      ? fc.constantFrom(...identities.knownEmails).map((email) => ({ ...value, email }))
      : fc.constant(value),
  );
  const token = route.url.startsWith('/admin') || route.url.startsWith('/metrics') ? () => identities.adminToken : identities.attackerToken;

  const perturbation: fc.Arbitrary<Perturbation> = fc.oneof(
    { weight: 4, arbitrary: fc.constant<Perturbation>({ kind: 'none' }) },
    {
      weight: withBody ? 2 : 0,
      arbitrary: knownEmailBody.map((value): Perturbation => ({ kind: 'body', body: value === undefined ? undefined : JSON.stringify(value) })),
    },
    { weight: withBody ? 10 : 0, arbitrary: validBody.chain(mutateObject).map((body): Perturbation => ({ kind: 'body', body })) },
    { weight: withBody ? 3 : 0, arbitrary: bodyText(route.input.body, identities).map((body): Perturbation => ({ kind: 'body', body })) },
    {
      weight: paramNames.length > 0 ? 6 : 0,
      arbitrary: fc.constantFrom(...(paramNames.length > 0 ? paramNames : ['none'])).chain((name) =>
        fc
          .oneof(
            validParam(name).chain(spliced),
            hostileString.filter((text) => text.length < 400),
            fc.integer({ min: 101, max: 3000 }).map((length) => 'p'.repeat(length)),
            fc.constant(''),
          )
          .map((value): Perturbation => ({ kind: 'param', name, value })),
      ),
    },
    {
      weight: 3,
      arbitrary: fc
        .dictionary(
          fc.constantFrom('limit', 'cursor', 'status', 'x', '__proto__'),
          fc.oneof(hostileString, EXTREME_NUMBERS.map(String), fc.array(fc.string(), { minLength: 2, maxLength: 3 })),
          { minKeys: 1, maxKeys: 3 },
        )
        .map((values): Perturbation => ({ kind: 'query', query: values })),
    },
    { weight: 2, arbitrary: authorizationFor(identities).map((value): Perturbation => ({ kind: 'authorization', value })) },
    { weight: withBody ? 2 : 0, arbitrary: contentTypes.map((value): Perturbation => ({ kind: 'content-type', value })) },
    { weight: 2, arbitrary: oddHeaders.map((headers): Perturbation => ({ kind: 'headers', headers })) },
    {
      weight: headerNames.length > 0 ? 6 : 0,
      arbitrary: fc
        .record({
          name: fc.constantFrom(...(headerNames.length > 0 ? headerNames : ['none'])),
          // Node's parser refuses control characters in header values, so only printable hostile text is sent.
          value: fc.oneof(
            hostileString.filter((text) => text.length < 400 && /^[\x20-\x7e]*$/.test(text)),
            fc.string({ maxLength: 40 }).filter((text) => /^[\x20-\x7e]*$/.test(text)),
            fc.constant(''),
          ),
        })
        .map(({ name, value }): Perturbation => ({ kind: 'declared-header', name, value })),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom('%', '%E0%A4%A', '%00', '..%2f..%2f', '%2e%2e', '//', '/', '?a=%').map((suffix): Perturbation => ({ kind: 'path', suffix })),
    },
  );

  return fc
    .record({
      params,
      query,
      declaredHeaders,
      body: withBody ? validBody.map((value) => (value === undefined ? undefined : JSON.stringify(value))) : fc.constant(undefined),
      perturbation,
      remoteAddress: fc.oneof(fc.constantFrom('10.0.0.1', '10.0.0.2', '10.0.0.3'), fc.ipV4()),
    })
    .map(({ params: values, query: queryValues, declaredHeaders: declaredValues, body: validBodyText, perturbation: change, remoteAddress }) => {
      const paramValues = change.kind === 'param' ? { ...values, [change.name]: change.value } : values;
      const queryUsed = change.kind === 'query' ? change.query : queryValues;
      const body = change.kind === 'body' ? change.body : validBodyText;
      const path = fillPath(route.url, paramValues);
      const url = `${change.kind === 'path' ? `${path}${change.suffix}` : path}${queryString(queryUsed)}`;
      const declared = Object.fromEntries(
        Object.entries(declaredValues)
          .filter(([, value]) => value !== undefined)
          .map(([name, value]) => [name, String(value).replace(/[^\x20-\x7e]/g, '')]),
      );
      if (change.kind === 'declared-header') declared[change.name] = change.value;
      const headers: Record<string, string | string[]> = change.kind === 'headers' ? { ...declared, ...change.headers } : declared;
      if (body === undefined) delete headers['content-length'];
      const authorization = change.kind === 'authorization' ? change.value : `Bearer ${token()}`;
      if (authorization !== undefined) headers.authorization = authorization;
      if (body !== undefined) headers['content-type'] = change.kind === 'content-type' ? change.value : 'application/json';
      const label = `${route.method} ${url.slice(0, 300)} (${change.kind}) headers=${JSON.stringify(headers).slice(0, 300)} body=${(body ?? '').slice(0, 300)}`;
      return { method: route.method, url, headers, ...(body === undefined ? {} : { payload: body }), remoteAddress, label };
    });
}
