/**
 * The settings Shipshape's store clients read (src/adapters/stores/), pointed at the Google
 * Play and App Store Connect fakes, with the fakes' key files written where the settings say.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FakeAppStoreConnect } from '../fakes/app-store-connect.ts';
import type { FakeGooglePlay } from '../fakes/google-play.ts';

export async function storeEnv(dir: string, play: FakeGooglePlay, asc: FakeAppStoreConnect): Promise<Record<string, string>> {
  await writeFile(path.join(dir, 'play.json'), play.serviceAccountJson);
  await writeFile(path.join(dir, 'AuthKey.p8'), asc.privateKeyPem);
  return {
    GOOGLE_PLAY_PACKAGE_NAME: play.packageName,
    GOOGLE_PLAY_SERVICE_ACCOUNT_FILE: path.join(dir, 'play.json'),
    GOOGLE_PLAY_API_URL: play.url,
    ASC_KEY_ID: asc.keyId,
    ASC_ISSUER_ID: asc.issuerId,
    ASC_PRIVATE_KEY_FILE: path.join(dir, 'AuthKey.p8'),
    ASC_APP_ID: asc.appId,
    ASC_API_URL: asc.url,
  };
}
