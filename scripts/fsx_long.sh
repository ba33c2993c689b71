#!/usr/bin/env bash
# The long fsx run: 1,000,000 operations on one fresh kmsfs mount, as 10
# fsx runs of 100,000 operations (seeds 20240229..20240238, or FSX_LONG_SEED
# and the 9 after it), one file each. See scripts/fsx.sh.
#
# Why not one process of 1,000,000: fsx 0.3.2 never unmaps the mapping of a
# MAPREAD, so one process collects a mapping per MAPREAD (~100,000 in 1M
# operations), slows down as the kernel walks them, and fails with ENOMEM
# at vm.max_map_count (65,530) after about 600,000 operations.
#
# Usage: scripts/fsx_long.sh [SEED...]    (run as root)
set -euo pipefail
if [ $# -eq 0 ]; then
    base=${FSX_LONG_SEED:-20240229}
    for i in $(seq 0 9); do set -- "$@" $((base + i)); done
fi
FSX_OPS=${FSX_OPS:-100000} exec "$(dirname "$0")/fsx.sh" "$@"
