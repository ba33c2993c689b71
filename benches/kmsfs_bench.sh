#!/usr/bin/env bash
# kmsfs vs gocryptfs vs native tmpfs, in one run, every backing directory
# on one tmpfs:
#   write    dd 1 GiB, bs=1M, conv=fsync
#   read     dd the same file back after dropping the page cache (cold)
#   untar    extract a tar of ~8,000 small files (/usr/include)
#   ls -lR   over the extracted tree (caches dropped first)
#   cat      every extracted file (caches dropped first)
#   rm -rf   the tree (caches dropped first)
# Each workload runs BENCH_REPS times (default 3); the median is shown.
# The last column is gocryptfs time / kmsfs time: above 1 kmsfs is faster.
#
# Usage: benches/kmsfs_bench.sh            (run as root)
# Env:   BENCH_REPS, BENCH_SIZE_MB (default 1024), BENCH_TREE (default
#        /usr/include), KMSFS_BIN/KMSD_BIN/KMSCTL_BIN (scripts/kmsfs_env.sh),
#        KMSFS_MOUNT_ARGS (extra `kmsfs mount` arguments).
set -euo pipefail
# shellcheck source=scripts/kmsfs_env.sh
. "$(dirname "$0")/../scripts/kmsfs_env.sh"

REPS=${BENCH_REPS:-3}
SIZE_MB=${BENCH_SIZE_MB:-1024}
TREE=${BENCH_TREE:-/usr/include}
command -v gocryptfs >/dev/null || kmsfs_die "gocryptfs is not installed"
kmsfs_check_bins

WORK=$(mktemp -d /tmp/kmsfs-bench.XXXXXX)
kmsfs_start_kmsd "$WORK/kmsd"
TMPFS="$WORK/tmpfs"
mkdir -p "$TMPFS"
mount -t tmpfs -o size=$((SIZE_MB * 3 + 2048))m kmsfs-bench "$TMPFS"
bench_cleanup() {
    fusermount3 -u "$TMPFS/gmnt" >/dev/null 2>&1 || umount -l "$TMPFS/gmnt" >/dev/null 2>&1 || true
    kmsfs_teardown
    umount "$TMPFS" 2>/dev/null || umount -l "$TMPFS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap bench_cleanup EXIT

TAR="$WORK/tree.tar"
tar -C "$(dirname "$TREE")" -cf "$TAR" "$(basename "$TREE")"
NFILES=$(tar -tf "$TAR" | grep -vc '/$' || true)

# Native.
mkdir -p "$TMPFS/native"
# gocryptfs.
mkdir -p "$TMPFS/gcipher" "$TMPFS/gmnt"
gocryptfs -q -init -extpass 'echo benchpw' "$TMPFS/gcipher" >/dev/null
gocryptfs -q -extpass 'echo benchpw' "$TMPFS/gcipher" "$TMPFS/gmnt"
# kmsfs.
kmsfs_new_volume "$TMPFS/kcipher"
# shellcheck disable=SC2086
kmsfs_mount "$TMPFS/kcipher" "$TMPFS/kmnt" ${KMSFS_MOUNT_ARGS:-}

drop() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

now() { date +%s.%N; }

# run_one SYSTEM WORKLOAD DIR: prints seconds.
run_one() {
    local dir=$3 t0 t1
    case $2 in
    write)
        rm -f "$dir/big"
        drop
        t0=$(now)
        dd if=/dev/zero of="$dir/big" bs=1M count="$SIZE_MB" conv=fsync status=none
        t1=$(now)
        ;;
    read)
        drop
        t0=$(now)
        dd if="$dir/big" of=/dev/null bs=1M status=none
        t1=$(now)
        ;;
    untar)
        rm -rf "$dir/tree"
        mkdir -p "$dir/tree"
        drop
        t0=$(now)
        tar -C "$dir/tree" -xf "$TAR"
        t1=$(now)
        ;;
    ls)
        drop
        t0=$(now)
        ls -lR "$dir/tree" >/dev/null
        t1=$(now)
        ;;
    cat)
        drop
        t0=$(now)
        find "$dir/tree" -type f -exec cat {} + >/dev/null
        t1=$(now)
        ;;
    rm)
        drop
        t0=$(now)
        rm -rf "$dir/tree"
        t1=$(now)
        ;;
    esac
    echo "$t1 - $t0" | bc -l
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

WORKLOADS=(write read untar ls cat rm)
SYSTEMS=(native gocryptfs kmsfs)
dir_of() {
    case $1 in
    native) echo "$TMPFS/native" ;;
    gocryptfs) echo "$TMPFS/gmnt" ;;
    kmsfs) echo "$TMPFS/kmnt" ;;
    esac
}
declare -A RESULT TIMES
for w in "${WORKLOADS[@]}"; do
    # Repetitions interleave the systems, so load that comes and goes on
    # the machine falls on all of them alike.
    for _ in $(seq 1 "$REPS"); do
        for sys in "${SYSTEMS[@]}"; do
            d=$(dir_of "$sys")
            # ls, cat and rm need a tree; rm consumes it.
            case $w in ls | cat | rm) [ -d "$d/tree" ] || run_one "$sys" untar "$d" >/dev/null ;; esac
            TIMES[$sys,$w]="${TIMES[$sys,$w]:-} $(run_one "$sys" "$w" "$d")"
        done
    done
    for sys in "${SYSTEMS[@]}"; do
        # shellcheck disable=SC2086
        RESULT[$sys,$w]=$(printf '%s\n' ${TIMES[$sys,$w]} | median)
    done
done

label() {
    case $1 in
    write) echo "write ${SIZE_MB} MiB (dd bs=1M conv=fsync)" ;;
    read) echo "cold read ${SIZE_MB} MiB (dd bs=1M)" ;;
    untar) echo "untar $NFILES files" ;;
    ls) echo "ls -lR" ;;
    cat) echo "cat every file" ;;
    rm) echo "rm -rf" ;;
    esac
}

cell() {
    local w=$1 s=$2
    case $w in
    write | read) printf '%7.3f s %6.0f MB/s' "$s" "$(echo "$SIZE_MB * 1.048576 / $s" | bc -l)" ;;
    *) printf '%7.3f s            ' "$s" ;;
    esac
}

echo
echo "kmsfs benchmark: tmpfs backing, median of $REPS, $(nproc) CPUs, $(uname -r)"
printf '%-36s | %-22s | %-22s | %-22s | %s\n' workload native gocryptfs kmsfs "kmsfs/gocryptfs"
printf '%s\n' "$(printf -- '-%.0s' $(seq 1 130))"
for w in "${WORKLOADS[@]}"; do
    n=${RESULT[native,$w]}
    g=${RESULT[gocryptfs,$w]}
    k=${RESULT[kmsfs,$w]}
    ratio=$(echo "$g / $k" | bc -l)
    printf '%-36s | %s | %s | %s | %6.2fx\n' "$(label "$w")" "$(cell "$w" "$n")" "$(cell "$w" "$g")" "$(cell "$w" "$k")" "$ratio"
done
echo
"$KMSFS_BIN" status "$TMPFS/kmnt" | sed 's/^/    /'
