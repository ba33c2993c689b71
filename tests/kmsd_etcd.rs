//! kmsd on etcd: two real kmsd processes sharing one key set in a real
//! 3-member etcd cluster on loopback. A key made on one instance is used
//! on the other; a change on one reaches the other within the staleness
//! bound (1 s); concurrent mutations of one record never both win; the
//! state copies from redb into etcd and back, compared record for record.

mod common;

use common::KmsdProcess;
use common::etcd::EtcdCluster;
use kmsd_client::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// The staleness bound kmsd promises for a change made on another
/// instance (docs/STORE.md).
const BOUND: Duration = Duration::from_secs(1);

/// A cluster and instances sharing a root key and a prefix.
struct Fleet {
    etcd: EtcdCluster,
    dir: tempfile::TempDir,
    prefix: String,
    kmsd: Vec<KmsdProcess>,
}

impl Fleet {
    fn start(instances: usize, extra: &[&str]) -> Fleet {
        let etcd = EtcdCluster::start(3);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("root.key"), rand32()).expect("root key");
        let mut f = Fleet {
            etcd,
            dir,
            prefix: "/kmsd-test".into(),
            kmsd: Vec::new(),
        };
        for i in 0..instances {
            let k = f.instance(i, extra);
            f.kmsd.push(k);
        }
        f
    }

    fn root_key(&self) -> PathBuf {
        self.dir.path().join("root.key")
    }

    fn state_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("s{i}"))
    }

    fn socket(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("k{i}.sock"))
    }

    fn instance(&self, i: usize, extra: &[&str]) -> KmsdProcess {
        self.instance_on(i, &self.etcd.url(), extra)
    }

    /// An instance that reaches etcd only through `url`.
    fn instance_on(&self, i: usize, url: &str, extra: &[&str]) -> KmsdProcess {
        let url = url.to_string();
        let root = self.root_key();
        let mut args = vec![
            "--store",
            &url,
            "--etcd-prefix",
            &self.prefix,
            "--root-key-file",
            root.to_str().expect("utf-8 path"),
            "--etcd-lease-ttl-secs",
            "2",
        ];
        args.extend_from_slice(extra);
        KmsdProcess::start_logged(
            &self.state_dir(i),
            &self.socket(i),
            &args,
            Some(&self.dir.path().join(format!("k{i}.log"))),
        )
    }

    fn client(&self, i: usize) -> Client {
        self.kmsd[i].client()
    }
}

fn rand32() -> Vec<u8> {
    let mut b = vec![0u8; 32];
    getrandom(&mut b);
    b
}

fn getrandom(b: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(b))
        .expect("urandom");
}

fn create_key(c: &Client, desc: &str) -> String {
    c.call(CreateKeyRequest {
        description: Some(desc.into()),
        ..Default::default()
    })
    .expect("create key")
    .key_metadata
    .key_id
}

fn encrypt(c: &Client, key: &str) -> Result<Blob, ClientError> {
    c.call(EncryptRequest {
        key_id: key.into(),
        plaintext: SecretBytes::from_slice(b"fleet"),
        encryption_context: Default::default(),
        grant_tokens: vec![],
    })
    .map(|r| r.ciphertext_blob)
}

fn decrypt(c: &Client, blob: &Blob) -> Result<Vec<u8>, ClientError> {
    c.call(DecryptRequest {
        ciphertext_blob: blob.clone(),
        encryption_context: Default::default(),
        key_id: None,
        grant_tokens: vec![],
    })
    .map(|r| r.plaintext.expose().to_vec())
}

/// Polls `f` until it returns `Some`, for at most `limit`; the value and
/// how long it took.
fn within<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<(T, Duration)> {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some((v, t.elapsed()));
        }
        if t.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn key_count(c: &Client) -> usize {
    c.call(ListKeysRequest {
        limit: Some(1000),
        ..Default::default()
    })
    .expect("list keys")
    .keys
    .len()
}

fn grants(c: &Client, key: &str) -> Option<Vec<String>> {
    c.call(ListGrantsRequest {
        key_id: key.into(),
        grant_id: None,
        grantee_principal: None,
        limit: Some(100),
        marker: None,
    })
    .ok()
    .map(|l| l.grants.into_iter().map(|g| g.grant_id).collect())
}

