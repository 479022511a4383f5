/**
 * What `shipshape procedures` lists, written from the registry (index.ts) by
 * `node scripts/procedure-catalog.ts`; test/cli/procedure-catalog.test.ts fails when it is
 * out of date. Do not edit by hand.
 */
import type { ProcedureListing } from '../engine/registry.ts';

export const procedureCatalog: readonly ProcedureListing[] = [
  {
    "id": "db.backup",
    "command": "shipshape db backup",
    "title": "Database backup",
    "risk": "low",
    "expectedDuration": "5-10 minutes",
    "runbookSection": "Database Backup",
    "whenToUse": "Daily (automated) or before major changes (manual).",
    "irreversibleSteps": []
  },
  {
    "id": "db.prune",
    "command": "shipshape db prune",
    "title": "Prune old backups (grandfather-father-son retention)",
    "risk": "medium",
    "expectedDuration": "1 minute",
    "runbookSection": "Database Backup",
    "whenToUse": "After the daily backup, or when backup storage fills up. Try --dry-run first.",
    "irreversibleSteps": [
      "delete",
      "drop-pre-restore"
    ]
  },
  {
    "id": "db.restore",
    "command": "shipshape db restore",
    "title": "Restore database",
    "risk": "critical",
    "expectedDuration": "30-60 minutes",
    "runbookSection": "Restore Database",
    "whenToUse": "Data corruption, accidental deletion, disaster recovery.",
    "irreversibleSteps": []
  },
  {
    "id": "db.migrate",
    "command": "shipshape db migrate up",
    "title": "Run database migration",
    "risk": "medium",
    "expectedDuration": "5-30 minutes",
    "runbookSection": "Run Database Migration",
    "whenToUse": "Schema changes, new features: apply the pending migrations of this release.",
    "irreversibleSteps": []
  },
  {
    "id": "release.deploy",
    "command": "shipshape release deploy",
    "title": "Deploy a new app version: version, tag, EAS builds, store submissions, staged rollout under health gates",
    "risk": "medium",
    "expectedDuration": "30-45 minutes (then the rollout runs for days under the gates)",
    "runbookSection": "Deploy New Version",
    "whenToUse": "New features, bug fixes; a hotfix is `--bump patch`.",
    "irreversibleSteps": []
  },
  {
    "id": "release.halt",
    "command": "shipshape release halt",
    "title": "Halt a staged rollout (Play halted, App Store phased release paused)",
    "risk": "low",
    "expectedDuration": "1 minute",
    "runbookSection": "Deploy New Version",
    "whenToUse": "A problem in the release rolling out: stop more users getting it (Rollback, Option 1).",
    "irreversibleSteps": []
  },
  {
    "id": "release.resume",
    "command": "shipshape release resume",
    "title": "Resume a halted staged rollout at its fraction; the gates then move it on",
    "risk": "medium",
    "expectedDuration": "1 minute",
    "runbookSection": "Deploy New Version",
    "whenToUse": "The cause of a halt is understood and the release may go on.",
    "irreversibleSteps": []
  },
  {
    "id": "release.complete",
    "command": "shipshape release complete",
    "title": "Complete a staged rollout now (100 % of users)",
    "risk": "medium",
    "expectedDuration": "1 minute",
    "runbookSection": "Deploy New Version",
    "whenToUse": "The release is proven and should reach everyone without waiting for the remaining steps.",
    "irreversibleSteps": []
  },
  {
    "id": "release.rollback",
    "command": "shipshape release rollback",
    "title": "Roll back a release: halt its rollout, re-submit the last stable builds, tell users, page",
    "risk": "high",
    "expectedDuration": "15-30 minutes",
    "runbookSection": "Rollback Deployment",
    "whenToUse": "Critical bugs, high crash rate in the release rolling out.",
    "irreversibleSteps": []
  },
  {
    "id": "user.reset-password",
    "command": "shipshape user reset-password",
    "title": "Email the user a password reset link",
    "risk": "low",
    "expectedDuration": "2 minutes",
    "runbookSection": "Reset User Password",
    "whenToUse": "A user is locked out or forgot their password.",
    "irreversibleSteps": []
  },
  {
    "id": "user.export",
    "command": "shipshape user export",
    "title": "Export a user's data to legal storage",
    "risk": "low",
    "expectedDuration": "1-5 minutes",
    "runbookSection": "Delete User Data (GDPR Request)",
    "whenToUse": "Before erasing an account (the runbook exports first, for the records), or when a user asks for a copy of their data.",
    "irreversibleSteps": []
  },
  {
    "id": "user.request-deletion",
    "command": "shipshape user request-deletion",
    "title": "Record a user's deletion request (starts the grace period)",
    "risk": "low",
    "expectedDuration": "1 minute",
    "runbookSection": "Delete User Data (GDPR Request)",
    "whenToUse": "A user asked (by ticket) for their data to be deleted and their identity has been verified.",
    "irreversibleSteps": []
  },
  {
    "id": "user.delete",
    "command": "shipshape user delete",
    "title": "Erase a user's data (GDPR)",
    "risk": "medium",
    "expectedDuration": "10-15 minutes",
    "runbookSection": "Delete User Data (GDPR Request)",
    "whenToUse": "A deletion request was approved by legal and its grace period has passed (or must be skipped, with a second approval).",
    "irreversibleSteps": [
      "erase",
      "forget-in-run-records"
    ]
  },
  {
    "id": "user.purge-due",
    "command": "shipshape user purge-due",
    "title": "Erase every account whose deletion grace period has passed",
    "risk": "medium",
    "expectedDuration": "1-15 minutes",
    "runbookSection": "Delete User Data (GDPR Request)",
    "whenToUse": "On schedule (daily), or by hand to carry out due deletion requests.",
    "irreversibleSteps": [
      "erase-due"
    ]
  },
  {
    "id": "cache.clear",
    "command": "shipshape cache clear",
    "title": "Clear the app and server caches for a scope",
    "risk": "low",
    "expectedDuration": "Immediate",
    "runbookSection": "Clear App Cache",
    "whenToUse": "Stale data issues, troubleshooting (after fixing data directly in the database, for instance).",
    "irreversibleSteps": []
  },
  {
    "id": "cdn.purge",
    "command": "shipshape cdn purge",
    "title": "Purge the CDN cache (Cloudflare) and check the edge serves fresh copies",
    "risk": "low",
    "expectedDuration": "5-10 minutes",
    "runbookSection": "Clear CDN Cache",
    "whenToUse": "Asset updates, image changes that users do not see yet.",
    "irreversibleSteps": []
  },
  {
    "id": "db.index",
    "command": "shipshape db index",
    "title": "Add an index without blocking writes (CREATE INDEX CONCURRENTLY)",
    "risk": "medium",
    "expectedDuration": "seconds to minutes, growing with the table",
    "runbookSection": "Analyze Slow Queries",
    "whenToUse": "A slow query reads a large table by sequential scan (see `shipshape db index-advice` and `shipshape db explain`).",
    "irreversibleSteps": []
  },
  {
    "id": "db.kill",
    "command": "shipshape db kill",
    "title": "Stop one database session’s statement (cancel; terminate with --force)",
    "risk": "medium",
    "expectedDuration": "under a minute",
    "runbookSection": "Investigate High Memory Usage",
    "whenToUse": "A long-running query or a session idle in a transaction is holding locks or resources (find it with `shipshape db diagnose`).",
    "irreversibleSteps": [
      "cancel",
      "terminate"
    ]
  },
  {
    "id": "emergency.disable",
    "command": "shipshape emergency disable",
    "title": "Emergency app disable: maintenance on, stakeholders paged, users told",
    "risk": "high",
    "expectedDuration": "5 minutes",
    "runbookSection": "Emergency App Disable",
    "whenToUse": "Critical security vulnerability, data breach: lock every user out now.",
    "irreversibleSteps": []
  },
  {
    "id": "emergency.enable",
    "command": "shipshape emergency enable",
    "title": "Re-enable the app after an emergency disable",
    "risk": "medium",
    "expectedDuration": "2 minutes",
    "runbookSection": "Emergency App Disable",
    "whenToUse": "After the issue that made you disable the app is resolved (or to clear maintenance mode left on).",
    "irreversibleSteps": []
  },
  {
    "id": "db.kill-connections",
    "command": "shipshape db kill-connections",
    "title": "Kill all database connections",
    "risk": "medium",
    "expectedDuration": "1 minute (plus the --warn period)",
    "runbookSection": "Kill All Database Connections",
    "whenToUse": "Database migration or emergency maintenance that needs every other session off the database.",
    "irreversibleSteps": [
      "terminate"
    ]
  },
  {
    "id": "maintenance.schedule",
    "command": "shipshape maintenance schedule",
    "title": "Announce a maintenance window (T-72 hours)",
    "risk": "medium",
    "expectedDuration": "1 minute (emails go out in the background)",
    "runbookSection": "Monthly Maintenance Checklist",
    "whenToUse": "72 hours before the monthly window: users get a push, an email and an in-app banner; the plan document is written.",
    "irreversibleSteps": []
  },
  {
    "id": "maintenance.run",
    "command": "shipshape maintenance run",
    "title": "Monthly maintenance",
    "risk": "medium",
    "expectedDuration": "2 hours",
    "runbookSection": "Monthly Maintenance Checklist",
    "whenToUse": "The monthly maintenance window (first Sunday of each month, 2:00 AM PST), announced 72 hours before with `shipshape maintenance schedule`.",
    "irreversibleSteps": [
      "maintenance-on",
      "migrations",
      "rotate-credentials",
      "clear-old-logs"
    ]
  },
  {
    "id": "update.rollback",
    "command": "shipshape update rollback",
    "title": "Stop serving an over-the-air update: the control, the previous release or the embedded update is served again",
    "risk": "high",
    "expectedDuration": "Immediate; devices switch at their next update check (app launch)",
    "runbookSection": "Rollback Deployment",
    "whenToUse": "An update shipped with `shipshape update publish` causes critical bugs or a high crash rate.",
    "irreversibleSteps": []
  }
];
