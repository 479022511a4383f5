/**
 * Reading the output of `npx expo export` (the folder `update publish` uploads).
 *
 * The folder holds `metadata.json` — `{version: 0, bundler, fileMetadata: {<platform>:
 * {bundle, assets: [{path, ext}]}}}` — the bundles it names (`_expo/static/js/<platform>/…`),
 * and the assets (`assets/<md5 of the file>`). Expo names each asset by the MD5 of its bytes,
 * so a file changed or truncated after the export is caught here, before anything is stored;
 * every file named must also lie inside the folder (a `../` path is refused). An optional
 * `expoConfig.json` (`npx expo config --json > dist/expoConfig.json`) becomes the manifest's
 * `extra.expoClient`, which `Constants.expoConfig` reads on the device.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ShipError } from '../errors.ts';

export const updatePlatforms = ['ios', 'android'] as const;
export type UpdatePlatform = (typeof updatePlatforms)[number];

const exportedFile = z.object({ path: z.string().min(1), ext: z.string().max(32).optional() });
const metadataSchema = z.object({
  version: z.literal(0),
  bundler: z.string().optional(),
  fileMetadata: z
    .object({
      ios: z.object({ bundle: z.string().min(1), assets: z.array(exportedFile) }).optional(),
      android: z.object({ bundle: z.string().min(1), assets: z.array(exportedFile) }).optional(),
    })
    .refine((files) => files.ios !== undefined || files.android !== undefined, 'names neither an ios nor an android bundle'),
});

/** One file of an update as the manifest describes it (without its URL, which depends on where it is served). */
export interface UpdateAsset {
  /** Lowercase hex SHA-256: the storage key and the asset route's parameter. */
  readonly sha256: string;
  /** MD5 hex, as `expo export` names assets: the manifest's `key`. */
  readonly key: string;
  readonly contentType: string;
  /** With its dot, e.g. ".png"; the launch asset's is ".bundle". */
  readonly fileExtension: string;
  readonly bytes: number;
}

export interface PlatformFiles {
  readonly launchAsset: UpdateAsset;
  readonly assets: readonly UpdateAsset[];
}

export interface ExportedUpdate {
  readonly platforms: Partial<Record<UpdatePlatform, PlatformFiles>>;
  /** `extra.expoClient` when the folder has an expoConfig.json. */
  readonly expoClient: Record<string, unknown> | undefined;
  /** Each distinct file once, with its bytes, for upload. */
  readonly files: ReadonlyMap<string, { readonly asset: UpdateAsset; readonly content: Buffer }>;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  bmp: 'image/bmp',
  svg: 'image/svg+xml',
  ico: 'image/x-icon',
  ttf: 'font/ttf',
  otf: 'font/otf',
  woff: 'font/woff',
  woff2: 'font/woff2',
  json: 'application/json',
  js: 'application/javascript',
  hbc: 'application/javascript',
  bundle: 'application/javascript',
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  m4a: 'audio/mp4',
  aac: 'audio/aac',
  mp4: 'video/mp4',
  mov: 'video/quicktime',
  html: 'text/html',
  txt: 'text/plain',
  pdf: 'application/pdf',
};

/** The content type an asset with extension `ext` (no dot) is served with. */
export function contentTypeFor(ext: string): string {
  return CONTENT_TYPES[ext.toLowerCase()] ?? 'application/octet-stream';
}

export async function readExport(distDir: string): Promise<ExportedUpdate> {
  const root = path.resolve(distDir);
  const metadataText = await readInside(root, 'metadata.json', 'the export has no metadata.json: run `npx expo export` and publish its output folder (dist/)');
  let raw: unknown;
  try {
    raw = JSON.parse(metadataText.toString('utf8'));
  } catch {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `${path.join(root, 'metadata.json')} is not JSON. Run \`npx expo export\` again and publish its output unchanged.`,
    );
  }
  const parsed = metadataSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `${path.join(root, 'metadata.json')} is not the metadata \`npx expo export\` writes (${issue ? `${issue.path.join('.') || 'metadata'}: ${issue.message}` : 'unknown shape'}).`,
    );
  }
  const files = new Map<string, { asset: UpdateAsset; content: Buffer }>();
  const platforms: Partial<Record<UpdatePlatform, PlatformFiles>> = {};
  for (const platform of updatePlatforms) {
    const entry = parsed.data.fileMetadata[platform];
    if (!entry) continue;
    const bundle = await readInside(root, entry.bundle, `the ${platform} bundle ${entry.bundle} named in metadata.json is missing`);
    const launchAsset = describe(bundle, 'bundle', 'application/javascript');
    files.set(launchAsset.sha256, { asset: launchAsset, content: bundle });
    const assets: UpdateAsset[] = [];
    for (const file of entry.assets) {
      const content = await readInside(root, file.path, `the ${platform} asset ${file.path} named in metadata.json is missing`);
      const ext = file.ext ?? (path.extname(file.path).slice(1) || 'bin');
      const asset = describe(content, ext, contentTypeFor(ext));
      // expo export names each asset after the MD5 of its bytes: a different digest means the file changed after the export.
      const named = path.basename(file.path).split('.')[0]!;
      if (/^[0-9a-f]{32}$/.test(named) && named !== asset.key) {
        throw new ShipError(
          'SHIP_ERR_VALIDATION',
          `${file.path} does not match its name: its MD5 is ${asset.key}, so it changed after \`npx expo export\`. Export again and publish the new output.`,
        );
      }
      files.set(asset.sha256, { asset, content });
      assets.push(asset);
    }
    platforms[platform] = { launchAsset, assets };
  }
  return { platforms, expoClient: await readExpoConfig(root), files };
}

function describe(content: Buffer, ext: string, contentType: string): UpdateAsset {
  return {
    sha256: createHash('sha256').update(content).digest('hex'),
    key: createHash('md5').update(content).digest('hex'),
    contentType,
    fileExtension: `.${ext}`,
    bytes: content.length,
  };
}

async function readExpoConfig(root: string): Promise<Record<string, unknown> | undefined> {
  let text: Buffer;
  try {
    text = await readFile(path.join(root, 'expoConfig.json'));
  } catch {
    return undefined;
  }
  try {
    const value: unknown = JSON.parse(text.toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new ShipError(
    'SHIP_ERR_VALIDATION',
    `${path.join(root, 'expoConfig.json')} is not a JSON object. Write it with \`npx expo config --json > dist/expoConfig.json\`, or remove it.`,
  );
}

/** Reads `relative` inside `root`, refusing paths that leave it. */
async function readInside(root: string, relative: string, missing: string): Promise<Buffer> {
  const full = path.resolve(root, relative);
  if (full !== root && !full.startsWith(`${root}${path.sep}`)) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `metadata.json names ${JSON.stringify(relative)}, which is outside ${root}. Publish the folder \`npx expo export\` wrote, unchanged.`,
    );
  }
  try {
    return await readFile(full);
  } catch {
    throw new ShipError('SHIP_ERR_VALIDATION', `${missing} (${full}). Publish the whole folder \`npx expo export\` wrote.`);
  }
}
