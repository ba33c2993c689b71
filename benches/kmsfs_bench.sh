#!/usr/bin/env bash
# kmsfs side by side with native tmpfs, the floor of FUSE itself (libfuse's
# low-level passthrough example, -o writeback), bindfs, and the encrypting
# peers gocryptfs, securefs, CryFS and encfs, in one run, every backing
# directory on one tmpfs:
#   write    dd 1 GiB, bs=1M, conv=fsync
#   read     dd the same file back after dropping the page cache (cold)
#   untar    extract a tar of ~8,000 small files (/usr/include)
#   ls -lR   over the extracted tree (caches dropped first)
#   cat      every extracted file (caches dropped first)
#   rm -rf   the tree (caches dropped first)
# Each workload runs BENCH_REPS times (default 3), the systems interleaved
# in every repetition; the median is shown. Then:
#   kmsfs vs peer    best encrypting peer's time / kmsfs time (above 1:
#                    kmsfs is faster; the target is >= 1.25)
#   pt_xattr         passthrough_ll with -o xattr as well: the floor for a
#                    file system that stores extended attributes (without
#                    it the kernel stops asking after the first ENOSYS)
#   kmsfs vs floor   kmsfs time / passthrough_ll time (the target for the
#                    metadata workloads is <= 1.5)
#   storage          bytes of the extracted tree in each backing directory
#                    against native (du --apparent-size, and allocated)
#
# Usage: benches/kmsfs_bench.sh            (run as root)
# Env:   BENCH_REPS, BENCH_SIZE_MB (default 1024), BENCH_TREE (default
#        /usr/include), BENCH_SYSTEMS (default: all that are installed,
#        e.g. "native passthrough gocryptfs kmsfs"), KMSFS_BIN/KMSD_BIN/
#        KMSCTL_BIN (scripts/kmsfs_env.sh), KMSFS_INIT_ARGS (e.g.
#        "--plaintext-names" or "--format 1"), KMSFS_MOUNT_ARGS, BENCH_TRACE=1
#        (then also count each FUSE system's requests per metadata workload).
# Peers: apt-get install gocryptfs securefs cryfs encfs bindfs libfuse3-dev
# (passthrough_ll is built from libfuse3-dev's examples with gcc).
set -euo pipefail
# shellcheck source=scripts/kmsfs_env.sh
. "$(dirname "$0")/../scripts/kmsfs_env.sh"

REPS=${BENCH_REPS:-3}
SIZE_MB=${BENCH_SIZE_MB:-1024}
TREE=${BENCH_TREE:-/usr/include}
PT_SRC=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
PW=benchpw
kmsfs_check_bins

WORK=$(mktemp -d /tmp/kmsfs-bench.XXXXXX)
kmsfs_start_kmsd "$WORK/kmsd"
T="$WORK/tmpfs"
mkdir -p "$T"

ALL=(native passthrough pt_xattr bindfs gocryptfs securefs cryfs encfs kmsfs)
ENCRYPTING=(gocryptfs securefs cryfs encfs)
have() {
    case $1 in
    native | kmsfs) true ;;
    passthrough | pt_xattr) [ -f "$PT_SRC" ] && command -v gcc >/dev/null && pkg-config --exists fuse3 ;;
    *) command -v "$1" >/dev/null ;;
    esac
}
if [ -n "${BENCH_SYSTEMS:-}" ]; then
    read -r -a SYSTEMS <<<"$BENCH_SYSTEMS"
else
    SYSTEMS=()
    for s in "${ALL[@]}"; do
        if have "$s"; then SYSTEMS+=("$s"); else echo "skipping $s: not installed" >&2; fi
    done
fi
for s in "${SYSTEMS[@]}"; do have "$s" || kmsfs_die "$s is not installed"; done

