#!/usr/bin/env bash
# How fast `kmsfs rewrap` moves a volume to another key: a tree of
# BENCH_FILES files (default 10,000, 100 per directory, 1 KiB each) made
# through a mount, then rewrapped BENCH_REPS times (default 3) back and
# forth between two KMS keys, offline and while mounted, and once more to
# the current version of the key after a rotation. kmsd's state and the
# backing directory are on tmpfs (/dev/shm), so the figure is kmsfs and
# kmsd, not the disk. Prints each run's first-pass rate (files/s, the
# figure of the issue's target: >= 5,000 files/s) and the median.
#
# Usage: benches/kmsfs_rewrap.sh        (run as root)
# Env:   BENCH_FILES, BENCH_REPS, KMSFS_BIN/KMSD_BIN/KMSCTL_BIN.
set -euo pipefail
# shellcheck source=scripts/kmsfs_env.sh
. "$(dirname "$0")/../scripts/kmsfs_env.sh"

FILES=${BENCH_FILES:-10000}
REPS=${BENCH_REPS:-3}
kmsfs_check_bins
[ -d /dev/shm ] || kmsfs_die "/dev/shm is missing"

WORK=$(mktemp -d /dev/shm/kmsfs-rewrap.XXXXXX)
kmsfs_start_kmsd "$WORK"
trap 'kmsfs_teardown; rm -rf "$WORK"' EXIT
C="$WORK/cipher"
M="$WORK/mnt"
kmsfs_new_volume "$C"
volume_key() { "$KMSFS_BIN" info "$C" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["key_arn"])'; }
A=$(volume_key)
B=$(kmsfs_create_key)
[ -n "$A" ] && [ -n "$B" ] || kmsfs_die "could not read the volume key or create a second one"

kmsfs_mount "$C" "$M"
head -c 1024 /dev/urandom >"$WORK/one"
for d in $(seq 1 $(((FILES + 99) / 100))); do
    mkdir "$M/d$d"
    for f in $(seq 1 100); do
        [ $(((d - 1) * 100 + f)) -le "$FILES" ] || break
        cp "$WORK/one" "$M/d$d/f$f"
    done
done
sum_before=$(cd "$M" && find . -type f -exec cat {} + | sha256sum)
kmsfs_unmount "$M"

# rewrap_once [ARGS...]: prints the first-pass files/s of one run.
rewrap_once() {
    local out
    out=$("$KMSFS_BIN" rewrap "$C" --socket "$KMSD_SOCKET" "$@" 2>&1) ||
        kmsfs_die "rewrap failed: $out"
    echo "$out" | grep -q ', 0 errors' || kmsfs_die "rewrap reported errors: $out"
    echo "$out" | sed -n 's/.*(the first pass: [0-9]* in [0-9.]* s, \([0-9]*\) files\/s).*/\1/p' | tail -1
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

OFF=() ON=()
to=$B
for _ in $(seq 1 "$REPS"); do
    OFF+=("$(rewrap_once --to-key "$to")")
    if [ "$to" = "$B" ]; then to=$A; else to=$B; fi
done
kmsfs_mount "$C" "$M"
for _ in $(seq 1 "$REPS"); do
    ON+=("$(rewrap_once --to-key "$to")")
    if [ "$to" = "$B" ]; then to=$A; else to=$B; fi
done
sum_after=$(cd "$M" && find . -type f -exec cat {} + | sha256sum)
kmsfs_unmount "$M"
[ "$sum_before" = "$sum_after" ] || kmsfs_die "content changed across rewraps"
cur=$(volume_key)
"$KMSCTL_BIN" --socket "$KMSD_SOCKET" rotate-key-on-demand --key-id "$cur" >/dev/null
ROT=$(rewrap_once)
"$KMSFS_BIN" fsck "$C" --socket "$KMSD_SOCKET" >/dev/null || kmsfs_die "fsck is not clean after the rewraps"

echo
echo "kmsfs rewrap: $FILES files, tmpfs backing and kmsd state, $(nproc) CPUs"
echo "offline, --to-key (files/s):  ${OFF[*]}   median $(printf '%s\n' "${OFF[@]}" | median)"
echo "mounted, --to-key (files/s):  ${ON[*]}   median $(printf '%s\n' "${ON[@]}" | median)"
echo "offline, after a rotation:    $ROT files/s"
echo "content unchanged (sha256 of every file), fsck clean"
