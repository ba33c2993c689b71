#!/usr/bin/env bash
# pjdfstest (the Rust rewrite) as root on a fresh kmsfs mount. The mount
# uses -o allow_other: the suite switches to other users. Tests listed in
# tests/pjdfstest.exclude (each with a reason) are run as expected
# failures: they must fail, and a pass is reported (so the list stays
# honest). Prints pass/fail counts; exits 0 only without failures.
#
# Usage: scripts/pjdfstest.sh [PATTERN...]   (run as root; patterns filter tests)
# Env:   PJDFSTEST_BIN (default: pjdfstest in PATH or ~/.cargo/bin/pjdfstest),
#        PJDFSTEST_EXCLUDE (default tests/pjdfstest.exclude),
#        KMSFS_BIN/KMSD_BIN/KMSCTL_BIN (see scripts/kmsfs_env.sh).
set -euo pipefail
# shellcheck source=scripts/kmsfs_env.sh
. "$(dirname "$0")/kmsfs_env.sh"

PJD_BIN=${PJDFSTEST_BIN:-$(command -v pjdfstest || echo "$HOME/.cargo/bin/pjdfstest")}
EXCLUDE=${PJDFSTEST_EXCLUDE:-$KMSFS_ROOT/tests/pjdfstest.exclude}
[ -x "$PJD_BIN" ] || kmsfs_die "pjdfstest not found (cargo install pjdfstest, or set PJDFSTEST_BIN)"
[ -f "$EXCLUDE" ] || kmsfs_die "$EXCLUDE not found"
kmsfs_check_bins

# Every excluded test needs a reason: "name  # why".
expected=()
while IFS= read -r line; do
    case "$line" in '' | '#'*) continue ;; esac
    name=$(printf '%s' "${line%%#*}" | tr -d '[:space:]')
    reason=${line#*#}
    [ "$reason" != "$line" ] && [ -n "$(printf '%s' "$reason" | tr -d '[:space:]')" ] ||
        kmsfs_die "$EXCLUDE: no reason given for '$name'"
    expected+=("$name")
done <"$EXCLUDE"

# The suite's second user; the group of nobody differs between distros.
created_user=""
if ! id tests >/dev/null 2>&1; then
    useradd -M -s /usr/sbin/nologin -U tests
    created_user=tests
fi
nobody_group=$(id -gn nobody)

WORK=${PJDFSTEST_WORK:-$(mktemp -d /tmp/kmsfs-pjdfstest.XXXXXX)}
chmod 755 "$WORK"
cleanup() {
    kmsfs_teardown
    if [ -n "$created_user" ]; then userdel "$created_user" >/dev/null 2>&1 || true; fi
}
kmsfs_start_kmsd "$WORK"
trap cleanup EXIT
kmsfs_new_volume "$WORK/cipher"
kmsfs_mount "$WORK/cipher" "$WORK/mnt" -o allow_other
chmod 755 "$WORK/mnt"
# A second file system for the cross-device (EXDEV) cases.
mkdir -p "$WORK/secondary"

{
    echo '[features]'
    echo 'posix_fallocate = {}'
    echo 'rename_ctime = {}'
    echo 'utime_now = {}'
    echo 'utimensat = {}'
    echo '[settings]'
    echo 'naptime = 0.01'
    echo 'allow_remount = false'
    printf 'expected_failures = ['
    sep=""
    for t in "${expected[@]}"; do
        printf '%s"%s"' "$sep" "$t"
        sep=", "
    done
    echo ']'
    echo '[dummy_auth]'
    echo "entries = [[\"nobody\", \"$nobody_group\"], [\"tests\", \"tests\"]]"
} >"$WORK/pjdfstest.toml"

set +e
NO_COLOR=1 CLICOLOR=0 "$PJD_BIN" -c "$WORK/pjdfstest.toml" -p "$WORK/mnt" -s "$WORK/secondary" "$@" \
    >"$WORK/pjdfstest.log" 2>&1
rc=$?
set -e
sed 's/\x1b\[[0-9;]*m//g' "$WORK/pjdfstest.log" >"$WORK/pjdfstest.clean.log"
grep -E 'FAILED|PASSED UNEXPECTEDLY' -A3 "$WORK/pjdfstest.clean.log" || true
echo "skipped:"
grep -E ' skipped$' -A1 "$WORK/pjdfstest.clean.log" | grep -v '^--$' | paste - - |
    sed -E 's/ +skipped\t\t?/: /; s/^/    /' || true
summary=$(grep -E '^Summary:' "$WORK/pjdfstest.clean.log" | tail -n 1)
[ -n "$summary" ] || {
    tail -n 40 "$WORK/pjdfstest.clean.log"
    KMSFS_KEEP_WORK=1
    kmsfs_die "pjdfstest did not finish (log kept in $WORK)"
}
num() { printf '%s' "$summary" | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' || echo 0; }
echo "pjdfstest: $(num passed) passed, $(num failed) failed, $(num skipped) skipped, $(num 'expected failures') expected failures (excluded), $(num total) total"
if [ "$rc" -ne 0 ]; then
    KMSFS_KEEP_WORK=1
    echo "pjdfstest: FAILED (log kept in $WORK/pjdfstest.clean.log)"
    exit 1
fi
