#!/usr/bin/env bash
# fsx (the Rust File System eXerciser) on a fresh kmsfs mount: one fsx run
# per seed of a fixed list (default 4 seeds), FSX_OPS operations each
# (default 25000: 100,000 in all), with every operation enabled that kmsfs
# supports. Prints pass/fail counts; exits 0 only if every seed passed.
#
# Usage: scripts/fsx.sh [SEED...]         (run as root)
# Env:   FSX_OPS (ops per seed), FSX_BIN (default: fsx in PATH or
#        ~/.cargo/bin/fsx), KMSFS_BIN/KMSD_BIN/KMSCTL_BIN (see kmsfs_env.sh),
#        FSX_WORK (work dir; kept on failure for the artifacts).
set -euo pipefail
# shellcheck source=scripts/kmsfs_env.sh
. "$(dirname "$0")/kmsfs_env.sh"

OPS=${FSX_OPS:-25000}
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(1 42 31337 20240229)
FSX_BIN=${FSX_BIN:-$(command -v fsx || echo "$HOME/.cargo/bin/fsx")}
[ -x "$FSX_BIN" ] || kmsfs_die "fsx not found (cargo install fsx, or set FSX_BIN)"
kmsfs_check_bins

WORK=${FSX_WORK:-$(mktemp -d /tmp/kmsfs-fsx.XXXXXX)}
kmsfs_start_kmsd "$WORK"
kmsfs_new_volume "$WORK/cipher"
kmsfs_mount "$WORK/cipher" "$WORK/mnt"

# Every operation kmsfs implements: reads, writes, mmap reads and shared
# writes, msync invalidation, truncation, fsync/fdatasync, posix_fallocate
# (mode 0), hole punching, sendfile, copy_file_range, fadvise,
# close/reopen. Sizes start at 1: fsx would otherwise try a zero-length
# posix_fallocate, which the kernel refuses (EINVAL) on every file system,
# and fsx takes that for "posix_fallocate unsupported" and stops.
cat >"$WORK/fsx.toml" <<'TOML'
flen = 4194304
[opsize]
max = 262144
min = 1
align = 1
[weights]
close_open = 1
read = 10
write = 10
mapread = 5
mapwrite = 5
invalidate = 1
truncate = 3
fsync = 1
fdatasync = 1
posix_fallocate = 1
punch_hole = 1
sendfile = 1
posix_fadvise = 1
copy_file_range = 1
TOML

pass=0
fail=0
failed_seeds=()
for seed in "${SEEDS[@]}"; do
    mkdir -p "$WORK/artifacts/$seed"
    start=$(date +%s)
    if "$FSX_BIN" -q -N "$OPS" -S "$seed" -f "$WORK/fsx.toml" -P "$WORK/artifacts/$seed" \
        "$WORK/mnt/fsx-$seed" >"$WORK/fsx-$seed.log" 2>&1; then
        pass=$((pass + 1))
        echo "fsx seed $seed: PASS ($OPS ops, $(($(date +%s) - start)) s)"
    else
        fail=$((fail + 1))
        failed_seeds+=("$seed")
        echo "fsx seed $seed: FAIL (log: $WORK/fsx-$seed.log)"
        tail -n 30 "$WORK/fsx-$seed.log" | sed 's/^/    /'
    fi
done

echo "fsx: $pass passed, $fail failed (seeds), $((${#SEEDS[@]} * OPS)) ops in all"
if [ "$fail" -gt 0 ]; then
    KMSFS_KEEP_WORK=1
    echo "fsx: failed seeds: ${failed_seeds[*]}; artifacts kept in $WORK"
    exit 1
fi
