/**
 * The real CLI (src/cli/main.ts, as bin/shipshape.js runs it) with Shipshape's migrations folder
 * replaced by REHEARSAL_MIGRATIONS_DIR: a copy of it plus the rehearsal's own test migration, so
 * `db migrate up` and `down` are rehearsed on the live database without adding a migration to
 * the product. Used for the migration procedure only.
 */
import { shipshapeProfile } from '../../src/app-profile.ts';

const folder = process.env.REHEARSAL_MIGRATIONS_DIR;
if (!folder) throw new Error('REHEARSAL_MIGRATIONS_DIR is not set');
// The profile is read-only to the product; the rehearsal points it at its own folder before the CLI loads.
(shipshapeProfile.migrations as { directory: string }).directory = folder;
const { main } = await import('../../src/cli/main.ts');
process.exitCode = await main(process.argv);
