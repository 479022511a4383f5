/**
 * Over-the-air updates: the Expo Updates protocol v1 endpoints an Expo app's `updates.url`
 * points at (docs.expo.dev/technical-specs/expo-updates-1).
 *
 * - `GET /updates/manifest` reads `expo-protocol-version`, `expo-platform`,
 *   `expo-runtime-version`, `expo-channel-name`, `expo-current-update-id` and `EAS-Client-ID`,
 *   and answers `multipart/mixed` with a `manifest` part, or a `directive` part
 *   (`noUpdateAvailable`, `rollBackToEmbedded`) for protocol 1; a client that does not accept
 *   multipart gets the manifest as `application/expo+json` (or 204 when there is none).
 *   Missing or malformed headers answer 400 in the API's error envelope; a runtime version or
 *   channel nothing was published to answers `noUpdateAvailable` — never a 5xx.
 * - `GET /updates/assets/:hash` serves an asset or bundle by the SHA-256 of its bytes, from the
 *   updates storage (UPDATES_STORAGE_URL, the same file/S3 adapters as backups), with its
 *   content type and `immutable` caching: an asset's URL names its content, so a CDN in front
 *   (UPDATES_ASSET_BASE_URL) may keep it for ever.
 *
 * Both are maintenance-exempt: an emergency fix shipped as an update must reach the app while
 * the API is down for maintenance.
 *
 * The manifest is the hottest read an app makes (every launch): the channel's state is read in
 * one statement and kept for a second per process, updates (immutable) and their signed
 * bodies are built once (domain/update-protocol.ts).
 */
import type { FastifyPluginAsync, FastifyReply, FastifySchema } from 'fastify';
import { z } from 'zod';
import { openObjectStore, type ObjectStore } from '../../adapters/storage/index.ts';
import { ManifestCache, loadCodeSigningKey, multipart, type Part } from '../../domain/update-protocol.ts';
import {
  CHANNEL_PATTERN,
  choose,
  getUpdate,
  openAsset,
  readChannelState,
  RUNTIME_VERSION_PATTERN,
  updatePlatforms,
  type ChannelState,
  type Update,
} from '../../domain/updates.ts';
import { ShipError } from '../../errors.ts';
import { routeSchema } from '../route-schema.ts';
import type { RouteDeps } from '../route-deps.ts';
import { parseInput } from '../validation.ts';

/** The channel an app that sends no `expo-channel-name` is served from. */
export const DEFAULT_CHANNEL = 'production';
/** How long a process reuses a channel's state: a rollback or a rollout step reaches every instance within it. */
const CHANNEL_STATE_TTL_MS = 1_000;

const platformText = z.enum(updatePlatforms, { error: 'must be ios or android' });
const runtimeVersionText = z.string().regex(RUNTIME_VERSION_PATTERN, "must be the app's runtime version (1-255 letters, digits or ._+:@-)");
const channelText = z.string().regex(CHANNEL_PATTERN, 'must be 1-64 letters, digits or ._-');

/** The protocol's request headers (Fastify lower-cases header names). Others are allowed and ignored. */
const manifestHeaders = z.object({
  'expo-protocol-version': z.enum(['0', '1'], { error: 'must be 0 or 1 (this server speaks Expo Updates protocol v1)' }).optional(),
  'expo-platform': platformText.optional(),
  'expo-runtime-version': runtimeVersionText.optional(),
  'expo-channel-name': channelText.optional(),
  'expo-current-update-id': z.string().max(100).optional(),
  'eas-client-id': z.string().min(1).max(200).optional(),
  'expo-expect-signature': z.string().max(1000).optional(),
  accept: z.string().max(1000).optional(),
});
/** The same facts as query parameters, for a look with curl or a browser (headers win). */
const manifestQuery = z.strictObject({
  platform: platformText.optional(),
  'runtime-version': runtimeVersionText.optional(),
  channel: channelText.optional(),
});
/** Asset requests need no extra headers; the part is sent so clients that read it find it. */
const EXTENSIONS: Part = { name: 'extensions', body: '{"assetRequestHeaders":{}}' };
const assetParams = z.strictObject({ hash: z.string().regex(/^[0-9a-f]{64}$/, 'must be the lowercase hex SHA-256 of the asset') });

/** A protocol answer: the multipart manifest or directive, or the manifest as expo+json. */
const protocolBody = {
  description: 'multipart/mixed (manifest or directive part), or application/expo+json',
  content: { 'multipart/mixed': { schema: z.string() }, 'application/expo+json': { schema: z.string() } },
};

