//! Crash safety: a separate kmsd process is killed with SIGKILL at random
//! moments while clients mutate its state; after each restart every
//! acknowledged mutation must be there, and the state must be whole
//! (no alias pointing at a missing key).

mod common;

use common::KmsdProcess;
use kmsd_client::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

#[derive(Default)]
struct Acked {
    /// description → key id
    keys: BTreeMap<String, String>,
    /// key id → tag keys
    tags: BTreeMap<String, BTreeSet<String>>,
    /// alias → key id
    aliases: BTreeMap<String, String>,
    count: usize,
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn writer(socket: std::path::PathBuf, t: usize, round: usize, acked: Arc<Mutex<Acked>>) {
    let Ok(c) = Client::connect(&socket) else {
        return;
    };
    for n in 0.. {
        let desc = format!("r{round}-t{t}-n{n}");
        let Ok(k) = c.call(CreateKeyRequest {
            description: Some(desc.clone()),
            ..Default::default()
        }) else {
            return;
        };
        let id = k.key_metadata.key_id;
        {
            let mut a = acked.lock().unwrap();
            a.keys.insert(desc.clone(), id.clone());
            a.count += 1;
        }
        let tag = Tag {
            tag_key: format!("n{n}"),
            tag_value: desc.clone(),
        };
        if c.call(TagResourceRequest {
            key_id: id.clone(),
            tags: vec![tag],
        })
        .is_err()
        {
            return;
        }
        {
            let mut a = acked.lock().unwrap();
            a.tags
                .entry(id.clone())
                .or_default()
                .insert(format!("n{n}"));
            a.count += 1;
        }
        let alias = format!("alias/{desc}");
        if c.call(CreateAliasRequest {
            alias_name: alias.clone(),
            target_key_id: id.clone(),
        })
        .is_err()
        {
            return;
        }
        let mut a = acked.lock().unwrap();
        a.aliases.insert(alias, id);
        a.count += 1;
    }
}

fn verify(k: &KmsdProcess, acked: &Acked) {
    let c = k.client();
    let mut all_keys = BTreeSet::new();
    let mut marker = None;
    loop {
        let page = c
            .call(ListKeysRequest {
                limit: Some(1000),
                marker: marker.clone(),
            })
            .unwrap();
        all_keys.extend(page.keys.into_iter().map(|e| e.key_id));
        if !page.truncated {
            break;
        }
        marker = page.next_marker;
    }
    for (desc, id) in &acked.keys {
        assert!(all_keys.contains(id), "acknowledged key {desc} ({id}) lost");
        let m = c
            .call(DescribeKeyRequest { key_id: id.clone() })
            .unwrap()
            .key_metadata;
        assert_eq!(&m.description, desc);
    }
    for (id, tags) in &acked.tags {
        let have: BTreeSet<String> = c
            .call(ListResourceTagsRequest {
                key_id: id.clone(),
                limit: None,
                marker: None,
            })
            .unwrap()
            .tags
            .into_iter()
            .map(|t| t.tag_key)
            .collect();
        assert!(
            tags.is_subset(&have),
            "acknowledged tags of {id} lost: {tags:?} vs {have:?}"
        );
    }
    let mut aliases = BTreeMap::new();
    let mut marker = None;
    loop {
        let page = c
            .call(ListAliasesRequest {
                key_id: None,
                limit: Some(1000),
                marker: marker.clone(),
            })
            .unwrap();
        for a in page.aliases {
            aliases.insert(a.alias_name, a.target_key_id.unwrap_or_default());
        }
        if !page.truncated {
            break;
        }
        marker = page.next_marker;
    }
    for (alias, id) in &acked.aliases {
        assert_eq!(
            aliases.get(alias),
            Some(id),
            "acknowledged alias {alias} lost"
        );
    }
    for (alias, id) in &aliases {
        assert!(
            all_keys.contains(id),
            "alias {alias} points at a missing key: half-applied state"
        );
    }
}

/// Rounds of: 6 writers over `kmsd`'s sockets, SIGKILL of every process
/// at a random moment, restart, verify every acknowledged mutation on
/// every process. Returns (rounds, acknowledged mutations).
fn crash_rounds(kmsd: &mut [KmsdProcess]) -> (usize, usize) {
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let start = Instant::now();
    let mut rounds = 0;
    while (acked.lock().unwrap().count < 2000 || rounds < 8)
        && start.elapsed() < Duration::from_secs(120)
    {
        let threads: Vec<_> = (0..6)
            .map(|t| {
                let (s, a) = (kmsd[t % kmsd.len()].socket.clone(), acked.clone());
                std::thread::spawn(move || writer(s, t, rounds, a))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50 + xorshift(&mut seed) % 400));
        for k in kmsd.iter_mut() {
            k.kill9();
        }
        for t in threads {
            t.join().unwrap();
        }
        for k in kmsd.iter_mut() {
            k.spawn();
        }
        for k in kmsd.iter() {
            verify(k, &acked.lock().unwrap());
        }
        rounds += 1;
    }
    let count = acked.lock().unwrap().count;
    (rounds, count)
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_mutation() {
    // A process crash loses nothing the kernel already has, so the state
    // may live on tmpfs: the test is about what kmsd acknowledged before
    // its write reached the kernel, and about half-applied state, not
    // about power loss (redb's and the audit log's fsyncs cover that).
    let tmp = match tempfile::tempdir_in("/dev/shm") {
        Ok(t) => t,
        Err(_) => tempfile::tempdir().unwrap(),
    };
    let mut k = [KmsdProcess::start_at(
        &tmp.path().join("state"),
        &tmp.path().join("kmsd.sock"),
        &[],
    )];
    let (rounds, count) = crash_rounds(&mut k);
    eprintln!("crash test: {rounds} kills, {count} acknowledged mutations verified");
    assert!(rounds >= 8);
    assert!(count >= 200, "too few mutations to mean anything: {count}");
}

/// The same on etcd: two instances sharing a 3-member cluster, both
/// killed at once at random moments; after each restart every
/// acknowledged mutation is on both and no alias points at a missing key.
#[test]
fn kill_9_of_every_instance_on_etcd_loses_no_acknowledged_mutation() {
    let etcd = common::etcd::EtcdCluster::start(3);
    let tmp = match tempfile::tempdir_in("/dev/shm") {
        Ok(t) => t,
        Err(_) => tempfile::tempdir().unwrap(),
    };
    let root = tmp.path().join("root.key");
    std::fs::write(&root, [9u8; 32]).unwrap();
    std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let url = etcd.url();
    let args = ["--store", &url, "--root-key-file", root.to_str().unwrap()];
    let mut k: Vec<KmsdProcess> = (0..2)
        .map(|i| {
            KmsdProcess::start_at(
                &tmp.path().join(format!("s{i}")),
                &tmp.path().join(format!("k{i}.sock")),
                &args,
            )
        })
        .collect();
    let (rounds, count) = crash_rounds(&mut k);
    eprintln!(
        "crash test on etcd: {rounds} rounds of kills, {count} acknowledged mutations verified on both instances"
    );
    assert!(rounds >= 8);
    assert!(count >= 200, "too few mutations to mean anything: {count}");
}
