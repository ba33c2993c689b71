//! kmsd's memory and restart time as the number of keys grows.
//!
//! For each key count N (default 1,000, 10,000 and 100,000; override with
//! `KMSD_KEYS_COUNTS=1000,50000`): start the real kmsd on a fresh state
//! dir, create N keys from 16 client threads while sampling
//! `/proc/<pid>/status` (VmRSS, VmLck) every 20 ms, stop it with SIGTERM,
//! start it again and time until the socket answers, read its memory
//! then, call DescribeKey and GenerateDataKey on every key and read it
//! once more.
//!
//! Columns: `create/s` keys created per second; `peak RSS` the most
//! resident memory while creating (VmHWM, which also counts start-up);
//! `VmLck` the most locked memory seen while creating; `restart` from
//! spawning kmsd to its first answered hello, and `CPU ms` the CPU time it
//! used by then (less sensitive to a busy machine); `RSS restart` resident right
//! after the restart and `HWM restart` the most resident during it;
//! `RSS used` after every key was described and used once; `store` the
//! size of `state.redb`.
//!
//! `KMSD_BENCH_DIR` chooses where state lives (default `/dev/shm` when it
//! exists: CreateKey fsyncs the audit trail and the store, so a disk's
//! flush latency would dominate); `KMSD_BENCH_ARGS` passes kmsd flags;
//! `KMSD_BENCH_KEEP=1` keeps each state dir (for profiling a restart).
//!
//! Run: `cargo bench --bench kmsd_keys`.
//! Target: at 100,000 keys (AWS's default per-region quota) peak RSS and
//! RSS after restart <= 256 MiB, restart <= 2 s.

#[path = "../tests/common/mod.rs"]
mod common;

use kmsd_client::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;
const MIB: f64 = 1024.0 * 1024.0;

/// The memory figures of `/proc/<pid>/status`, in bytes.
#[derive(Clone, Copy, Default)]
struct Mem {
    rss: u64,
    hwm: u64,
    lck: u64,
}

impl Mem {
    fn read(pid: u32) -> Option<Mem> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> u64 {
            s.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024)
        };
        Some(Mem {
            rss: field("VmRSS:"),
            hwm: field("VmHWM:"),
            lck: field("VmLck:"),
        })
    }

    /// CPU time (user + system, all threads) `pid` has used so far.
    fn cpu(pid: u32) -> Option<Duration> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are
        // the 14th and 15th fields of the whole line.
        let rest = &s[s.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf takes a constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Some(Duration::from_millis(ticks * 1000 / hz))
    }

    fn max(self, o: Mem) -> Mem {
        Mem {
            rss: self.rss.max(o.rss),
            hwm: self.hwm.max(o.hwm),
            lck: self.lck.max(o.lck),
        }
    }
}

/// A kmsd child, killed and reaped on drop.
struct Kmsd {
    child: Option<Child>,
    state: PathBuf,
    socket: PathBuf,
    args: Vec<String>,
}

