/**
 * The facts of the application that procedures operate, kept out of procedure bodies.
 *
 * Shipshape's own schema is the default profile. A later profile can point the same
 * procedures at an existing Supabase project (`auth.users`,
 * `supabase_migrations.schema_migrations`) or another PostgreSQL application.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface AppProfile {
  /** Short name shown in plans and journals. */
  readonly name: string;
  /** Where user accounts live. */
  readonly users: {
    /** Table name, optionally schema-qualified (`auth.users`). */
    readonly table: string;
    readonly idColumn: string;
    readonly emailColumn: string;
  };
  /** Tables whose row counts must match the backup's manifest after a restore. */
  readonly criticalTables: readonly string[];
  /** The table and timestamp column whose newest rows prove recent data survived a restore. */
  readonly recentData: { readonly table: string; readonly timestampColumn: string };
  readonly migrations: {
    /** Folder of `NNNN_name.sql` files (with optional `NNNN_name.down.sql`). */
    readonly directory: string;
    /** Where applied migrations are recorded, schema-qualified. */
    readonly trackingTable: string;
  };
}

const here = path.dirname(fileURLToPath(import.meta.url));

export const shipshapeProfile: AppProfile = {
  name: 'shipshape',
  users: { table: 'users', idColumn: 'id', emailColumn: 'email' },
  criticalTables: ['users', 'tasks', 'sessions'],
  recentData: { table: 'tasks', timestampColumn: 'created_at' },
  migrations: {
    directory: path.join(here, 'db', 'migrations'),
    trackingTable: 'shipshape.schema_migrations',
  },
};
