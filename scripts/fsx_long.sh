#!/usr/bin/env bash
# The long fsx run: 1,000,000 operations on one seed (or the seeds given),
# on a fresh kmsfs mount. See scripts/fsx.sh.
#
# Usage: scripts/fsx_long.sh [SEED...]    (run as root)
set -euo pipefail
[ $# -gt 0 ] || set -- 20240229
FSX_OPS=${FSX_OPS:-1000000} exec "$(dirname "$0")/fsx.sh" "$@"