fn kind(r: &Result<impl Sized, ClientError>) -> Option<ErrorKind> {
    r.as_ref().err().and_then(|e| e.kind())
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn a_key_made_on_one_instance_serves_on_the_other_and_changes_reach_it_within_the_bound() {
    let f = Fleet::start(2, &[]);
    let (a, b) = (f.client(0), f.client(1));
    let key = create_key(&a, "made on a");
    let blob = encrypt(&a, &key).expect("encrypt on a");
    let (plain, took) =
        within(BOUND, || decrypt(&b, &blob).ok()).expect("b decrypts a's ciphertext within 1 s");
    assert_eq!(plain, b"fleet");
    eprintln!("first decrypt on b after {took:?}");

    // DisableKey on B refuses Encrypt on A within the bound; EnableKey on A
    // lets B encrypt again.
    let mut disable = Vec::new();
    let mut enable = Vec::new();
    for _ in 0..20 {
        b.call(DisableKeyRequest {
            key_id: key.clone(),
        })
        .expect("disable on b");
        let (_, t) = within(BOUND * 2, || {
            (kind(&encrypt(&a, &key)) == Some(ErrorKind::DisabledException)).then_some(())
        })
        .expect("a refuses a key disabled on b");
        disable.push(t);
        a.call(EnableKeyRequest {
            key_id: key.clone(),
        })
        .expect("enable on a");
        let (_, t) =
            within(BOUND * 2, || encrypt(&b, &key).ok()).expect("b encrypts once a enabled");
        enable.push(t);
    }
    let (dmax, emax) = (
        *disable.iter().max().expect("rounds"),
        *enable.iter().max().expect("rounds"),
    );
    eprintln!(
        "DisableKey on b → refused on a: p50 {:?} max {dmax:?}; EnableKey on a → served on b: p50 {:?} max {emax:?}",
        percentile(&mut disable, 0.5),
        percentile(&mut enable, 0.5)
    );
    assert!(
        dmax <= BOUND,
        "a disable took {dmax:?} to reach the other instance"
    );
    assert!(
        emax <= BOUND,
        "an enable took {emax:?} to reach the other instance"
    );

    // Scheduled deletion and a revoked grant reach the other instance too.
    let grant = a
        .call(CreateGrantRequest {
            key_id: key.clone(),
            grantee_principal: "uid:4242".into(),
            retiring_principal: None,
            operations: vec!["Encrypt".into()],
            constraints: None,
            name: None,
            grant_tokens: vec![],
        })
        .expect("grant on a");
    within(BOUND, || {
        grants(&b, &key).filter(|g| g.contains(&grant.grant_id))
    })
    .expect("b lists a's grant within 1 s");
    b.call(RevokeGrantRequest {
        key_id: key.clone(),
        grant_id: grant.grant_id.clone(),
    })
    .expect("revoke on b");
    within(BOUND, || grants(&a, &key).filter(|g| g.is_empty()))
        .expect("a forgets the grant revoked on b within 1 s");
    b.call(ScheduleKeyDeletionRequest {
        key_id: key.clone(),
        pending_window_in_days: Some(7),
    })
    .expect("schedule deletion on b");
    within(BOUND, || {
        (kind(&encrypt(&a, &key)) == Some(ErrorKind::KMSInvalidStateException)).then_some(())
    })
    .expect("a refuses a key pending deletion on b within 1 s");
}

#[test]
fn concurrent_create_alias_of_one_name_has_exactly_one_winner() {
    let f = Fleet::start(2, &[]);
    let (a, b) = (f.client(0), f.client(1));
    let (ka, kb) = (create_key(&a, "ka"), create_key(&b, "kb"));
    // Both keys known on both sides first.
    for (c, k) in [(&a, &kb), (&b, &ka)] {
        within(BOUND, || {
            c.call(DescribeKeyRequest { key_id: k.clone() }).ok()
        })
        .expect("key known on both instances");
    }
    let rounds = 100;
    let mut wins = [0usize; 2];
    for r in 0..rounds {
        let name = format!("alias/race-{r}");
        let barrier = Arc::new(Barrier::new(2));
        let results: Vec<Result<(), ClientError>> =
            [(f.socket(0), ka.clone()), (f.socket(1), kb.clone())]
                .into_iter()
                .map(|(sock, key)| {
                    let (barrier, name) = (barrier.clone(), name.clone());
                    std::thread::spawn(move || {
                        let c = Client::connect(&sock).expect("connect");
                        barrier.wait();
                        c.call(CreateAliasRequest {
                            alias_name: name,
                            target_key_id: key,
                        })
                        .map(|_| ())
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().expect("racer"))
                .collect();
        let ok: Vec<usize> = (0..2).filter(|i| results[*i].is_ok()).collect();
        assert_eq!(ok.len(), 1, "round {r}: {results:?}");
        let loser = 1 - ok[0];
        assert_eq!(
            kind(&results[loser]),
            Some(ErrorKind::AlreadyExistsException),
            "round {r}: {:?}",
            results[loser]
        );
        wins[ok[0]] += 1;
        let winner_key = if ok[0] == 0 { &ka } else { &kb };
        for c in [&a, &b] {
            within(BOUND, || {
                c.call(DescribeKeyRequest {
                    key_id: name.clone(),
                })
                .ok()
                .filter(|d| d.key_metadata.key_id == *winner_key)
            })
            .unwrap_or_else(|| panic!("round {r}: the alias resolves to the winner's key"));
        }
    }
    eprintln!("CreateAlias races: a won {}, b won {}", wins[0], wins[1]);
}

#[test]
fn concurrent_on_demand_rotations_never_pass_the_limit() {
    let f = Fleet::start(2, &[]);
    let key = create_key(&f.client(0), "rotated");
    within(BOUND, || {
        f.client(1)
            .call(DescribeKeyRequest {
                key_id: key.clone(),
            })
            .ok()
    })
    .expect("key known on b");
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (sock, key, barrier) = (f.socket(t % 2), key.clone(), barrier.clone());
            std::thread::spawn(move || {
                let c = Client::connect(&sock).expect("connect");
                barrier.wait();
                (0..10)
                    .map(|_| {
                        c.call(RotateKeyOnDemandRequest {
                            key_id: key.clone(),
                        })
                        .map(|_| ())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<Result<(), ClientError>> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("rotator"))
        .collect();
    let ok = all.iter().filter(|r| r.is_ok()).count();
    let limited = all
        .iter()
        .filter(|r| kind(r) == Some(ErrorKind::LimitExceededException))
        .count();
    assert_eq!((ok, limited), (25, 15), "{all:?}");
    for i in 0..2 {
        let (n, _) = within(BOUND, || {
            let n = f
                .client(i)
                .call(ListKeyRotationsRequest {
                    key_id: key.clone(),
                    limit: Some(1000),
                    marker: None,
                })
                .ok()?
                .rotations
                .len();
            (n == 25).then_some(n)
        })
        .unwrap_or_else(|| panic!("instance {i} lists 25 rotations"));
        assert_eq!(n, 25);
    }
}

fn migrate(from: &str, to: &str, extra: &[&str]) -> std::process::Output {
    Command::new(common::bin("kmsd"))
        .args(["migrate-store", "--from", from, "--to", to])
        .args(extra)
        .output()
        .expect("run kmsd migrate-store")
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn migrate_store_copies_redb_into_etcd_and_back_record_for_record() {
    let etcd = EtcdCluster::start(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    let sock = dir.path().join("k.sock");
    let (keys, blob, alias_target) = {
        let k = KmsdProcess::start_at(&src, &sock, &[]);
        let c = k.client();
        let keys: Vec<String> = (0..40).map(|i| create_key(&c, &format!("k{i}"))).collect();
        for (i, key) in keys.iter().enumerate().take(10) {
            c.call(CreateAliasRequest {
                alias_name: format!("alias/m{i}"),
                target_key_id: key.clone(),
            })
            .expect("alias");
            c.call(CreateGrantRequest {
                key_id: key.clone(),
                grantee_principal: "uid:1000".into(),
                retiring_principal: None,
                operations: vec!["Decrypt".into()],
                constraints: None,
                name: None,
                grant_tokens: vec![],
            })
            .expect("grant");
        }
        let blob = encrypt(&c, &keys[3]).expect("encrypt");
        let first = keys[0].clone();
        (keys, blob, first)
    };
    let t = Instant::now();
    let url = etcd.url();
    let prefix = ["--etcd-prefix", "/m"];
    let out = migrate(s(&src), &url, &prefix);
    assert!(out.status.success(), "{}", text(&out));
    eprintln!("migrated into etcd after {:?}: {}", t.elapsed(), text(&out));
    assert!(text(&out).contains("read back and equal"), "{}", text(&out));
    // A second copy into the now full prefix is refused.
    let again = migrate(s(&src), &url, &prefix);
    assert!(!again.status.success());
    assert!(text(&again).contains("not empty"), "{}", text(&again));

    // An instance on etcd with the source's state dir (its audit trail and
    // root key) serves the copied state.
    {
        let k = KmsdProcess::start_at(&src, &sock, &["--store", &url, "--etcd-prefix", "/m"]);
        let c = k.client();
        assert_eq!(
            decrypt(&c, &blob).expect("decrypt after migration"),
            b"fleet"
        );
        let d = c
            .call(DescribeKeyRequest {
                key_id: "alias/m0".into(),
            })
            .expect("alias after migration");
        assert_eq!(d.key_metadata.key_id, alias_target);
        let listed = key_count(&c);
        assert_eq!(listed, keys.len());
        create_key(&c, "made on etcd");
        // SIGTERM: the instance gives its sweeper lease back, so the
        // migration below does not wait for it to expire.
        drop(c);
        let mut k = k;
        assert!(k.terminate().success());
    }

    // And back, into a fresh dir with the same root key.
    let back = dir.path().join("back");
    std::fs::create_dir(&back).expect("mkdir");
    std::fs::copy(src.join("root.key"), back.join("root.key")).expect("root key");
    let out = migrate(&url, s(&back), &prefix);
    assert!(out.status.success(), "{}", text(&out));
    let k = KmsdProcess::start_at(&back, &dir.path().join("b.sock"), &[]);
    let c = k.client();
    assert_eq!(
        decrypt(&c, &blob).expect("decrypt in the copy back"),
        b"fleet"
    );
    let listed = key_count(&c);
    assert_eq!(listed, keys.len() + 1, "the key made on etcd came back too");
    // A dir that has a state already is refused.
    drop(k);
    let out = migrate(&url, s(&back), &prefix);
    assert!(!out.status.success());
    assert!(text(&out).contains("exists"), "{}", text(&out));
}

#[test]
fn an_instance_with_another_root_key_is_refused() {
    let f = Fleet::start(1, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(common::bin("kmsd"))
        .arg("--state-dir")
        .arg(dir.path().join("s"))
        .arg("--socket")
        .arg(dir.path().join("x.sock"))
        .args(["--store", &f.etcd.url(), "--etcd-prefix", &f.prefix])
        .output()
        .expect("run kmsd");
    assert!(!out.status.success());
    assert!(text(&out).contains("another root key"), "{}", text(&out));
}

#[test]
fn quorum_lost_mutations_fail_cleanly_known_state_keeps_answering_and_all_resumes() {
    let mut f = Fleet::start(2, &["--etcd-timeout-ms", "1500"]);
    let (a, b) = (f.client(0), f.client(1));
    let key = create_key(&a, "known");
    let blob = encrypt(&a, &key).expect("encrypt");
    within(BOUND, || decrypt(&b, &blob).ok()).expect("known on b");
    f.etcd.kill(1);
    f.etcd.kill(2);
    let t = Instant::now();
    let r = a.call(CreateKeyRequest::default());
    let took = t.elapsed();
    assert!(
        matches!(
            kind(&r),
            Some(ErrorKind::DependencyTimeoutException | ErrorKind::KMSInternalException)
        ),
        "{r:?}"
    );
    assert!(took < Duration::from_millis(1500 * 2 + 1000), "{took:?}");
    // Reads and cryptographic calls of known keys keep answering.
    let until = Instant::now() + Duration::from_secs(5);
    let mut served = 0;
    while Instant::now() < until {
        for c in [&a, &b] {
            assert_eq!(decrypt(c, &blob).expect("decrypt without quorum"), b"fleet");
            encrypt(c, &key).expect("encrypt without quorum");
            c.call(DescribeKeyRequest {
                key_id: key.clone(),
            })
            .expect("describe without quorum");
            served += 3;
        }
    }
    eprintln!("{served} reads served without quorum; a mutation failed after {took:?}");
    f.etcd.restart(1);
    f.etcd.restart(2);
    let (k2, t) = within(Duration::from_secs(15), || {
        a.call(CreateKeyRequest::default()).ok()
    })
    .expect("mutations resume once a quorum is back");
    eprintln!("mutations resumed {t:?} after the members restarted");
    let id = k2.key_metadata.key_id;
    within(BOUND * 3, || encrypt(&b, &id).ok()).expect("b sees a's new key");
}

/// One metric's value from kmsd's `/metrics`.
fn metric(addr: &str, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_watch_that_lost_its_history_to_compaction_reloads_the_whole_state() {
    let mut f = Fleet::start(1, &[]);
    let port = common::net::free_port();
    let maddr = format!("127.0.0.1:{port}");
    // B reaches etcd through member 1 only.
    let only = format!("etcd://{}", f.etcd.endpoint(1));
    let b = f.instance_on(1, &only, &["--metrics-listen", &maddr]);
    f.kmsd.push(b);
    let (a, b) = (f.client(0), f.client(1));
    let first = create_key(&a, "before");
    within(BOUND, || {
        b.call(DescribeKeyRequest {
            key_id: first.clone(),
        })
        .ok()
    })
    .expect("b follows a");
    assert_eq!(metric(&maddr, "kmsd_etcd_reloads_total"), Some(0.0));

    f.etcd.kill(1);
    let made: Vec<String> = (0..20)
        .map(|i| create_key(&a, &format!("while away {i}")))
        .collect();
    a.call(DisableKeyRequest {
        key_id: first.clone(),
    })
    .expect("disable");
    f.etcd.compact_all();
    f.etcd.restart(1);
    f.etcd.wait_healthy(Duration::from_secs(20));

    let (_, took) = within(Duration::from_secs(15), || {
        let all_there = made
            .iter()
            .all(|k| b.call(DescribeKeyRequest { key_id: k.clone() }).is_ok());
        let disabled = b
            .call(DescribeKeyRequest {
                key_id: first.clone(),
            })
            .is_ok_and(|d| d.key_metadata.key_state == KeyState::Disabled);
        (all_there && disabled).then_some(())
    })
    .expect("b caught up with every change made while its member was down");
    eprintln!("b caught up {took:?} after its member returned");
    assert!(
        metric(&maddr, "kmsd_etcd_reloads_total").is_some_and(|v| v >= 1.0),
        "b reloaded its state (kmsd_etcd_reloads_total)"
    );
}

#[test]
fn kmsd_reaches_etcd_over_tls_with_its_client_certificate_and_not_without() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = common::pki::Pki::new(&dir.path().join("pki"));
    let etcd = EtcdCluster::start_tls(3, &pki);
    let root = dir.path().join("root.key");
    std::fs::write(&root, rand32()).expect("root key");
    let url = etcd.url();
    let tls = etcd.kmsd_tls_arg();
    let k = KmsdProcess::start_at(
        &dir.path().join("s"),
        &dir.path().join("k.sock"),
        &[
            "--store",
            &url,
            "--etcd-tls",
            &tls,
            "--root-key-file",
            s(&root),
        ],
    );
    let c = k.client();
    let key = create_key(&c, "over tls");
    let blob = encrypt(&c, &key).expect("encrypt");
    assert_eq!(decrypt(&c, &blob).expect("decrypt"), b"fleet");
    let listed = etcd.etcdctl(&["get", "--prefix", "/kmsd/r/", "--keys-only"]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&format!("/k/{key}")),
        "the key is stored in the TLS cluster"
    );
    // Plain HTTP to a TLS member, or TLS without the client certificate:
    // refused at start with a message, not served.
    let ca_only = format!("ca={}", pki.ca().display());
    for extra in [vec![], vec!["--etcd-tls", ca_only.as_str()]] {
        let out = Command::new(common::bin("kmsd"))
            .arg("--state-dir")
            .arg(dir.path().join("s2"))
            .arg("--socket")
            .arg(dir.path().join("x.sock"))
            .args([
                "--store",
                &url,
                "--root-key-file",
                s(&root),
                "--etcd-timeout-ms",
                "1500",
            ])
            .args(&extra)
            .output()
            .expect("run kmsd");
        assert!(!out.status.success(), "kmsd started with {extra:?}");
        assert!(text(&out).contains("etcd"), "{extra:?}: {}", text(&out));
    }
}

#[test]
fn a_copied_state_dir_is_refused_while_its_instance_lives_and_a_killed_one_restarts_at_once() {
    let mut f = Fleet::start(1, &[]);
    let copy = f.dir.path().join("copy");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(f.state_dir(0))
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(cp.success());
    let out = Command::new(common::bin("kmsd"))
        .arg("--state-dir")
        .arg(&copy)
        .arg("--socket")
        .arg(f.dir.path().join("copy.sock"))
        .args(["--store", &f.etcd.url(), "--etcd-prefix", &f.prefix])
        .args(["--root-key-file", s(&f.root_key())])
        .output()
        .expect("run kmsd");
    assert!(
        !out.status.success(),
        "a second process of one instance started"
    );
    assert!(text(&out).contains("is live"), "{}", text(&out));
    // SIGKILL leaves the claim behind (its lease has not expired), but a
    // restart on this host takes it over without waiting.
    f.kmsd[0].kill9();
    let t = Instant::now();
    f.kmsd[0].spawn();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    create_key(&f.client(0), "after the restart");
}
