//! Golden vectors of format version 2: fixed inputs and the exact bytes
//! they must produce. The expected values come from
//! `kmsfs/tests/vectors/golden.py` (Python `cryptography`: AESSIV, HKDF,
//! AESGCM, HMAC), written from docs/FORMAT.md "Version 2" alone; the file
//! key, file id, volume id and wrapped blob are version 1's vectors'. If one of
//! these fails, the on-disk format changed.

use super::block::FileCipher;
use super::config::VolumeConfig;
use super::dirid::encode_dirid;
use super::header::{HEADER_VERSION_2, Header};
use super::ids::{from_hex, to_hex};
use super::kdf::DataKey;
use super::names::{BackingName, NameCipher};
use super::offsets::cipher_size_v2;
use super::symlink::SymlinkCipher;
use super::xattr::{Node, XattrCipherV2, xattr_aad};
use super::{DirId, FileId, LinkId, VolumeId};
use sha2::{Digest, Sha256};

/// The name data key: bytes 0x40..0x60.
fn name_key() -> DataKey {
    let b: Vec<u8> = (0x40..0x60).collect();
    DataKey::from_slice(&b).unwrap()
}

/// The file data key of the version 1 vectors: bytes 0..32.
fn file_key() -> DataKey {
    let b: Vec<u8> = (0..32).collect();
    DataKey::from_slice(&b).unwrap()
}

const DIR_A: DirId = DirId([
    0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
]);
const DIR_B: DirId = DirId([
    0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
]);

/// `n` bytes of "é \nx" repeated: UTF-8, a space and a newline (176 ends
/// inside an "é": names need not be UTF-8).
fn mk(n: usize) -> Vec<u8> {
    "\u{e9} \nx".repeat(60).as_bytes()[..n].to_vec()
}

