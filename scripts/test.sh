#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests
# (real kmsd processes, real FUSE mounts), and the outside suites on a
# kmsfs mount. Run as root on a machine with /dev/fuse (see .ci/run for the
# packages it needs).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --release -- -D warnings

step "build binaries"
cargo build --release --workspace --bins

step "cargo test"
cargo test --release --workspace

# The kmsfs POSIX and crypto families once more, with kmsfs reaching kmsd
# through its AWS endpoint (`kmsfs --kms aws`, the AWS SDK, an access key;
# tests/common/aws_mode.rs).
step "kmsfs through the AWS API (KMSFS_TEST_KMS=aws)"
KMSFS_TEST_KMS=aws cargo test --release --workspace --test kmsfs_posix --test kmsfs_crypto

for s in scripts/fsx.sh scripts/pjdfstest.sh; do
  if [ -x "$s" ] || [ -f "$s" ]; then
    step "$s"
    bash "$s"
  fi
done

if command -v cargo-fuzz >/dev/null 2>&1 && rustup toolchain list | grep -q nightly; then
  step "fuzz smoke (${FUZZ_SMOKE_SECONDS:-20} s per target)"
  bash scripts/fuzz.sh "${FUZZ_SMOKE_SECONDS:-20}"
fi

step "all tests passed"
