# shellcheck shell=bash
# Shared by scripts/fsx.sh, scripts/pjdfstest.sh, benches/kmsfs_bench.sh:
# start a private kmsd, make a key and a kmsfs volume, mount it, and tear
# everything down again (unmount with fusermount3 -u, then umount -l; stop
# kmsd by pid) on exit, error or interrupt.
#
# Binaries: $KMSFS_BIN, $KMSD_BIN, $KMSCTL_BIN, else
# ${CARGO_TARGET_DIR:-target}/${KMSFS_PROFILE:-release}/{kmsfs,kmsd,kmsctl}
# (build them first: cargo build --release --workspace --bins).

KMSFS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KMSFS_TARGET=${CARGO_TARGET_DIR:-$KMSFS_ROOT/target}
KMSFS_PROFILE=${KMSFS_PROFILE:-release}
KMSFS_BIN=${KMSFS_BIN:-$KMSFS_TARGET/$KMSFS_PROFILE/kmsfs}
KMSD_BIN=${KMSD_BIN:-$KMSFS_TARGET/$KMSFS_PROFILE/kmsd}
KMSCTL_BIN=${KMSCTL_BIN:-$KMSFS_TARGET/$KMSFS_PROFILE/kmsctl}

KMSFS_WORK=""
KMSFS_KMSD_PID=""
KMSFS_MOUNTS=()

kmsfs_die() {
    echo "$(basename "$0"): $*" >&2
    exit 2
}

kmsfs_check_bins() {
    local b
    for b in "$KMSFS_BIN" "$KMSD_BIN" "$KMSCTL_BIN"; do
        [ -x "$b" ] || kmsfs_die "$b not found: build with 'cargo build --release --workspace --bins' or set KMSFS_BIN/KMSD_BIN/KMSCTL_BIN"
    done
    [ "$(id -u)" = 0 ] || kmsfs_die "must run as root (FUSE mounts, allow_other)"
    [ -e /dev/fuse ] || kmsfs_die "/dev/fuse is missing"
}

# kmsfs_unmount DIR: fusermount3 -u, then umount -l; never fails.
kmsfs_unmount() {
    local mp=$1
    if mountpoint -q "$mp" 2>/dev/null; then
        "$KMSFS_BIN" umount "$mp" >/dev/null 2>&1 ||
            fusermount3 -u "$mp" >/dev/null 2>&1 ||
            umount -l "$mp" >/dev/null 2>&1 || true
    fi
}

kmsfs_teardown() {
    local mp
    for mp in "${KMSFS_MOUNTS[@]}"; do
        kmsfs_unmount "$mp"
    done
    KMSFS_MOUNTS=()
    if [ -n "$KMSFS_KMSD_PID" ]; then
        kill "$KMSFS_KMSD_PID" 2>/dev/null || true
        wait "$KMSFS_KMSD_PID" 2>/dev/null || true
        KMSFS_KMSD_PID=""
    fi
    if [ -n "$KMSFS_WORK" ] && [ -z "${KMSFS_KEEP_WORK:-}" ]; then
        rm -rf "$KMSFS_WORK"
    fi
}

# kmsfs_start_kmsd WORKDIR: a kmsd on WORKDIR/kmsd.sock; sets KMSD_SOCKET.
kmsfs_start_kmsd() {
    KMSFS_WORK=$1
    mkdir -p "$KMSFS_WORK"
    trap kmsfs_teardown EXIT
    trap 'exit 130' INT TERM
    export KMSD_SOCKET="$KMSFS_WORK/kmsd.sock"
    export KMSFS_RUNTIME_DIR="$KMSFS_WORK/run"
    RUST_LOG=${KMSD_LOG:-warn} "$KMSD_BIN" --state-dir "$KMSFS_WORK/kmsd-state" \
        --socket "$KMSD_SOCKET" >"$KMSFS_WORK/kmsd.log" 2>&1 &
    KMSFS_KMSD_PID=$!
    local i
    for i in $(seq 1 200); do
        [ -S "$KMSD_SOCKET" ] && return 0
        kill -0 "$KMSFS_KMSD_PID" 2>/dev/null || kmsfs_die "kmsd exited: $(cat "$KMSFS_WORK/kmsd.log")"
        sleep 0.05
    done
    kmsfs_die "kmsd did not come up"
}

# kmsfs_create_key: prints the ARN of a new kmsd key.
kmsfs_create_key() {
    "$KMSCTL_BIN" --socket "$KMSD_SOCKET" create-key --description "kmsfs script" |
        sed -n 's/.*"Arn": "\([^"]*\)".*/\1/p'
}

# kmsfs_new_volume CIPHERDIR: kmsfs init with a fresh key.
kmsfs_new_volume() {
    local dir=$1 arn
    mkdir -p "$dir"
    arn=$(kmsfs_create_key)
    [ -n "$arn" ] || kmsfs_die "could not create a kmsd key"
    # shellcheck disable=SC2086 # KMSFS_INIT_ARGS: extra words, e.g. "--format 1"
    "$KMSFS_BIN" init "$dir" --key-id "$arn" --socket "$KMSD_SOCKET" ${KMSFS_INIT_ARGS:-} >/dev/null
}

# kmsfs_mount CIPHERDIR MOUNTPOINT [ARGS...]: mounts (background mode).
kmsfs_mount() {
    local c=$1 m=$2
    shift 2
    mkdir -p "$m"
    "$KMSFS_BIN" mount "$c" "$m" --socket "$KMSD_SOCKET" "$@" ||
        kmsfs_die "kmsfs mount $c $m failed"
    KMSFS_MOUNTS+=("$m")
}
