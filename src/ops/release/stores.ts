/**
 * A release's staged rollout in each store, in one vocabulary: Play's `inProgress | halted |
 * completed` with a user fraction (Play follows RELEASE_ROLLOUT_STEPS, one step per
 * RELEASE_STEP_INTERVAL), and Apple's phased release mapped onto it (ACTIVE → inProgress,
 * PAUSED → halted, COMPLETE → completed; the fraction follows Apple's 7-day curve).
 */
import { AppStoreConnectClient, appleFraction } from '../../adapters/stores/app-store-connect.ts';
import { GooglePlayClient } from '../../adapters/stores/google-play.ts';
import type { Config } from '../../config/index.ts';
import type { Platform, Release, RolloutStatus } from '../../domain/releases.ts';
import { ShipError } from '../../errors.ts';

export interface StoreRollout {
  readonly platform: Platform;
  readonly status: RolloutStatus;
  readonly fraction: number;
  /** Play: index in RELEASE_ROLLOUT_STEPS; App Store: Apple's day number. */
  readonly step: number;
  /** App Store: the phased release id; Play: the track. */
  readonly storeRef: string;
}

/** The store credentials a platform needs that are not configured. */
export function missingCredentials(config: Config, platform: Platform): string[] {
  const { play, appStore } = config.release;
  if (platform === 'android') {
    return [
      play.packageName === undefined ? 'GOOGLE_PLAY_PACKAGE_NAME' : '',
      play.serviceAccountFile === undefined ? 'GOOGLE_PLAY_SERVICE_ACCOUNT_FILE' : '',
    ].filter(Boolean);
  }
  return [
    appStore.keyId === undefined ? 'ASC_KEY_ID' : '',
    appStore.issuerId === undefined ? 'ASC_ISSUER_ID' : '',
    appStore.privateKeyFile === undefined ? 'ASC_PRIVATE_KEY_FILE' : '',
    appStore.appId === undefined ? 'ASC_APP_ID' : '',
  ].filter(Boolean);
}

function play(config: Config): GooglePlayClient {
  const { packageName, serviceAccountFile, apiUrl } = config.release.play;
  if (packageName === undefined || serviceAccountFile === undefined)
    throw new ShipError('SHIP_ERR_CONFIG', 'GOOGLE_PLAY_PACKAGE_NAME and GOOGLE_PLAY_SERVICE_ACCOUNT_FILE must be set to roll out on Google Play.');
  return new GooglePlayClient({ packageName, serviceAccountFile, apiUrl });
}

function appStore(config: Config): AppStoreConnectClient {
  const { keyId, issuerId, privateKeyFile, appId, apiUrl } = config.release.appStore;
  if (keyId === undefined || issuerId === undefined || privateKeyFile === undefined || appId === undefined) {
    throw new ShipError('SHIP_ERR_CONFIG', 'ASC_KEY_ID, ASC_ISSUER_ID, ASC_PRIVATE_KEY_FILE and ASC_APP_ID must be set to roll out on the App Store.');
  }
  return new AppStoreConnectClient({ keyId, issuerId, privateKeyFile, appId, apiUrl });
}

/** The Android version code of the release's build (Play identifies releases by it). */
function versionCode(release: Release): string {
  const code = release.builds.android?.buildVersion;
  if (code === undefined || code === null)
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `Release ${release.version} has no Android version code recorded (builds.android.buildVersion), so Play cannot be told which release to change.`,
    );
  return code;
}

export function playFraction(config: Config, step: number): number {
  const steps = config.release.rolloutSteps;
  return (steps[Math.min(step, steps.length - 1)] ?? 100) / 100;
}