export const updateRoutes: FastifyPluginAsync<RouteDeps> = async (app, { context }) => {
  const { pool } = context.database;
  const { updates: settings } = context.config;
  const cache = new ManifestCache({ key: loadCodeSigningKey(settings.codeSigningKeyFile, settings.codeSigningKeyId), assetBaseUrl: settings.assetBaseUrl });
  let store: ObjectStore | undefined;
  const assets = () => (store ??= openObjectStore(settings.storageUrl, { ...context.config.s3, settingName: 'UPDATES_STORAGE_URL' }));
  const states = new Map<string, { state: ChannelState; until: number }>();
  const known = new Map<string, Update>();
  const envelopes = new WeakMap<Part, { contentType: string; body: string }>();

  const channelState = async (channel: string, runtimeVersion: string): Promise<ChannelState> => {
    const key = `${channel}\u0000${runtimeVersion}`;
    const cached = states.get(key);
    if (cached && cached.until > Date.now()) return cached.state;
    const state = await readChannelState(pool, channel, runtimeVersion);
    if (states.size > 1_000) states.clear();
    states.set(key, { state, until: Date.now() + CHANNEL_STATE_TTL_MS });
    return state;
  };
  const loadUpdate = async (id: string): Promise<Update | undefined> => {
    const cached = known.get(id);
    if (cached) return cached;
    const update = await getUpdate(pool, id);
    if (update) {
      if (known.size > 500) known.clear();
      known.set(id, update);
    }
    return update;
  };

  const manifestSchema = routeSchema('updates', {
    summary: 'Expo Updates protocol v1: the update (or directive) for this device',
    audience: 'public',
    input: { headers: manifestHeaders, query: manifestQuery },
    ok: { 204: null },
  });
  const manifestRoute: FastifySchema = { ...manifestSchema, response: { ...(manifestSchema.response as object), 200: protocolBody } };
  app.get('/updates/manifest', { config: { maintenanceExempt: true }, schema: manifestRoute }, async (request, reply) => {
    const headers = parseInput(manifestHeaders, request.headers, 'headers');
    const query = parseInput(manifestQuery, request.query, 'query');
    const protocol = Number(headers['expo-protocol-version'] ?? '0');
    const platform = headers['expo-platform'] ?? query.platform;
    const runtimeVersion = headers['expo-runtime-version'] ?? query['runtime-version'];
    if (platform === undefined)
      throw new ShipError('SHIP_ERR_VALIDATION', 'header expo-platform: required, ios or android (the expo-updates client sends it).');
    if (runtimeVersion === undefined)
      throw new ShipError('SHIP_ERR_VALIDATION', "header expo-runtime-version: required, the app's runtime version (set runtimeVersion in app.json).");
    const channel = headers['expo-channel-name'] ?? query.channel ?? DEFAULT_CHANNEL;
    const multipartAccepted = acceptsMultipart(headers.accept);

    reply
      .header('expo-protocol-version', protocol)
      .header('expo-sfv-version', 0)
      .header('cache-control', 'private, max-age=0')
      .header('vary', 'expo-platform, expo-runtime-version, expo-channel-name, eas-client-id');
    const served = choose(await channelState(channel, runtimeVersion), headers['eas-client-id']);
    let part: Part | undefined;
    if (served.kind === 'update') {
      const update = served.updateId === headers['expo-current-update-id'] ? undefined : await loadUpdate(served.updateId);
      part = update ? cache.manifestPart(update, platform) : undefined;
      // Already running it, or it has no bundle for this platform: nothing new for this device.
      if (!part && protocol >= 1) part = cache.directivePart({ type: 'noUpdateAvailable' });
    } else if (protocol >= 1) {
      part = cache.directivePart(
        served.kind === 'rollBackToEmbedded'
          ? { type: 'rollBackToEmbedded', parameters: { commitTime: served.commitTime.toISOString() } }
          : { type: 'noUpdateAvailable' },
      );
    }
    if (!part) return reply.status(204).send();
    if (!multipartAccepted) return sendSingle(reply, part);
    // Parts are cached and immutable, so their multipart envelope is built once too.
    let response = envelopes.get(part);
    if (!response) {
      response = multipart([part, ...(part.name === 'manifest' ? [EXTENSIONS] : [])]);
      envelopes.set(part, response);
    }
    return reply.status(200).header('content-type', response.contentType).send(response.body);
  });

  const assetSchema = routeSchema('updates', {
    summary: 'An update asset or bundle by the SHA-256 of its bytes',
    audience: 'public',
    input: { params: assetParams },
    ok: {},
  });
  const assetBody = { description: 'The asset, with its content type; immutable', content: { 'application/octet-stream': { schema: z.string() } } };
  const assetRoute: FastifySchema = { ...assetSchema, response: { ...(assetSchema.response as object), 200: assetBody } };
  app.get('/updates/assets/:hash', { config: { maintenanceExempt: true }, schema: assetRoute }, async (request, reply) => {
    const { hash } = parseInput(assetParams, request.params, 'params');
    const asset = await openAsset(pool, assets(), hash);
    if (!asset) throw new ShipError('SHIP_ERR_NOT_FOUND', `No published update has an asset with SHA-256 ${hash}.`);
    return reply
      .status(200)
      .header('content-type', asset.contentType)
      .header('content-length', asset.bytes)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .header('etag', `"${hash}"`)
      .send(asset.body);
  });
};

/** Whether the client takes multipart/mixed (expo-updates sends `multipart/mixed,application/expo+json,application/json`). */
function acceptsMultipart(accept: string | undefined): boolean {
  if (accept === undefined) return true;
  return accept.split(',').some((type) => {
    const media = type.split(';')[0]!.trim().toLowerCase();
    return media === 'multipart/mixed' || media === 'multipart/*' || media === '*/*';
  });
}

/** A manifest alone, for a client that does not take multipart; directives need multipart, so they become 204. */
function sendSingle(reply: FastifyReply, part: Part): FastifyReply {
  if (part.name !== 'manifest') return reply.status(204).send();
  if (part.signature) reply.header('expo-signature', part.signature);
  return reply.status(200).header('content-type', 'application/expo+json; charset=utf-8').send(part.body);
}
