#!/bin/bash
# maintenance.sh step 5 calls this script; it is `shipshape admin-token rotate`: a new admin
# token, and every older one (ADMIN_TOKEN included) keeps working for ADMIN_TOKEN_OVERLAP (24h),
# so the rest of the script and every running instance carry on. maintenance.sh appends stdout
# to maintenance.log, so the new token goes to stderr (the operator's terminal) and never into
# the log. Arguments pass through (--overlap 1h).
set -euo pipefail
shipshape="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../shipshape"
"$shipshape" admin-token rotate "$@" 1>&2
echo "Admin token rotated at $(date -u +%Y-%m-%dT%H:%M:%SZ); the new one was shown on the terminal only. Set ADMIN_TOKEN to it everywhere before the overlap ends (shipshape admin-token list)."