/// (plaintext, directory, backing entry, sidecar content for long names)
fn cases() -> Vec<(Vec<u8>, DirId, &'static str, Option<&'static str>)> {
    let utf8 = "R\u{e9}sum\u{e9} final\n.pdf".as_bytes().to_vec();
    vec![
        (b"x".to_vec(), DIR_A, "TsCfL-_V_UG1WzNAVtMW4V8", None),
        (b"x".to_vec(), DIR_B, "Kvpne1ny8vR3FDngNoY9Suc", None),
        (
            utf8.clone(),
            DIR_A,
            "dVJoxQyFIFU8Pc_biLdbh7oRAi_5pvFdvxrurLeR3wukDws",
            None,
        ),
        (
            utf8.clone(),
            DIR_B,
            "FwXOpIy56tE-S3z0PVWpJqJznINzxXZTOcgmCEreb9QR04k",
            None,
        ),
        (
            mk(175),
            DIR_A,
            "LHvKh1fzCXFNyBfphc1OTzUEY-xdgWK0mo_N5tuW4LoTd_i5tP07oTRVWrl-CWM9e4D9fkMZbAix5IZuHtwcBIpbkDnXGwxFUcj9k-WVW9c8JEF94c8YxcFVviAItHq_N6WoFssZRQhw7WLyZec_aEiVWuJuaJsN2Rzb7I7FInHcbCv6vezLumAJ9F3sLYjGuc6w2QA3pe3A2z_rkYjigf2KVd2tvCUc21Q-0q1twxCE9z0WErlgUNRAXKZZYNM",
            None,
        ),
        (
            mk(175),
            DIR_B,
            "F_wPUCRLj_4AtWhi7yh6m1R4wteXjlu_7MzrVFWkKuP3XtWE1uuQT3mR2REZeCvHYspvNEnROO7fN0WaxTR_XcmbVxBLE9ZFURRy5pSWga_v_o7o2H3RTW15HTPtk9tglhZxjcvQL8RSAFp7xDSdJx2RIYi9nqXkm7fK6_z8CNfw53i9fKMSzFyEFRXWbmVqZx2jH5RjC1zGIzCkJ3_gjQLkiwzlph1mxdsBDC3ELDdPJFgdOR0uLCeet9XxVz8",
            None,
        ),
        (
            mk(176),
            DIR_A,
            "kmsfs.long.f1Zo_C4X37dNVGHGZnkgQ4rr63jlcN_wtLf-0VouY78",
            Some(
                "d2CB1XRsksUSRn7SMW6-zr25LPhw-q7Ud_9JT-Waz8tssj6KHXUG6KvoyJdtxIZ6ERclIrpVrxndTE4zyCywDHqz1loURq5-6N3qsOWdcQJ3CbIVzY5fDiWqUq5b1P4l-Mpzakn5OCg6N6wcxfDXl2J1PKw-YbngkBYvJ3UI2eLT8wCy-gK2Q8nsgHqftMTzluVi30qTlgikS-kTJttW28Ja0dHHsZwqq83JsPDDR_DBjf-0kcoeDPAyix6Lo176",
            ),
        ),
        (
            mk(176),
            DIR_B,
            "kmsfs.long.tjlpcjZNR2PNNJYzecGP9-P8fr8kszSLv4TDuInqUKM",
            Some(
                "SAwyEbBa0XsIGblrU53mVC__NB6oR_Mo8mcLlAMfezlIRb0LKYNy55yLuTYrBYSDLUT5_t6xCkP7nPXla6AJrBJEHtsfarL4KSDc4KzjqUZ2apsy2PEq0twa7r3ibZEtcjblQRuw_IBtHVQMi2wP2eM0F8vEIhxiSNu4mNoZZIioeycyg__2256ggu8bYio5IKgdzFfTm6Ixuo6E9rS_oFaSwXSqCw-4oP-SIpn0fc2y3sb98qGcyTbXnqacht4H",
            ),
        ),
        (
            mk(255),
            DIR_A,
            "kmsfs.long.zvxkFc1en6vz7aVfrILLWSvyXQiUsStBhqWyw6cOSLs",
            Some(
                "ngoeBg2P-ZwB94mYgVQCVhr3v2aaGIG-KYZ0Ctbc-FTaCGCZJbCwEVoHvpN1W4qtbi_p_CQ-penVPRqbZNzr0tsxzV9RQqD4j-gfRZlOZP8eXjVhUOikjpQXUSnZtrHhgHkIHgAMf5_KOAlEuArNTxFYF9tJ97rsi2p8FxwBnwfiCxW2Zik5Sl6ha5sYkkSqQRd0sL62KEAHS6pLk0ah9fBmRs2gFyDD-nfbJ0x5sPvVdvpOsnKJRDsSH9EZw4toaQmMjgdNW85oTlgwTzjAIHG8d0oke8mromDq_lw-D4T3za8jK4ssZ4Brj4SiwCZ9p4LB8Oal4aR8RFGJrv0n8Hz5gS706lqM4JVbXnNbYQ",
            ),
        ),
        (
            mk(255),
            DIR_B,
            "kmsfs.long.YAsz4ptY3p8yQJxIKXuVVcFgDY3UHAsrO2gCoidrELs",
            Some(
                "F_IMKsAbCeOHWwEhpJs0RNYQOJmtNwNXUw0q-Lk_LTU0h4_d1JX1DvcMig_-oxPKAaPIDUYqx2jvIYrEDzQO3aX2gc3Oo0kCgeFXYYnY9iviiSFuBpCBBYFN0_L6tVSRXrPMfTvYk0qxfKkGyTN_kYfFpJ8ud_xhF3MS62Lrcuf1bFgIDwMhUsgRWn37rxWjavEExpwSljFPS_0tvMEeMkcKMDlv5E_TwvdvDaBffxjnGFACxbVJVmMS2bGhcYEqALtScTIRO5t1lcMAHrhEn5rBYUldEVQxYz4PenOSdsUDpfkqhZTe14kA3tpVb6qbJl5oyBWsxNsZPmIPnL9bODmAajvFCWjTLnflhRQCWQ",
            ),
        ),
    ]
}

#[test]
fn names_short_and_long_in_two_directories() {
    let c = NameCipher::new(&name_key());
    let cases = cases();
    assert_eq!(cases.len(), 10);
    for (plain, dir, entry, sidecar) in &cases {
        let b = c.encrypt_name(dir, plain).unwrap();
        assert_eq!(b.entry(), *entry, "{} bytes", plain.len());
        match (&b, sidecar) {
            (BackingName::Short(_), None) => assert!(plain.len() <= 175),
            (BackingName::Long { encoded, .. }, Some(s)) => {
                assert!(plain.len() >= 176);
                assert_eq!(encoded, s);
                assert_eq!(b.sidecar().unwrap().0, format!("{entry}.name"));
            }
            _ => panic!("wrong form for {} bytes", plain.len()),
        }
        let back = c
            .decrypt_name(dir, entry.as_bytes(), sidecar.map(str::as_bytes))
            .unwrap();
        assert_eq!(&back, plain);
    }
    // The threshold: 175 bytes is the longest short name (255 characters).
    assert_eq!(cases[4].2.len(), 255);
    assert!(cases[6].2.starts_with("kmsfs.long."));
}

