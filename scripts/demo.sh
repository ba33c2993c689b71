#!/usr/bin/env bash
# The main job, end to end, on a fresh machine (as root):
#   build; start kmsd on a state dir; create a key and an alias; encrypt and
#   decrypt a file with an encryption context (the AWS KMS lab flow); init a
#   kmsfs volume under that key and mount it; write through the mount and
#   show that the backing directory holds only ciphertext.
# Leaves kmsd running and the volume mounted; prints how to stop both.
# DEMO_DIR chooses the working directory (default /tmp/kms-demo).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v fusermount3 >/dev/null 2>&1 || {
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3
}

cargo build --release --workspace --bins
BIN=$PWD/target/release
DEMO=${DEMO_DIR:-/tmp/kms-demo}
export KMSD_SOCKET=$DEMO/kmsd.sock
mkdir -p "$DEMO"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

# 1. kmsd
if [ -f "$DEMO/kmsd.pid" ] && kill -0 "$(cat "$DEMO/kmsd.pid")" 2>/dev/null; then
  echo "kmsd already running (pid $(cat "$DEMO/kmsd.pid"))"
else
  "$BIN/kmsd" --state-dir "$DEMO/state" --socket "$KMSD_SOCKET" 2>"$DEMO/kmsd.log" &
  echo $! >"$DEMO/kmsd.pid"
  for _ in $(seq 100); do [ -S "$KMSD_SOCKET" ] && break; sleep 0.05; done
  echo "kmsd running, pid $(cat "$DEMO/kmsd.pid"), socket $KMSD_SOCKET, log $DEMO/kmsd.log"
fi

# 2. A key and an alias, as in the AWS KMS hands-on lab.
if ! "$BIN/kmsctl" describe-key --key-id alias/kms-demo >/dev/null 2>&1; then
  KEY_ID=$("$BIN/kmsctl" create-key --description "kms demo key" | json 'd["KeyMetadata"]["KeyId"]')
  "$BIN/kmsctl" create-alias --alias-name alias/kms-demo --target-key-id "$KEY_ID"
fi
"$BIN/kmsctl" describe-key --key-id alias/kms-demo

# 3. Encrypt and decrypt a file with an encryption context.
echo "Hello from the kms demo, $(date)" >"$DEMO/secret.txt"
"$BIN/kmsctl" encrypt --key-id alias/kms-demo --plaintext "fileb://$DEMO/secret.txt" \
  --encryption-context Purpose=Lab,App=kms-demo | json 'd["CiphertextBlob"]' | base64 --decode >"$DEMO/secret.enc"
"$BIN/kmsctl" decrypt --ciphertext-blob "fileb://$DEMO/secret.enc" \
  --encryption-context Purpose=Lab,App=kms-demo | json 'd["Plaintext"]' | base64 --decode >"$DEMO/secret.dec"
cmp "$DEMO/secret.txt" "$DEMO/secret.dec" && echo "decrypted file matches the original"
if "$BIN/kmsctl" decrypt --ciphertext-blob "fileb://$DEMO/secret.enc" \
  --encryption-context Purpose=Prod,App=kms-demo >/dev/null 2>"$DEMO/wrong-context.err"; then
  echo "BUG: decrypt with a wrong context succeeded" >&2; exit 1
fi
echo "wrong context refused: $(tr -d '\n' <"$DEMO/wrong-context.err")"

# 4. A kmsfs volume under that key, mounted.
mkdir -p "$DEMO/cipher" "$DEMO/plain"
[ -f "$DEMO/cipher/kmsfs.conf" ] || "$BIN/kmsfs" init "$DEMO/cipher" --key-id alias/kms-demo
if ! mountpoint -q "$DEMO/plain"; then
  "$BIN/kmsfs" mount "$DEMO/cipher" "$DEMO/plain"
fi
echo "The quick brown fox, stored encrypted" >"$DEMO/plain/hello.txt"
cat "$DEMO/plain/hello.txt"
if grep -rq "quick brown fox" "$DEMO/cipher"; then
  echo "BUG: plaintext found in the backing directory" >&2; exit 1
fi
echo "backing file $DEMO/cipher/hello.txt holds ciphertext only ($(stat -c %s "$DEMO/cipher/hello.txt") bytes)"
"$BIN/kmsfs" status "$DEMO/plain"

cat <<MSG

Done. Mounted: $DEMO/plain (ciphertext in $DEMO/cipher), kmsd pid $(cat "$DEMO/kmsd.pid").
Stop:  $BIN/kmsfs umount $DEMO/plain && kill \$(cat $DEMO/kmsd.pid)
MSG
