//! A real etcd cluster on loopback for the tests: `EtcdCluster::start(3)`
//! runs three members (Debian's `etcd`) on free ports, data on /dev/shm
//! when it exists. Members are killed and restarted by the pid we started
//! them with, never by name; drop kills them all.

#![allow(dead_code)]

use super::net::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Certificates of a cluster that serves its clients over TLS and wants
/// theirs (`--client-cert-auth`).
pub struct EtcdTls {
    pub ca: PathBuf,
    pub server: (PathBuf, PathBuf),
    pub client: (PathBuf, PathBuf),
}

pub struct EtcdCluster {
    tls: Option<EtcdTls>,
    dir: tempfile::TempDir,
    /// (name, client port, peer port)
    members: Vec<(String, u16, u16)>,
    children: Vec<Option<Child>>,
    token: String,
}

/// The etcd binary, or a failing test that says how to get it.
fn etcd() -> &'static str {
    assert!(
        Command::new("etcd")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "etcd is not installed (apt-get install etcd-server etcd-client; .ci/run does)"
    );
    "etcd"
}

impl EtcdCluster {
    pub fn start(n: usize) -> EtcdCluster {
        Self::start_with(n, None)
    }

    /// A cluster whose client URLs are HTTPS with client certificates.
    pub fn start_tls(n: usize, pki: &super::pki::Pki) -> EtcdCluster {
        let tls = EtcdTls {
            ca: pki.ca(),
            server: pki.server("etcd"),
            client: pki.client("kmsd"),
        };
        Self::start_with(n, Some(tls))
    }

    /// `--etcd-tls` for kmsd: `ca=...,cert=...,key=...`.
    pub fn kmsd_tls_arg(&self) -> String {
        let t = self.tls.as_ref().expect("a TLS cluster");
        format!(
            "ca={},cert={},key={}",
            t.ca.display(),
            t.client.0.display(),
            t.client.1.display()
        )
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    fn start_with(n: usize, tls: Option<EtcdTls>) -> EtcdCluster {
        etcd();
        let base: PathBuf = if Path::new("/dev/shm").is_dir() {
            "/dev/shm".into()
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("kmsd-etcd-")
            .tempdir_in(base)
            .expect("etcd tempdir");
        let members = (0..n)
            .map(|i| (format!("m{i}"), free_port(), free_port()))
            .collect();
        let token = format!(
            "kmsd-test-{}-{}",
            std::process::id(),
            dir.path()
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        );
        let mut c = EtcdCluster {
            tls,
            dir,
            members,
            children: (0..n).map(|_| None).collect(),
            token,
        };
        for i in 0..n {
            c.spawn(i);
        }
        c.wait_healthy(Duration::from_secs(20));
        c
    }

    fn spawn(&mut self, i: usize) {
        assert!(self.children[i].is_none(), "member {i} already runs");
        let cluster: Vec<String> = self
            .members
            .iter()
            .map(|(n, _, p)| format!("{n}=http://127.0.0.1:{p}"))
            .collect();
        let (name, client, peer) = self.members[i].clone();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))
            .expect("etcd log");
        let scheme = self.scheme();
        let mut cmd = Command::new(etcd());
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.server.0)
                .arg("--key-file")
                .arg(&t.server.1)
                .arg("--trusted-ca-file")
                .arg(&t.ca)
                .arg("--client-cert-auth");
        }
        let child = cmd
            .args(["--name", &name])
            .arg("--data-dir")
            .arg(self.dir.path().join(&name))
            .args([
                "--listen-client-urls",
                &format!("{scheme}://127.0.0.1:{client}"),
                "--advertise-client-urls",
                &format!("{scheme}://127.0.0.1:{client}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-cluster",
                &cluster.join(","),
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                &self.token,
                "--max-txn-ops",
                "10000",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn etcd");
        self.children[i] = Some(child);
    }

    /// `etcd://127.0.0.1:C1,...` of every member.
    pub fn url(&self) -> String {
        let list: Vec<String> = (0..self.members.len()).map(|i| self.endpoint(i)).collect();
        format!("etcd://{}", list.join(","))
    }

    /// `127.0.0.1:PORT` of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.members[i].1)
    }

    /// `etcdctl` against the live members.
    pub fn etcdctl(&self, args: &[&str]) -> std::process::Output {
        let live: Vec<String> = (0..self.members.len())
            .filter(|i| self.children[*i].is_some())
            .map(|i| format!("{}://{}", self.scheme(), self.endpoint(i)))
            .collect();
        let mut cmd = Command::new("etcdctl");
        if let Some(t) = &self.tls {
            cmd.arg(format!("--cacert={}", t.ca.display()))
                .arg(format!("--cert={}", t.client.0.display()))
                .arg(format!("--key={}", t.client.1.display()));
        }
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", live.join(",")))
            .args(args)
            .output()
            .expect("run etcdctl (apt-get install etcd-client)")
    }

    pub fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let out = self.etcdctl(&["endpoint", "health"]);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become healthy: {}{}",
                String::from_utf8_lossy(&out.stderr),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL member `i` (by its pid) and reap it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data dir.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
    }

    /// The current revision, then compacts history up to it.
    pub fn compact_all(&self) -> i64 {
        let out = self.etcdctl(&["endpoint", "status", "-w", "json"]);
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("endpoint status JSON");
        let rev = v[0]["Status"]["header"]["revision"]
            .as_i64()
            .expect("a revision");
        let out = self.etcdctl(&["compact", &rev.to_string()]);
        assert!(
            out.status.success(),
            "compact: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        rev
    }

    /// The members' logs, for a failure message.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for (n, _, _) in &self.members {
            let t = std::fs::read_to_string(self.dir.path().join(format!("{n}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = t.lines().rev().take(5).collect();
            s.push_str(&format!("\n--- {n}: {}", tail.join("\n")));
        }
        s
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}
