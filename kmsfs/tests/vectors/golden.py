#!/usr/bin/env python3
# Golden vectors for kmsfs/src/format/vectors.rs (version 1) and vectors_v2.rs
# (version 2), computed from docs/FORMAT.md
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

# ---- Format version 2 (docs/FORMAT.md, "Version 2") ----
import base64
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
def hkdf64(key, label): return HKDF(hashes.SHA256(), 64, None, label).derive(key)
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
NAME_KEY = bytes(range(0x40, 0x60)); DIR_A = bytes(range(0xc0, 0xd0)); DIR_B = bytes(range(0xd0, 0xe0))
name_siv = AESSIV(hkdf64(NAME_KEY, b"kmsfs v2 name AES-SIV-CMAC-512"))
def backing(parent, name):
    enc = b64(name_siv.encrypt(name, [b"kmsfs name v2\0" + parent]))
    if len(enc) <= 255: return enc, None
    return "kmsfs.long." + b64(hashlib.sha256(enc.encode()).digest()), enc
def mkname(n): return ("\u00e9 \nx" * 60).encode()[:n]   # UTF-8, a space, a newline
NAMES = [("N1", b"x"), ("NUTF8", "R\u00e9sum\u00e9 final\n.pdf".encode()), ("N175", mkname(175)), ("N176", mkname(176)), ("N255", mkname(255))]
for tag, n in NAMES:
    for dtag, d in (("A", DIR_A), ("B", DIR_B)):
        e, side = backing(d, n)
        print(f"NAME {tag} {dtag} len {len(n)} entry {e}" + (f" sidecar {side}" if side else ""))
LINK_ID = bytes(range(0xe0, 0xf0)); target = "../shared dir/na\u00efve\ntarget".encode()
sym_siv = AESSIV(hkdf64(NAME_KEY, b"kmsfs v2 symlink target AES-SIV-CMAC-512"))
print("SYMLINK", b64(LINK_ID + sym_siv.encrypt(target, [b"kmsfs symlink v2\0" + LINK_ID])))
def xaad(kind, nid, name): return b"kmsfs xattr v2\0" + kind + nid + name
aad_f = xaad(b"f", FILE_ID, b"user.comment")
print("XATTR aad", aad_f.hex())
XN = bytes(range(12))
print("XATTR file", (b"\x02" + XN + AESGCM(hkdf(KEY, b"kmsfs v2 file xattr AES-256-GCM")).encrypt(XN, b"hello xattr", aad_f)).hex())
aad_d = xaad(b"d", DIR_A, b"trusted.overlay.opaque")
print("XATTR dir", (b"\x02" + XN + AESGCM(hkdf(NAME_KEY, b"kmsfs v2 dir and symlink xattr AES-256-GCM")).encrypt(XN, b"y", aad_d)).hex())
print("DIRID", (b"KMDI" + struct.pack(">HH", 2, 0) + DIR_A).hex())
nk_blob = bytes(range(100, 140))
for p in (0, 1):
    # Version 2: the key ARN and the blobs are outside the MAC (rewrap
    # re-encrypts them through kmsd without the plaintext config key).
    mi2 = b"kmsfs.conf v2\0" + struct.pack(">I", 2) + VOL + struct.pack(">I", 4096) + bytes([p])
    print(f"CONF2 plaintext_names={p} mac", hmac.new(hkdf(KEY, b"kmsfs v1 config mac HMAC-SHA256"), mi2, hashlib.sha256).hexdigest())
h2 = b"KMFS" + struct.pack(">HH", 2, len(wrapped)) + FILE_ID + wrapped
h2 += bytes(480 - len(h2))
# Version 2: the MAC covers magic, version, file id and volume id, not the
# wrapped key (which kmsd authenticates; rewrap replaces it).
h2 += hmac.new(mk, h2[:6] + FILE_ID + VOL, hashlib.sha256).digest()
print("HDR2 sha", hashlib.sha256(h2).hexdigest(), "mac", h2[480:].hex())
EN = bytes(range(12))
print("EMPTY", (EN + AESGCM(ck).encrypt(EN, b"", aad(0, 1))).hex())
