#!/bin/bash
# Runbook "Run Database Migration" step 1 and maintenance.sh step 2 call this script; it is
# `shipshape db backup`: pg_dump -Fc streamed to BACKUP_STORAGE_URL, the stored copy re-read and
# verified, manifest last. Arguments pass through (--verify-restore, --compression N, --json).
# Exit 0 only once the backup verified; see docs/runbook-deviations.md for what differs.
set -euo pipefail
exec "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../shipshape" db backup "$@"