#[test]
fn symlink_target() {
    let c = SymlinkCipher::new(&name_key());
    let id = LinkId(core::array::from_fn(|i| 0xe0 + i as u8));
    let target = "../shared dir/na\u{ef}ve\ntarget".as_bytes();
    let stored = "4OHi4-Tl5ufo6err7O3u7zW3y1iSxYu01RCimuO4_4fjuoAGsMDThAGfiOEDKMnxkLNxtRSoxb0BbC4";
    assert_eq!(c.encrypt_target(&id, target).unwrap(), stored);
    assert_eq!(
        c.decrypt_target(stored.as_bytes()).unwrap(),
        (id, target.to_vec())
    );
}

#[test]
fn xattr_aad_and_values() {
    let file = Node::file(FileId(core::array::from_fn(|i| 0xa0 + i as u8)));
    assert_eq!(
        to_hex(&xattr_aad(&file, b"user.comment")),
        "6b6d7366732078617474722076320066a0a1a2a3a4a5a6a7a8a9aaabacadaeaf757365722e636f6d6d656e74"
    );
    let nonce: [u8; 12] = core::array::from_fn(|i| i as u8);
    let fc = XattrCipherV2::for_file(&file_key());
    let sealed = fc
        .seal_with_nonce(&file, b"user.comment", b"hello xattr", &nonce)
        .unwrap();
    assert_eq!(
        to_hex(&sealed),
        "02000102030405060708090a0b7f1635038cc5d2df01bf53094d4aef29fcf3edf485c46d7a17ca90"
    );
    assert_eq!(
        fc.open(&file, b"user.comment", &sealed).unwrap(),
        b"hello xattr"
    );
    let dir = Node::dir(DIR_A);
    let nc = XattrCipherV2::for_nodes(&name_key());
    let sealed = nc
        .seal_with_nonce(&dir, b"trusted.overlay.opaque", b"y", &nonce)
        .unwrap();
    assert_eq!(
        to_hex(&sealed),
        "02000102030405060708090a0b956edcdfdfc6ac413292bb81f4c4b87db7"
    );
}

#[test]
fn dirid_file() {
    assert_eq!(
        to_hex(&encode_dirid(&DIR_A)),
        "4b4d444900020000c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
    );
}

#[test]
fn config_v2_mac() {
    for (plaintext_names, mac) in [
        (
            false,
            "b0d6e3a0b6a3a699a62355b4d70927678c7033db8265feba2e008726fc9248f0",
        ),
        (
            true,
            "69e858ec3b01bb144e7a8c712807e6d6c5000ae145bb000c37e81cdfc0edb038",
        ),
    ] {
        let mut c = VolumeConfig::new_v2(
            VolumeId(core::array::from_fn(|i| 0xb0 + i as u8)),
            "arn:aws:kms:us-east-1:111122223333:key/vectors".into(),
            (0..40).collect(),
            (100..140).collect(),
            plaintext_names,
        );
        c.seal(&file_key()).unwrap();
        assert_eq!(Some(c.mac.to_vec()), from_hex(mac));
        c.verify(&file_key()).unwrap();
    }
}

#[test]
fn header_v2_and_empty_file() {
    let file_id = FileId(core::array::from_fn(|i| 0xa0 + i as u8));
    let volume_id = VolumeId(core::array::from_fn(|i| 0xb0 + i as u8));
    let h = Header {
        file_id,
        wrapped_key: b"wrapped-key-blob-for-vectors".to_vec(),
    };
    let b = h
        .encode_version(HEADER_VERSION_2, &file_key(), &volume_id)
        .unwrap();
    assert_eq!(
        to_hex(&Sha256::digest(&b)),
        "63ff4d9d812ab0daaac80cfcb8ac8db2b7069bf967f35e80fab55f3680da24c0"
    );
    assert_eq!(
        to_hex(&b[480..]),
        "0c07bfcea66d5d461abd436e7829f02b8c439d23a68c9638a2166875052dff76"
    );
    let c = FileCipher::new(&file_key(), file_id);
    let nonce: [u8; 12] = core::array::from_fn(|i| i as u8);
    let empty = c.seal_empty_final_with_nonce(&nonce).unwrap();
    assert_eq!(
        to_hex(&empty),
        "000102030405060708090a0b007e20ddf767e6d593e11a480feee938"
    );
    c.open_empty_final(&empty).unwrap();
    assert_eq!(b.len() + empty.len(), cipher_size_v2(0) as usize);
}