/** Starts the staged rollout at its first step (Play) or creates the phased release (Apple). */
export async function startRollout(config: Config, release: Release, platform: Platform): Promise<StoreRollout> {
  if (platform === 'android') {
    const fraction = playFraction(config, 0);
    await play(config).setRollout([versionCode(release)], fraction >= 1 ? 'completed' : 'inProgress', fraction);
    return { platform, status: fraction >= 1 ? 'completed' : 'inProgress', fraction, step: 0, storeRef: 'production' };
  }
  const client = appStore(config);
  const versionId = await client.versionId(release.version);
  const existing = await client.phasedRelease(versionId);
  if (existing === null) return fromApple(await client.createPhasedRelease(versionId, 'ACTIVE'));
  // An earlier deploy of this version that gave up left it paused: this one starts it again.
  return fromApple(existing.state === 'PAUSED' ? await client.setPhasedReleaseState(existing.id, 'ACTIVE') : existing);
}

/** Play's next step (or Apple's state as it stands: Apple moves by itself). */
export async function advanceRollout(config: Config, release: Release, platform: Platform, currentStep: number): Promise<StoreRollout> {
  if (platform === 'ios') return readRollout(config, release, platform);
  const step = Math.min(currentStep + 1, config.release.rolloutSteps.length - 1);
  const fraction = playFraction(config, step);
  const status: RolloutStatus = fraction >= 1 ? 'completed' : 'inProgress';
  await play(config).setRollout([versionCode(release)], status, fraction);
  return { platform, status, fraction, step, storeRef: 'production' };
}

/** Halt (Play `halted`, Apple `PAUSED`), resume (`inProgress` at the recorded fraction, `ACTIVE`) or complete (100 %, `COMPLETE`). */
export async function setRolloutStatus(config: Config, release: Release, platform: Platform, status: RolloutStatus): Promise<StoreRollout> {
  const recorded = release.rollouts.find((r) => r.platform === platform);
  if (platform === 'android') {
    const step = status === 'completed' ? config.release.rolloutSteps.length - 1 : (recorded?.step ?? 0);
    const fraction = status === 'completed' ? 1 : (recorded?.fraction ?? playFraction(config, step));
    await play(config).setRollout([versionCode(release)], status, fraction);
    return { platform, status, fraction, step, storeRef: 'production' };
  }
  const client = appStore(config);
  const id = recorded?.storeRef ?? (await client.phasedRelease(await client.versionId(release.version)))?.id;
  if (id === undefined || id === null)
    throw new ShipError(
      'SHIP_ERR_PREREQUISITE_FAILED',
      `App Store Connect has no phased release for ${release.version}; nothing to ${status === 'halted' ? 'pause' : 'change'}.`,
    );
  return fromApple(await client.setPhasedReleaseState(id, status === 'halted' ? 'PAUSED' : status === 'completed' ? 'COMPLETE' : 'ACTIVE'));
}

/** What the store reports now. */
export async function readRollout(config: Config, release: Release, platform: Platform): Promise<StoreRollout> {
  if (platform === 'android') {
    const code = versionCode(release);
    const releases = await play(config).readTrack();
    const ours = releases.find((r) => r.versionCodes.includes(code));
    if (ours === undefined)
      throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `Play's production track has no release with version code ${code} (${release.version}).`);
    const status: RolloutStatus = ours.status === 'halted' ? 'halted' : ours.status === 'completed' ? 'completed' : 'inProgress';
    const fraction = status === 'completed' ? 1 : (ours.userFraction ?? 0);
    const steps = config.release.rolloutSteps;
    const step = Math.max(
      0,
      steps.findIndex((p) => Math.abs(p / 100 - fraction) < 1e-9),
    );
    return { platform, status, fraction, step, storeRef: 'production' };
  }
  const client = appStore(config);
  const phased = await client.phasedRelease(await client.versionId(release.version));
  if (phased === null) throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `App Store Connect has no phased release for ${release.version}.`);
  return fromApple(phased);
}

function fromApple(phased: { id: string; state: string; currentDayNumber: number | null }): StoreRollout {
  const status: RolloutStatus = phased.state === 'PAUSED' ? 'halted' : phased.state === 'COMPLETE' ? 'completed' : 'inProgress';
  return { platform: 'ios', status, fraction: appleFraction(phased.state, phased.currentDayNumber), step: phased.currentDayNumber ?? 0, storeRef: phased.id };
}
