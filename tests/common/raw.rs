//! Raw connections to kmsd for tests: as another uid (this thread's
//! effective ids switched around `connect`, so kmsd sees them in
//! SO_PEERCRED), frames written by hand and pipelined, and the audit trail
//! read back as JSON.
#![allow(dead_code)]

use kmsd_client::codec::{self, ClientFrame, ClientHello, PROTOCOL_VERSION, ServerFrame};
use kmsd_client::{KmsError, Request, Response};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Runs `f` with this thread's effective uid and gid set to `uid`/`gid`.
pub fn as_ids<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> T {
    const KEEP: libc::c_long = -1;
    // SAFETY: raw set*id system calls with integer arguments; they change
    // only the calling thread's credentials, restored below.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_setresgid, KEEP, gid as libc::c_long, KEEP),
            0
        );
        assert_eq!(
            libc::syscall(libc::SYS_setresuid, KEEP, uid as libc::c_long, KEEP),
            0
        );
    }
    let r = f();
    // SAFETY: as above; the saved uid is still 0, so this is allowed.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_setresuid, KEEP, 0 as libc::c_long, KEEP),
            0
        );
        assert_eq!(
            libc::syscall(libc::SYS_setresgid, KEEP, 0 as libc::c_long, KEEP),
            0
        );
    }
    r
}

/// One raw connection after a successful hello (no client-side reconnects).
pub fn raw_hello(socket: &Path) -> Result<UnixStream, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    codec::encode(
        &ClientFrame::Hello(ClientHello {
            protocol_version: PROTOCOL_VERSION,
            client: "limits-test".into(),
        }),
        &mut buf,
    )
    .unwrap();
    // A refused connection may be closed (Goodbye sent) before the hello is
    // written: the write then fails with EPIPE, but the goodbye is still
    // there to read.
    let written = s.write_all(&buf);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    match codec::read_frame::<_, ServerFrame>(&mut s) {
        Ok(Some(ServerFrame::Hello(_))) => Ok(s),
        Ok(Some(ServerFrame::Goodbye(e))) => Err(e.to_string()),
        _ if written.is_err() => Err(format!("writing the hello: {written:?}")),
        other => Err(format!(
            "unexpected answer to hello: {:?}",
            other.map(|_| ())
        )),
    }
}

pub fn raw_hello_as(socket: &Path, uid: u32) -> Result<UnixStream, String> {
    as_ids(uid, uid, || raw_hello(socket))
}

pub fn audit_records(state: &Path) -> Vec<serde_json::Value> {
    let dir = kmsd_audit::audit_dir(state);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Sends `requests` in one write (ids 0..n, pipelined on one connection)
/// and returns their answers in request order.
pub fn pipelined(s: &mut UnixStream, requests: Vec<Request>) -> Vec<Result<Response, KmsError>> {
    let n = requests.len();
    let mut buf = Vec::new();
    for (id, request) in requests.into_iter().enumerate() {
        let frame = ClientFrame::Request {
            id: id as u64,
            request,
        };
        codec::encode(&frame, &mut buf).expect("encode a request");
    }
    s.write_all(&buf).expect("write the pipelined requests");
    let mut answers = BTreeMap::new();
    while answers.len() < n {
        match codec::read_frame::<_, ServerFrame>(s) {
            Ok(Some(ServerFrame::Response { id, result })) => {
                answers.insert(id, result);
            }
            Ok(Some(ServerFrame::Goodbye(e))) => panic!("kmsd said goodbye: {e}"),
            other => panic!("unexpected frame: {:?}", other.map(|_| ())),
        }
    }
    answers.into_values().collect()
}
