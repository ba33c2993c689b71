"""boto3 against kmsd's AWS endpoint: every implemented operation, the
errors, pagination and waiters. Run by tests/kmsd_http.rs with
KMSD_ENDPOINT, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (an access key of
the administrator), KMSD_OTHER_KEY_ID/KMSD_OTHER_SECRET (an access key of
a user with no rights) and AWS_DEFAULT_REGION set. Prints one line per
check and exits 1 if any failed."""

import base64
import json
import os
import sys

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["KMSD_ENDPOINT"]
REGION = os.environ.get("AWS_DEFAULT_REGION", "local")
CFG = Config(retries={"max_attempts": 1, "mode": "standard"})
failures = []


def client(key=None, secret=None):
    kw = {}
    if key:
        kw = {"aws_access_key_id": key, "aws_secret_access_key": secret}
    return boto3.client("kms", endpoint_url=ENDPOINT, region_name=REGION, config=CFG, **kw)


def check(label, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + label + (f": {detail}" if detail and not cond else ""))
    if not cond:
        failures.append(label)


def expect_error(label, fn, code, status=400, message_part=None):
    try:
        fn()
    except ClientError as e:
        err = e.response["Error"]
        got_status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        ok = err["Code"] == code and got_status == status
        if message_part:
            ok = ok and message_part in err.get("Message", "")
        check(label, ok, f"got {err['Code']} {got_status} {err.get('Message')!r}")
        return
    check(label, False, "no error")


kms = client()

# Keys, tags, description.
k = kms.create_key(Description="boto3 suite", Tags=[{"TagKey": "team", "TagValue": "storage"}])
meta = k["KeyMetadata"]
key_id, key_arn = meta["KeyId"], meta["Arn"]
check("create_key returns an ARN", key_arn.endswith(":key/" + key_id) and key_arn.startswith("arn:aws:kms:"))
check("KeyMetadata has AWS's members", all(m in meta for m in ("AWSAccountId", "KeyManager", "Origin", "EncryptionAlgorithms", "KeySpec", "KeyUsage", "KeyState", "Enabled", "CreationDate")), sorted(meta))
check("CreationDate parses as a datetime", hasattr(meta["CreationDate"], "year"))
d = kms.describe_key(KeyId=key_id)["KeyMetadata"]
check("describe_key", d["KeyId"] == key_id and d["KeyState"] == "Enabled")
tags = kms.list_resource_tags(KeyId=key_id)["Tags"]
check("tags on create", tags == [{"TagKey": "team", "TagValue": "storage"}], tags)
kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "env", "TagValue": "ci"}])
kms.untag_resource(KeyId=key_id, TagKeys=["team"])
check("tag/untag", kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "env", "TagValue": "ci"}])

# Aliases.
kms.create_alias(AliasName="alias/boto3-suite", TargetKeyId=key_id)
aliases = [a for a in kms.list_aliases(KeyId=key_id)["Aliases"]]
check("list_aliases by key", [a["AliasName"] for a in aliases] == ["alias/boto3-suite"], aliases)
check("alias entries carry dates", all("CreationDate" in a and "LastUpdatedDate" in a for a in aliases))
expect_error("alias without prefix", lambda: kms.create_alias(AliasName="bad", TargetKeyId=key_id), "ValidationException")
expect_error("duplicate alias", lambda: kms.create_alias(AliasName="alias/boto3-suite", TargetKeyId=key_id), "AlreadyExistsException")