mount -t tmpfs -o size=$((SIZE_MB * (${#SYSTEMS[@]} + 1) + 4096))m kmsfs-bench "$T"
PEER_MOUNTS=()
bench_cleanup() {
    local m
    for m in "${PEER_MOUNTS[@]}"; do
        fusermount3 -u "$m" >/dev/null 2>&1 || umount -l "$m" >/dev/null 2>&1 || true
    done
    kmsfs_teardown
    umount "$T" 2>/dev/null || umount -l "$T" 2>/dev/null || true
    rm -rf "$WORK"
}
trap bench_cleanup EXIT

TAR="$WORK/tree.tar"
tar -C "$(dirname "$TREE")" -cf "$TAR" "$(basename "$TREE")"
NFILES=$(tar -tf "$TAR" | grep -vc '/$' || true)

# setup SYSTEM: makes $T/SYSTEM.raw (what lands on the backing tmpfs) and
# mounts it on $T/SYSTEM (native: the same directory).
setup() {
    local s=$1 raw="$T/$1.raw" mnt="$T/$1"
    mkdir -p "$raw" "$mnt"
    case $s in
    native) rmdir "$mnt" && ln -s "$raw" "$mnt" ;;
    passthrough | pt_xattr)
        [ -x "$WORK/passthrough_ll" ] ||
            gcc -O2 -Wall "$PT_SRC" $(pkg-config --cflags --libs fuse3) -o "$WORK/passthrough_ll"
        if [ "$s" = passthrough ]; then
            "$WORK/passthrough_ll" -o source="$raw" -o writeback "$mnt"
        else
            "$WORK/passthrough_ll" -o source="$raw" -o writeback -o xattr "$mnt"
        fi
        ;;
    bindfs) bindfs "$raw" "$mnt" ;;
    gocryptfs)
        gocryptfs -q -init -extpass "echo $PW" "$raw" >/dev/null
        gocryptfs -q -extpass "echo $PW" "$raw" "$mnt"
        ;;
    securefs)
        securefs create --pass "$PW" "$raw" >/dev/null
        securefs mount -b --log "$WORK/securefs.log" --pass "$PW" "$raw" "$mnt" >/dev/null
        ;;
    cryfs)
        echo "$PW" | CRYFS_FRONTEND=noninteractive CRYFS_NO_UPDATE_CHECK=true \
            cryfs --config "$WORK/cryfs.config" "$raw" "$mnt" >/dev/null 2>&1
        ;;
    encfs)
        encfs --standard --extpass="echo $PW" "$raw" "$mnt" >/dev/null
        ;;
    kmsfs)
        kmsfs_new_volume "$raw"
        # shellcheck disable=SC2086
        kmsfs_mount "$raw" "$mnt" ${KMSFS_MOUNT_ARGS:-}
        return
        ;;
    esac
    [ "$s" = native ] || PEER_MOUNTS+=("$mnt")
    local i
    for i in $(seq 1 100); do
        [ "$s" = native ] || mountpoint -q "$mnt" && return 0
        sleep 0.1
    done
    kmsfs_die "$s did not mount on $mnt"
}

drop() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

now() { date +%s.%N; }

# run_one WORKLOAD DIR: prints seconds.
run_one() {
    local dir=$2 t0 t1
    case $1 in
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

for s in "${SYSTEMS[@]}"; do setup "$s"; done

WORKLOADS=(write read untar ls cat rm)
declare -A RESULT TIMES BYTES ALLOC
for w in "${WORKLOADS[@]}"; do
    # Repetitions interleave the systems, so load that comes and goes on
    # the machine falls on all of them alike.
    for _ in $(seq 1 "$REPS"); do
        for s in "${SYSTEMS[@]}"; do
            d="$T/$s"
            # ls, cat and rm need a tree; rm consumes it.
            case $w in ls | cat | rm) [ -d "$d/tree" ] || run_one untar "$d" >/dev/null ;; esac
            TIMES[$s,$w]="${TIMES[$s,$w]:-} $(run_one "$w" "$d")"
        done
    done
    for s in "${SYSTEMS[@]}"; do
        # shellcheck disable=SC2086
        RESULT[$s,$w]=$(printf '%s\n' ${TIMES[$s,$w]} | median)
        # The big file is done with after the reads; the tree's storage is
        # measured before rm takes it (the last untar left it in place).
        case $w in
        read) rm -f "$T/$s/big" ;;
        cat)
            sync
            BYTES[$s]=$(du -s --apparent-size -B1 "$T/$s.raw" | cut -f1)
            ALLOC[$s]=$(du -s -B1 "$T/$s.raw" | cut -f1)
            ;;
        esac
    done
done

label() {
    case $1 in
    write) echo "write ${SIZE_MB} MiB (dd conv=fsync)" ;;
    read) echo "cold read ${SIZE_MB} MiB" ;;
    untar) echo "untar $NFILES files" ;;
    ls) echo "ls -lR" ;;
    cat) echo "cat every file" ;;
    rm) echo "rm -rf" ;;
    esac
}

in_list() {
    local x=$1
    shift
    for y in "$@"; do [ "$x" = "$y" ] && return 0; done
    return 1
}

echo
echo "kmsfs benchmark: tmpfs backing, median of $REPS, $(nproc) CPUs, $(uname -r)"
if in_list kmsfs "${SYSTEMS[@]}"; then
    "$KMSFS_BIN" info "$T/kmsfs.raw" --json | python3 -c 'import json, sys; i = json.load(sys.stdin); print("kmsfs volume: format", i["format_version"], "encrypted names" if i["encrypted_names"] else "plaintext names")'
