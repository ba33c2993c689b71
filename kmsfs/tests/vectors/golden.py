#!/usr/bin/env python3
# Golden vectors for kmsfs/src/format/vectors.rs, computed from docs/FORMAT.md
# with Python `cryptography`, independently of the Rust code. Run it and
# compare its output with the constants there.
import hashlib, hmac, struct
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY = bytes(range(32)); FILE_ID = bytes(range(0xa0, 0xb0)); VOL = bytes(range(0xb0, 0xc0))
def hkdf(key, label): return HKDF(hashes.SHA256(), 32, None, label).derive(key)
ck = hkdf(KEY, b"kmsfs v1 content key AES-256-GCM")
def aad(i, final): return struct.pack(">Q", i) + FILE_ID + bytes([final])
def nonces(n):  # the deterministic fill: batch byte j = j
    return [bytes(range(12*i, 12*i+12)) for i in range(n)]
def enc(first, plain, ends_file):
    blocks = [plain[i:i+4096] for i in range(0, len(plain), 4096)]
    out = b""
    for k, (b, n) in enumerate(zip(blocks, nonces(len(blocks)))):
        fin = 1 if ends_file and k == len(blocks)-1 else 0
        out += n + AESGCM(ck).encrypt(n, b, aad(first+k, fin))
    return out
v1 = enc(0, b"hello, kmsfs\n", True)
print("V1", v1.hex())
p2 = bytes(i % 251 for i in range(5000))
v2 = enc(7, p2, True)
print("V2 sha", hashlib.sha256(v2).hexdigest(), "tag0", v2[4124-16:4124].hex(), "tag1", v2[-16:].hex())
wrapped = b"wrapped-key-blob-for-vectors"
h = b"KMFS" + struct.pack(">HH", 1, len(wrapped)) + FILE_ID + wrapped
h += bytes(480 - len(h))
mk = hkdf(KEY, b"kmsfs v1 header mac HMAC-SHA256")
h += hmac.new(mk, h + VOL, hashlib.sha256).digest()
print("HDR sha", hashlib.sha256(h).hexdigest(), "mac", h[480:].hex())
arn = b"arn:aws:kms:us-east-1:111122223333:key/vectors"; blob = bytes(range(40))
mi = b"kmsfs.conf v1\0" + struct.pack(">I", 1) + VOL + struct.pack(">I", 4096) + struct.pack(">I", len(arn)) + arn + struct.pack(">I", len(blob)) + blob
print("CONF mac", hmac.new(hkdf(KEY, b"kmsfs v1 config mac HMAC-SHA256"), mi, hashlib.sha256).hexdigest())