# Encrypt / Decrypt / context.
ctx = {"purpose": "boto3"}
ct = kms.encrypt(KeyId="alias/boto3-suite", Plaintext=b"hello kmsd", EncryptionContext=ctx)
check("encrypt KeyId is the ARN", ct["KeyId"] == key_arn, ct["KeyId"])
pt = kms.decrypt(CiphertextBlob=ct["CiphertextBlob"], EncryptionContext=ctx)
check("decrypt round trip", pt["Plaintext"] == b"hello kmsd" and pt["KeyId"] == key_arn)
expect_error("wrong context", lambda: kms.decrypt(CiphertextBlob=ct["CiphertextBlob"], EncryptionContext={"purpose": "other"}), "InvalidCiphertextException")
expect_error("tampered blob", lambda: kms.decrypt(CiphertextBlob=ct["CiphertextBlob"][:-1] + bytes([ct["CiphertextBlob"][-1] ^ 1]), EncryptionContext=ctx), "InvalidCiphertextException")
dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=ctx)
check("generate_data_key", len(dk["Plaintext"]) == 32 and kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == dk["Plaintext"])
dk2 = kms.generate_data_key_without_plaintext(KeyId=key_id, NumberOfBytes=16)
check("generate_data_key_without_plaintext", "Plaintext" not in dk2 and len(kms.decrypt(CiphertextBlob=dk2["CiphertextBlob"])["Plaintext"]) == 16)
check("generate_random", len(kms.generate_random(NumberOfBytes=24)["Plaintext"]) == 24)
k2 = kms.create_key(Description="second")["KeyMetadata"]["KeyId"]
re = kms.re_encrypt(CiphertextBlob=ct["CiphertextBlob"], SourceEncryptionContext=ctx, DestinationKeyId=k2)
check("re_encrypt", kms.decrypt(CiphertextBlob=re["CiphertextBlob"])["Plaintext"] == b"hello kmsd" and re["SourceKeyId"] == key_arn)
expect_error("DryRun encrypt", lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x", DryRun=True), "DryRunOperationException")

# Key state.
kms.disable_key(KeyId=k2)
expect_error("disabled key", lambda: kms.encrypt(KeyId=k2, Plaintext=b"x"), "DisabledException")
kms.enable_key(KeyId=k2)
s = kms.schedule_key_deletion(KeyId=k2, PendingWindowInDays=7)
check("schedule_key_deletion", s["KeyState"] == "PendingDeletion" and s["PendingWindowInDays"] == 7 and hasattr(s["DeletionDate"], "year"))
expect_error("pending deletion", lambda: kms.encrypt(KeyId=k2, Plaintext=b"x"), "KMSInvalidStateException")
kms.cancel_key_deletion(KeyId=k2)
check("cancelled key is Disabled", kms.describe_key(KeyId=k2)["KeyMetadata"]["KeyState"] == "Disabled")

# Rotation.
kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
st = kms.get_key_rotation_status(KeyId=key_id)
check("rotation status", st["KeyRotationEnabled"] is True and st["RotationPeriodInDays"] == 180)
kms.rotate_key_on_demand(KeyId=key_id)
rots = kms.list_key_rotations(KeyId=key_id)["Rotations"]
check("list_key_rotations", len(rots) == 1 and rots[0]["RotationType"] == "ON_DEMAND", rots)
check("old ciphertext still decrypts", kms.decrypt(CiphertextBlob=ct["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == b"hello kmsd")
kms.disable_key_rotation(KeyId=key_id)

# Policies.
pol = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
check("get_key_policy", json.loads(pol)["Statement"])
kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=pol)
check("list_key_policies", kms.list_key_policies(KeyId=key_id)["PolicyNames"] == ["default"])
expect_error("malformed policy", lambda: kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy="{"), "MalformedPolicyDocumentException")

# Grants.
g = kms.create_grant(KeyId=key_id, GranteePrincipal="uid:4242", Operations=["Decrypt", "GenerateDataKey"], Constraints={"EncryptionContextSubset": {"purpose": "boto3"}})
grants = kms.list_grants(KeyId=key_id)["Grants"]
check("list_grants", [x["GrantId"] for x in grants] == [g["GrantId"]] and sorted(grants[0]["Operations"]) == ["Decrypt", "GenerateDataKey"], grants)
kms.revoke_grant(KeyId=key_id, GrantId=g["GrantId"])
check("revoke_grant", kms.list_grants(KeyId=key_id)["Grants"] == [])

# Pagination with boto3's paginators.
for i in range(12):
    kms.create_key(Description=f"page {i}")
pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 5}))
ids = [k["KeyId"] for p in pages for k in p["Keys"]]
check("list_keys paginator", len(pages) >= 3 and len(ids) == len(set(ids)) and key_id in ids, len(pages))
for i in range(7):
    kms.create_alias(AliasName=f"alias/page-{i}", TargetKeyId=key_id)
apages = list(kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 3}))
check("list_aliases paginator", sum(len(p["Aliases"]) for p in apages) >= 8 and len(apages) >= 3)
for i in range(4):
    kms.create_grant(KeyId=key_id, GranteePrincipal="uid:4242", Operations=["Decrypt"])
gpages = list(kms.get_paginator("list_grants").paginate(KeyId=key_id, PaginationConfig={"PageSize": 2}))
check("list_grants paginator", sum(len(p["Grants"]) for p in gpages) == 4 and len(gpages) == 2)

# Alias updates and deletion.
kms.update_alias(AliasName="alias/boto3-suite", TargetKeyId=k2)
check("update_alias", kms.describe_key(KeyId="alias/boto3-suite")["KeyMetadata"]["KeyId"] == k2)
kms.delete_alias(AliasName="alias/boto3-suite")
expect_error("deleted alias", lambda: kms.describe_key(KeyId="alias/boto3-suite"), "NotFoundException")

# Errors.
expect_error("unknown key", lambda: kms.describe_key(KeyId="11111111-2222-3333-4444-555555555555"), "NotFoundException")
expect_error("unsupported operation", lambda: kms.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256"), "UnsupportedOperationException")
expect_error("wrong secret", lambda: client(os.environ["AWS_ACCESS_KEY_ID"], "x" * 40).list_keys(), "InvalidSignatureException")
expect_error("unknown access key", lambda: client("AKIAAAAAAAAAAAAAAAAA", "y" * 40).list_keys(), "UnrecognizedClientException")
other = client(os.environ["KMSD_OTHER_KEY_ID"], os.environ["KMSD_OTHER_SECRET"])
expect_error("another user is denied", lambda: other.describe_key(KeyId=key_id), "AccessDeniedException")
expect_error("another user cannot decrypt", lambda: other.decrypt(CiphertextBlob=ct["CiphertextBlob"], EncryptionContext=ctx), "AccessDeniedException")

print(f"{len(failures)} failures")
sys.exit(1 if failures else 0)
