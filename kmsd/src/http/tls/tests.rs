//! Loading and reloading the certificate files. The fixtures in testdata/
//! were made once with the openssl CLI for these tests only: `a` a P-256
//! key (PKCS#8, and the same key as SEC1) with a self-signed certificate
//! for 127.0.0.1 and localhost, `b` an RSA-2048 key (PKCS#1) with its own.

use super::*;
use std::os::unix::fs::PermissionsExt;

const A_CRT: &[u8] = include_bytes!("testdata/a.crt");
const A_KEY: &[u8] = include_bytes!("testdata/a.key");
const A_SEC1_KEY: &[u8] = include_bytes!("testdata/a-sec1.key");
const B_CRT: &[u8] = include_bytes!("testdata/b.crt");
const B_KEY: &[u8] = include_bytes!("testdata/b.key");

/// Writes the pair into `dir` (the key 0600) and names the files.
fn files(dir: &Path, cert: &[u8], key: &[u8]) -> TlsFiles {
    let f = TlsFiles {
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    };
    write(&f.cert, cert);
    write(&f.key, key);
    f
}

/// Replaces `path`'s contents, keeping it 0600.
fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn der_of(pem: &[u8]) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem).unwrap().to_vec()
}

fn served(k: &CertifiedKey) -> Vec<u8> {
    k.cert[0].to_vec()
}

#[test]
fn each_key_format_loads_with_its_certificate() {
    let t = tempfile::tempdir().unwrap();
    for (label, cert, key) in [
        ("PKCS#8 P-256", A_CRT, A_KEY),
        ("SEC1 P-256", A_CRT, A_SEC1_KEY),
        ("PKCS#1 RSA", B_CRT, B_KEY),
    ] {
        let k = load(&files(t.path(), cert, key)).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(served(&k), der_of(cert), "{label}");
    }
}

#[test]
fn unusable_files_are_refused_with_a_clear_message() {
    let t = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &[u8], &str); 5] = [
        (
            "a key of another certificate",
            A_CRT,
            B_KEY,
            "does not belong to the certificate",
        ),
        (
            "a garbage key",
            A_CRT,
            b"not a key\n",
            "holds no PEM private key",
        ),
        (
            "a certificate in the key file",
            A_CRT,
            A_CRT,
            "holds no PEM private key",
        ),
        (
            "no certificate",
            b"nothing here\n",
            A_KEY,
            "holds no CERTIFICATE block",
        ),
        (
            "a broken certificate block",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            A_KEY,
            "is not valid PEM",
        ),
    ];
    for (label, cert, key, want) in cases {
        let e = load(&files(t.path(), cert, key)).unwrap_err().to_string();
        assert!(e.contains(want), "{label}: {e}");
    }
    let f = files(t.path(), A_CRT, A_KEY);
    std::fs::remove_file(&f.cert).unwrap();
    let e = load(&f).unwrap_err().to_string();
    assert!(e.contains("cannot open the certificate"), "{e}");
}

#[test]
fn the_key_file_must_be_private_and_not_a_symlink() {
    let t = tempfile::tempdir().unwrap();
    let f = files(t.path(), A_CRT, A_KEY);
    std::fs::set_permissions(&f.key, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = load(&f).unwrap_err().to_string();
    assert!(e.contains("writable by group or others"), "{e}");
    std::fs::set_permissions(&f.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = TlsFiles {
        cert: f.cert.clone(),
        key: t.path().join("link.key"),
    };
    std::os::unix::fs::symlink(&f.key, &link.key).unwrap();
    let e = load(&link).unwrap_err().to_string();
    assert!(e.contains("is a symlink (not followed)"), "{e}");
    // The certificate is public: a symlink to it is fine.
    let cert_link = TlsFiles {
        cert: t.path().join("link.crt"),
        key: f.key.clone(),
    };
    std::os::unix::fs::symlink(&f.cert, &cert_link.cert).unwrap();
    assert!(load(&cert_link).is_ok());
}

#[test]
fn a_file_larger_than_the_cap_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let mut big = A_CRT.to_vec();
    big.resize(MAX_PEM_BYTES as usize + 1, b'\n');
    let e = load(&files(t.path(), &big, A_KEY)).unwrap_err().to_string();
    assert!(e.contains("is larger than"), "{e}");
}

#[test]
fn a_reload_swaps_the_certificate_and_a_failed_one_keeps_it() {
    let t = tempfile::tempdir().unwrap();
    let f = files(t.path(), A_CRT, A_KEY);
    let store = CertStore::open(f.clone()).unwrap();
    assert_eq!(served(&store.current()), der_of(A_CRT));
    let before = store.current();

    write(&f.cert, B_CRT);
    write(&f.key, B_KEY);
    assert!(store.reload());
    assert_eq!(served(&store.current()), der_of(B_CRT));
    // What a connection already took is unchanged.
    assert_eq!(served(&before), der_of(A_CRT));

    write(&f.key, b"garbage");
    assert!(!store.reload());
    assert_eq!(served(&store.current()), der_of(B_CRT));
    write(&f.cert, A_CRT);
    write(&f.key, B_KEY);
    assert!(!store.reload(), "a mismatched pair is not taken");
    assert_eq!(served(&store.current()), der_of(B_CRT));
    std::fs::remove_file(&f.key).unwrap();
    assert!(!store.reload());
    assert_eq!(served(&store.current()), der_of(B_CRT));
}

#[test]
fn the_server_config_offers_http1_only() {
    let t = tempfile::tempdir().unwrap();
    let store = CertStore::open(files(t.path(), A_CRT, A_KEY)).unwrap();
    let cfg = store.server_config().unwrap();
    assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
}
