/**
 * The runbook's commands that are not Shipshape's to run — AWS CLI, psql against a Supabase
 * host, Slack CLI, EAS, git — each with the Shipshape command that replaces it. The verbatim
 * test lists every one as skipped with this text, and fails when the runbook has a command that
 * is neither run nor listed here, or when an entry here no longer matches any command.
 * Why each step differs is in docs/runbook-deviations.md.
 */

export interface SkippedCommand {
  /** The runbook's `###` section. */
  readonly section: string;
  /** The program that does the work (see `RunbookCommand.tool`). */
  readonly tool: string;
  /** What an operator runs instead. */
  readonly replacement: string;
}

const BACKUP_STORAGE = '`shipshape db backup` streams the dump into BACKUP_STORAGE_URL (file:// or s3://)';

export const skippedCommands: readonly SkippedCommand[] = [
  // Database Backup
  {
    section: 'Database Backup',
    tool: 'export',
    replacement: '`shipshape db backup` reads DATABASE_URL and BACKUP_STORAGE_URL (environment or .env) and names the backup itself',
  },
  { section: 'Database Backup', tool: 'mkdir', replacement: `${BACKUP_STORAGE}: no local directory` },
  { section: 'Database Backup', tool: 'pg_dump', replacement: '`shipshape db backup` (pg_dump --format=custom -Z1, streamed)' },
  { section: 'Database Backup', tool: 'gzip', replacement: 'none: the custom-format dump is compressed already (`shipshape db backup --compression N`)' },
  {
    section: 'Database Backup',
    tool: 'aws',
    replacement: `${BACKUP_STORAGE}; \`shipshape db backups\` lists them; \`shipshape db verify <backup>\` re-reads one`,
  },
  { section: 'Database Backup', tool: 'rm', replacement: `none: ${BACKUP_STORAGE}, no local file is left` },
  { section: 'Database Backup', tool: 'gunzip', replacement: '`shipshape db verify <backup>` (reads the stored copy; nothing to decompress)' },
  {
    section: 'Database Backup',
    tool: 'pg_restore',
    replacement: '`shipshape db verify <backup> [--restore]` (size, SHA-256, pg_restore --list; --restore test-restores and compares row counts)',
  },
  // Restore Database
  { section: 'Restore Database', tool: 'slack-cli', replacement: '`shipshape db restore` announces the run to #incidents through the alert routing' },
  {
    section: 'Restore Database',
    tool: 'aws',
    replacement: '`shipshape db backups` lists; `shipshape db restore <backup>` fetches and verifies the one chosen',
  },
  { section: 'Restore Database', tool: 'export', replacement: '`shipshape db restore <backup-id>` (the id from `shipshape db backups`)' },
  { section: 'Restore Database', tool: 'gunzip', replacement: '`shipshape db restore <backup>` (no second compression to undo)' },
  {
    section: 'Restore Database',
    tool: 'pg_dump',
    replacement: '`shipshape db restore` keeps the pre-restore state itself; `shipshape runs rollback <run>` brings it back',
  },
  {
    section: 'Restore Database',
    tool: 'psql',
    replacement: '`shipshape db restore` stops other sessions and checks the critical tables against the backup manifest; by hand `shipshape db diagnose`',
  },
  { section: 'Restore Database', tool: 'pg_restore', replacement: '`shipshape db restore <backup>`; rollback `shipshape runs rollback <run>`' },
  { section: 'Restore Database', tool: 'npx', replacement: '`shipshape db restore` applies pending migrations; by hand `shipshape db migrate up`' },
  // Run Database Migration
  {
    section: 'Run Database Migration',
    tool: 'cat',
    replacement: '`shipshape db migrate up --dry-run` prints each pending file; rollback is the `.down.sql` file: `shipshape db migrate down`',
  },
  {
    section: 'Run Database Migration',
    tool: 'psql',
    replacement:
      '`shipshape db migrate plan` (applied in a transaction and rolled back), `shipshape db migrate status`; the verification is part of `db migrate up`',
  },
  { section: 'Run Database Migration', tool: 'npx', replacement: '`shipshape db migrate up` (rollback: `shipshape db migrate down`)' },
  // Deploy New Version, Rollback Deployment
  {
    section: 'Deploy New Version',
    tool: 'npm',
    replacement: '`shipshape release deploy --bump patch|minor|major` runs `npm version` in APP_REPO_DIR (a hotfix is `--bump patch`)',
  },
  { section: 'Deploy New Version', tool: 'export', replacement: '`shipshape release deploy` reads the new version from package.json itself' },
  { section: 'Deploy New Version', tool: 'git', replacement: '`shipshape release deploy` tags v$VERSION (annotated) and pushes it with main' },
  {
    section: 'Deploy New Version',
    tool: 'eas',
    replacement:
      '`shipshape release deploy` runs eas build/build:view/submit (EAS_BIN) and starts the staged rollout through the store APIs; `shipshape release status` follows it',
  },
  {
    section: 'Rollback Deployment',
    tool: 'eas',
    replacement: "`shipshape release rollback` re-submits the last stable release's builds (`eas submit --id`) after halting the rollout",
  },
  { section: 'Rollback Deployment', tool: 'export', replacement: '`shipshape release rollback` finds the last stable release in the release records' },
  {
    section: 'Rollback Deployment',
    tool: 'cat',
    replacement: "`shipshape release rollback [--message …]` tells users (in-app notice, push, email, status page) with the runbook's text by default",
  },
  // User Management
  { section: 'Reset User Password', tool: 'psql', replacement: '`shipshape user reset-password <email> --ticket REF`' },
  {
    section: 'Delete User Data (GDPR Request)',
    tool: 'psql',
    replacement: '`shipshape user export <email>` (step 1), `shipshape user delete <email> --ticket REF` (step 3; verification built in)',
  },
  {
    section: 'Delete User Data (GDPR Request)',
    tool: 'tar',
    replacement: '`shipshape user export <email> --ticket REF` (tar.gz with a manifest, read back and verified)',
  },
  {
    section: 'Delete User Data (GDPR Request)',
    tool: 'aws',
    replacement: '`shipshape user export` writes to LEGAL_STORAGE_URL and verifies the stored archive',
  },
  // Monitoring and Diagnostics
  { section: 'Check System Health', tool: 'psql', replacement: '`shipshape health` (connections by state against max_connections)' },
  {
    section: 'Analyze Slow Queries',
    tool: 'psql',
    replacement: '`shipshape db slow-queries`, `shipshape db explain "<sql>"`, `shipshape db index <table> <column…>`',
  },
  { section: 'Investigate High Memory Usage', tool: 'psql', replacement: '`shipshape db diagnose`; step 4: `shipshape db kill <pid> [--force]`' },
  // Emergency Procedures
  { section: 'Emergency App Disable', tool: 'slack-cli', replacement: '`shipshape emergency disable --message …` posts to #incidents and pages the on-call' },
  {
    section: 'Kill All Database Connections',
    tool: 'psql',
    replacement: '`shipshape db kill-connections [--warn 5m]` (terminates, then verifies only its own session is left)',
  },
  // Scheduled Maintenance
  { section: 'Monthly Maintenance Checklist', tool: 'cat', replacement: "`shipshape maintenance plan [--at ISO]` (written from the procedures' own steps)" },
  // Troubleshooting Guide
  { section: 'Common Issues', tool: 'psql', replacement: '`shipshape doctor` (connections, slow queries, size), `shipshape db slow-queries`' },
];
