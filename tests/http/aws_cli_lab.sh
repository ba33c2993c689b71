#!/usr/bin/env bash
# The AWS KMS hands-on lab, end to end, with the real aws CLI and its real
# flags, against kmsd's AWS endpoint. Run by tests/kmsd_http.rs with
# KMSD_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
# AWS_DEFAULT_REGION set. Exits non-zero at the first step that does not
# give what the lab expects.
set -euo pipefail

aws_() { aws --endpoint-url "$KMSD_ENDPOINT" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "step: $*"; }

step "create-key with tags, id from --query"
KEY_ID=$(aws_ kms create-key --description "lab key" \
  --tags TagKey=Purpose,TagValue=Lab TagKey=Owner,TagValue=ci \
  --query KeyMetadata.KeyId --output text)
[[ "$KEY_ID" =~ ^[0-9a-f-]{36}$ ]] || fail "key id: $KEY_ID"

step "create-alias and list-aliases --query"
aws_ kms create-alias --alias-name alias/lab-key --target-key-id "$KEY_ID"
TARGET=$(aws_ kms list-aliases --query "Aliases[?AliasName=='alias/lab-key'].TargetKeyId" --output text)
[ "$TARGET" = "$KEY_ID" ] || fail "alias target: $TARGET"

step "sts get-caller-identity, then put-key-policy built from it"
ARN=$(aws_ sts get-caller-identity --query Arn --output text)
ACCOUNT=$(aws_ sts get-caller-identity --query Account --output text)
[[ "$ARN" == arn:aws:iam::${ACCOUNT}:user/* ]] || fail "caller arn: $ARN"
cat > "$LAB_DIR/policy.json" <<JSON
{"Version": "2012-10-17", "Id": "lab-policy", "Statement": [
  {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
   "Principal": {"AWS": "arn:aws:iam::${ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
  {"Sid": "Allow the lab user", "Effect": "Allow",
   "Principal": {"AWS": "${ARN}"}, "Action": "kms:*", "Resource": "*"}]}
JSON
aws_ kms put-key-policy --key-id "$KEY_ID" --policy-name default --policy "file://$LAB_DIR/policy.json"
STORED=$(aws_ kms get-key-policy --key-id "$KEY_ID" --policy-name default --output text)
[[ "$STORED" == *lab-policy* ]] || fail "policy not stored: $STORED"

step "encrypt --query CiphertextBlob --output text"
printf 'lab secret 42' > "$LAB_DIR/plain.txt"
aws_ kms encrypt --key-id alias/lab-key --plaintext "fileb://$LAB_DIR/plain.txt" \
  --encryption-context project=lab --query CiphertextBlob --output text > "$LAB_DIR/ct.b64"
[ -s "$LAB_DIR/ct.b64" ] || fail "no ciphertext"

step "decrypt --ciphertext-blob fileb://<(base64 --decode ...)"
OUT=$(aws_ kms decrypt --ciphertext-blob fileb://<(base64 --decode "$LAB_DIR/ct.b64") \
  --encryption-context project=lab --query Plaintext --output text | base64 --decode)
[ "$OUT" = "lab secret 42" ] || fail "decrypted: $OUT"

step "a changed context fails"
if aws_ kms decrypt --ciphertext-blob fileb://<(base64 --decode "$LAB_DIR/ct.b64") \
     --encryption-context project=other >"$LAB_DIR/out" 2>"$LAB_DIR/err"; then
  fail "decrypt with another context succeeded"
fi
grep -q InvalidCiphertextException "$LAB_DIR/err" || fail "error: $(cat "$LAB_DIR/err")"

step "generate-data-key"
LEN=$(aws_ kms generate-data-key --key-id alias/lab-key --key-spec AES_256 \
  --query Plaintext --output text | base64 --decode | wc -c)
[ "$LEN" -eq 32 ] || fail "data key length $LEN"

step "schedule-key-deletion --pending-window-in-days 7, describe-key --query"
aws_ kms schedule-key-deletion --key-id "$KEY_ID" --pending-window-in-days 7 >/dev/null
STATE=$(aws_ kms describe-key --key-id "$KEY_ID" \
  --query 'KeyMetadata.{KeyState:KeyState,DeletionDate:DeletionDate}' --output json)
echo "$STATE" | grep -q '"KeyState": "PendingDeletion"' || fail "state: $STATE"
# aws CLI v1 prints timestamps as AWS sent them (epoch seconds), v2 as ISO.
[[ "$STATE" =~ \"DeletionDate\":\ (\"20|1[0-9]{9}) ]] || fail "deletion date: $STATE"
aws_ kms cancel-key-deletion --key-id "$KEY_ID" >/dev/null

echo "lab: all steps passed"