impl Kmsd {
    /// Spawns kmsd and returns how long until its socket answered a hello.
    fn spawn(&mut self) -> Duration {
        let start = Instant::now();
        let child = Command::new(common::bin("kmsd"))
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--socket")
            .arg(&self.socket)
            .args(&self.args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn kmsd");
        self.child = Some(child);
        let deadline = start + Duration::from_secs(120);
        while Instant::now() < deadline {
            if Client::connect(&self.socket).is_ok() {
                return start.elapsed();
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("kmsd exited during start-up: {st}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("kmsd did not come up on {}", self.socket.display());
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    fn terminate(&mut self) {
        let mut c = self.child.take().expect("running");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let st = c.wait().expect("wait for kmsd");
        assert!(st.success(), "kmsd exited with {st} on SIGTERM");
    }
}

impl Drop for Kmsd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Samples `pid`'s memory every 20 ms until stopped; returns the maxima.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Mem>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = Mem::default();
            while !s.load(Ordering::Relaxed) {
                if let Some(m) = Mem::read(pid) {
                    peak = peak.max(m);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        Sampler { stop, thread }
    }

    fn finish(self, pid: u32) -> Mem {
        self.stop.store(true, Ordering::Relaxed);
        let peak = self.thread.join().expect("sampler");
        Mem::read(pid).map_or(peak, |m| peak.max(m))
    }
}

/// Runs `f(client, i)` for i in 0..n from [`CLIENTS`] threads.
fn fan_out<T: Send + 'static>(
    socket: &Path,
    n: usize,
    f: impl Fn(&Client, usize) -> T + Send + Sync + 'static,
) -> Vec<(usize, T)> {
    let next = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let f = Arc::new(f);
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (c, next, out, f) = (
                Client::connect(socket).expect("connect"),
                next.clone(),
                out.clone(),
                f.clone(),
            );
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    mine.push((i, f(&c, i)));
                }
                out.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let mut v = std::mem::take(&mut *out.lock().unwrap());
    v.sort_by_key(|(i, _)| *i);
    v
}

struct Row {
    keys: usize,
    create_per_sec: f64,
    creating: Mem,
    restart: Duration,
    restart_cpu: Duration,
    after_restart: Mem,
    used: Mem,
    store_bytes: u64,
}

fn run(dir: &Path, keys: usize, args: &[String]) -> Row {
    let tmp = tempfile::tempdir_in(dir).expect("tempdir");
    let mut k = Kmsd {
        child: None,
        state: tmp.path().join("state"),
        socket: tmp.path().join("kmsd.sock"),
        args: args.to_vec(),
    };
    k.spawn();
    let sampler = Sampler::start(k.pid());
    let t = Instant::now();
    let ids: Vec<String> = fan_out(&k.socket, keys, |c, i| {
        c.call(CreateKeyRequest {
            description: Some(format!("bench key {i}")),
            ..Default::default()
        })
        .expect("create key")
        .key_metadata
        .key_id
    })
    .into_iter()
    .map(|(_, id)| id)
    .collect();
    let create_secs = t.elapsed().as_secs_f64();
    let creating = sampler.finish(k.pid());
    k.terminate();

    let restart = k.spawn();
    let restart_cpu = Mem::cpu(k.pid()).unwrap_or_default();
    let after_restart = Mem::read(k.pid()).expect("kmsd status");
    let ids = Arc::new(ids);
    let ctx: EncryptionContext = [("bench".to_string(), "keys".to_string())].into();
    let shared = ids.clone();
    fan_out(&k.socket, keys, move |c, i| {
        c.call(DescribeKeyRequest {
            key_id: shared[i].clone(),
        })
        .expect("describe key");
        c.call(GenerateDataKeyRequest {
            key_id: shared[i].clone(),
            encryption_context: ctx.clone(),
            key_spec: Some(DataKeySpec::Aes256),
            number_of_bytes: None,
            grant_tokens: vec![],
        })
        .expect("generate data key");
    });
    let used = Mem::read(k.pid()).expect("kmsd status");
    let store_bytes = std::fs::metadata(k.state.join("state.redb")).map_or(0, |m| m.len());
    k.terminate();
    if std::env::var_os("KMSD_BENCH_KEEP").is_some() {
        println!("kept {} ({keys} keys)", tmp.keep().display());
    }
    Row {
        keys,
        create_per_sec: keys as f64 / create_secs,
        creating,
        restart,
        restart_cpu,
        after_restart,
        used,
        store_bytes,
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would too: only
    // run when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let counts: Vec<usize> = std::env::var("KMSD_KEYS_COUNTS")
        .map(|s| {
            s.split(',')
                .map(|n| n.trim().replace('_', "").parse().expect("KMSD_KEYS_COUNTS"))
                .collect()
        })
        .unwrap_or_else(|_| vec![1_000, 10_000, 100_000]);
    let args: Vec<String> = std::env::var("KMSD_BENCH_ARGS")
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let dir = std::env::var_os("KMSD_BENCH_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir);
    println!(
        "kmsd key-count benchmark ({CLIENTS} clients, state in {}){}",
        dir.display(),
        if args.is_empty() {
            String::new()
        } else {
            format!(", kmsd args: {}", args.join(" "))
        }
    );
    println!(
        "{:>8} {:>9} {:>13} {:>10} {:>10} {:>8} {:>12} {:>12} {:>10} {:>10}",
        "keys",
        "create/s",
        "peak RSS MiB",
        "VmLck MiB",
        "restart ms",
        "CPU ms",
        "RSS restart",
        "HWM restart",
        "RSS used",
        "store MiB"
    );
    for n in counts {
        let r = run(&dir, n, &args);
        println!(
            "{:>8} {:>9.0} {:>13.1} {:>10.1} {:>10.0} {:>8.0} {:>12.1} {:>12.1} {:>10.1} {:>10.1}",
            r.keys,
            r.create_per_sec,
            r.creating.hwm.max(r.creating.rss) as f64 / MIB,
            r.creating.lck as f64 / MIB,
            r.restart.as_secs_f64() * 1e3,
            r.restart_cpu.as_secs_f64() * 1e3,
            r.after_restart.rss as f64 / MIB,
            r.after_restart.hwm as f64 / MIB,
            r.used.rss as f64 / MIB,
            r.store_bytes as f64 / MIB,
        );
    }
}
