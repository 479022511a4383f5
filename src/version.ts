import pkg from '../package.json' with { type: 'json' };

/** The running release, reported by /health and recorded in backups. */
export const version: string = pkg.version;