fi
printf '%-28s' "seconds (MB/s)"
for s in "${SYSTEMS[@]}"; do printf ' | %11s' "$s"; done
printf ' | %-17s | %-14s | %s\n' "kmsfs vs peer" "kmsfs vs floor" "vs pt_xattr"
for w in "${WORKLOADS[@]}"; do
    printf '%-28s' "$(label "$w")"
    best="" best_s=""
    for s in "${SYSTEMS[@]}"; do
        v=${RESULT[$s,$w]}
        printf ' | %11.3f' "$v"
        if in_list "$s" "${ENCRYPTING[@]}"; then
            if [ -z "$best" ] || [ "$(echo "$v < $best" | bc -l)" = 1 ]; then best=$v best_s=$s; fi
        fi
    done
    k=${RESULT[kmsfs,$w]:-}
    if [ -n "$k" ] && [ -n "$best" ]; then
        printf ' | %5.2fx %-10s' "$(echo "$best / $k" | bc -l)" "$best_s"
    else
        printf ' | %-17s' "-"
    fi
    if [ -n "$k" ] && [ -n "${RESULT[passthrough,$w]:-}" ]; then
        printf ' | %5.2fx        ' "$(echo "$k / ${RESULT[passthrough,$w]}" | bc -l)"
    fi
    if [ -n "$k" ] && [ -n "${RESULT[pt_xattr,$w]:-}" ]; then
        printf ' | %5.2fx' "$(echo "$k / ${RESULT[pt_xattr,$w]}" | bc -l)"
    fi
    echo
    case $w in
    write | read)
        printf '%-28s' "  MB/s"
        for s in "${SYSTEMS[@]}"; do printf ' | %11.0f' "$(echo "$SIZE_MB * 1.048576 / ${RESULT[$s,$w]}" | bc -l)"; done
        echo
        ;;
    esac
done
echo
echo "storage of the $NFILES-file tree in the backing directory (native = 1.000)"
printf '%-28s' "apparent bytes"
for s in "${SYSTEMS[@]}"; do printf ' | %11s' "${BYTES[$s]}"; done
echo
printf '%-28s' "  vs native"
for s in "${SYSTEMS[@]}"; do printf ' | %11.3f' "$(echo "${BYTES[$s]} / ${BYTES[native]}" | bc -l)"; done
echo
printf '%-28s' "allocated bytes vs native"
for s in "${SYSTEMS[@]}"; do printf ' | %11.3f' "$(echo "${ALLOC[$s]} / ${ALLOC[native]}" | bc -l)"; done
echo
echo
if in_list kmsfs "${SYSTEMS[@]}"; then "$KMSFS_BIN" status "$T/kmsfs" | sed 's/^/    /'; fi

# BENCH_TRACE=1: one more, untimed pass of the metadata workloads per FUSE
# system, counting the requests the kernel sent (tracepoint
# fuse:fuse_request_send), by opcode. Tracing costs time, so these runs
# are kept out of the table above.
[ "${BENCH_TRACE:-0}" = 1 ] || exit 0
TR=/sys/kernel/tracing
[ -d "$TR/events/fuse" ] || mount -t tracefs nodev "$TR" 2>/dev/null || true
[ -d "$TR/events/fuse/fuse_request_send" ] || kmsfs_die "BENCH_TRACE: no fuse:fuse_request_send tracepoint in $TR"
OLD_BUF=$(sed 's/ .*//' "$TR/buffer_size_kb")
echo 131072 >"$TR/buffer_size_kb"
echo
echo "FUSE requests per workload (BENCH_TRACE, one untimed pass; top opcodes)"
for s in "${SYSTEMS[@]}"; do
    [ "$s" = native ] && continue
    d="$T/$s"
    for w in untar ls cat rm; do
        [ "$w" = untar ] || [ -d "$d/tree" ] || run_one untar "$d" >/dev/null
        [ "$w" != untar ] || { rm -rf "$d/tree"; mkdir -p "$d/tree"; }
        drop
        echo >"$TR/trace"
        echo 1 >"$TR/events/fuse/fuse_request_send/enable"
        case $w in
        untar) tar -C "$d/tree" -xf "$TAR" ;;
        ls) ls -lR "$d/tree" >/dev/null ;;
        cat) find "$d/tree" -type f -exec cat {} + >/dev/null ;;
        rm) rm -rf "$d/tree" ;;
        esac
        echo 0 >"$TR/events/fuse/fuse_request_send/enable"
        printf '%-10s %-6s ' "$s" "$w"
        grep -o '(FUSE_[A-Z0-9_]*)' "$TR/trace" | tr -d '()' | sed 's/^FUSE_//' | sort | uniq -c | sort -rn |
            awk -v n="$NFILES" '{t += $1; a = a sprintf(" %s %d", $2, $1)} END {printf "%7d (%.1f/file):%s\n", t, t / n, a}'
        if grep -q 'LOST EVENTS' "$TR/trace"; then echo "    (the trace buffer overflowed: counts are low)"; fi
    done
done
echo "$OLD_BUF" >"$TR/buffer_size_kb"
