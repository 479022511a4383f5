/**
 * eas-cli, run as the real executable (EAS_BIN, default `npx eas-cli`) in the app repository,
 * with its documented machine-readable output:
 *
 * - `eas build --platform all --profile production --non-interactive --json --no-wait` prints a
 *   JSON array of the builds it queued (`id`, `platform` IOS|ANDROID, `status`, `appVersion`,
 *   `appBuildVersion`);
 * - `eas build:view <id> --json` prints one build; `status` NEW | IN_QUEUE | IN_PROGRESS |
 *   PENDING_CANCEL | FINISHED | ERRORED | CANCELED;
 * - `eas submit --platform ios|android --id <build> --profile production --non-interactive --wait`
 *   exits 0 once the store accepted the upload and prints the submission's page
 *   (`…/submissions/<uuid>`), which is where the submission id is read from.
 *
 * EXPO_TOKEN (and anything else eas-cli reads) comes from the environment as it is.
 */
import { z } from 'zod';
import { ShipError } from '../../errors.ts';
import type { Platform } from '../../domain/releases.ts';
import { runCommand } from './process.ts';

export const EAS_FINAL = new Set(['FINISHED', 'ERRORED', 'CANCELED']);

const buildSchema = z.object({
  id: z.string().min(1),
  platform: z.enum(['IOS', 'ANDROID']),
  status: z.string(),
  appVersion: z.string().nullish(),
  appBuildVersion: z.string().nullish(),
  error: z.object({ message: z.string().optional() }).nullish(),
});
export type EasBuild = z.output<typeof buildSchema>;

export function platformOf(build: EasBuild): Platform {
  return build.platform === 'IOS' ? 'ios' : 'android';
}

export class Eas {
  private readonly command: string;
  private readonly baseArgs: string[];
  private readonly cwd: string;

  constructor(easBin: string, cwd: string) {
    const [command, ...args] = easBin.trim().split(/\s+/);
    this.command = command ?? 'eas';
    this.baseArgs = args;
    this.cwd = cwd;
  }

  /** What is run, for plans and the journal. */
  line(args: readonly string[]): string {
    return [this.command, ...this.baseArgs, ...args].join(' ');
  }

  async startBuilds(signal?: AbortSignal): Promise<EasBuild[]> {
    const out = await this.json(['build', '--platform', 'all', '--profile', 'production', '--non-interactive', '--json', '--no-wait'], signal);
    const parsed = z.array(buildSchema).safeParse(out);
    if (!parsed.success || parsed.data.length === 0)
      throw new ShipError('SHIP_ERR_PROVIDER_FAILED', 'eas build --json printed no builds. Look at the build page on expo.dev; nothing was submitted.');
    return parsed.data;
  }

  async viewBuild(id: string, signal?: AbortSignal): Promise<EasBuild> {
    const parsed = buildSchema.safeParse(await this.json(['build:view', id, '--json'], signal));
    if (!parsed.success)
      throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `eas build:view ${id} --json printed an unexpected shape (${parsed.error.issues[0]?.message ?? '?'}).`);
    return parsed.data;
  }

  /** Submits one build; resolves with the submission id eas printed (null when it printed none). */
  async submit(platform: Platform, buildId: string, signal?: AbortSignal): Promise<{ submissionId: string | null }> {
    const args = ['submit', '--platform', platform, '--id', buildId, '--profile', 'production', '--non-interactive', '--wait'];
    const result = await runCommand(this.command, [...this.baseArgs, ...args], { cwd: this.cwd, signal });
    if (result.code !== 0) {
      throw new ShipError(
        'SHIP_ERR_PROVIDER_FAILED',
        `\`${this.line(args)}\` exited with ${result.code ?? 'a signal'}: ${lastWords(result)}. The ${platform} build was not submitted.`,
      );
    }
    const id = /submissions\/([0-9a-fA-F-]{8,64})/.exec(result.stdout + result.stderr)?.[1] ?? null;
    return { submissionId: id };
  }

  private async json(args: string[], signal?: AbortSignal): Promise<unknown> {
    const result = await runCommand(this.command, [...this.baseArgs, ...args], { cwd: this.cwd, signal });
    if (result.code !== 0)
      throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `\`${this.line(args)}\` exited with ${result.code ?? 'a signal'}: ${lastWords(result)}.`);
    try {
      return JSON.parse(result.stdout) as unknown;
    } catch {
      throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `\`${this.line(args)}\` did not print JSON. Check EAS_BIN runs eas-cli (≥ 3.0).`);
    }
  }
}

function lastWords(result: { stdout: string; stderr: string }): string {
  return (result.stderr.trim() || result.stdout.trim() || 'no output').split('\n').slice(-3).join(' / ').slice(0, 400);
}
