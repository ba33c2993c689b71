//! A blocking, thread-safe kmsd client.
//!
//! One connection carries many requests in flight. Callers on any thread
//! write their request under a short lock, then take turns reading
//! (leader/follower): whoever holds the read side reads one frame and any
//! others already buffered behind it, keeps its own answer, files the rest
//! for their owners and wakes the others once. A lone caller thus reads
//! its own answer with no thread hand-off. When the connection breaks (or
//! kmsd stays silent for the call timeout), waiting calls fail with an I/O
//! error and the next call reconnects, no more often than the backoff
//! allows, so a caller such as kmsfs recovers by itself when kmsd comes
//! back.

use crate::codec::{self, ClientFrame, ClientHello, PROTOCOL_VERSION, ReadError, ServerFrame};
use crate::error::{ClientError, KmsError};
use crate::messages::{Operation, Response};
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

type Reply = Result<Response, ClientError>;

/// Why a call failed: before its request was written (it may be sent
/// again) or after.
enum CallError {
    /// None of the batch reached kmsd: here it is back.
    Unsent(Vec<crate::messages::Request>, ClientError),
    Sent(ClientError),
}
use CallError::{Sent, Unsent};

impl CallError {
    fn into_error(self) -> ClientError {
        match self {
            Unsent(_, e) | Sent(e) => e,
        }
    }
}

/// Connection settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// kmsd's sockets, tried in turn: a connection goes to the first that
    /// answers, starting from the one last used (failover between kmsd
    /// instances of one deployment). Never empty.
    pub sockets: Vec<PathBuf>,
    /// How long one call waits for its response.
    pub call_timeout: Duration,
    /// Wait after a failed connect before trying again; doubles up to
    /// `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Shown in kmsd's logs.
    pub client_name: String,
    /// The uids accepted as kmsd (checked with `SO_PEERCRED` on every
    /// connect); `None`: root, the caller and `$KMSD_UID`
    /// ([`crate::socket::trusted_server_uids`]).
    pub server_uids: Option<Vec<u32>>,
}

impl ClientConfig {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        ClientConfig::with_sockets(vec![socket.into()])
    }

    /// Several endpoints of one deployment, tried in this order (an empty
    /// list fails every call).
    pub fn with_sockets(sockets: Vec<PathBuf>) -> Self {
        ClientConfig {
            sockets,
            call_timeout: Duration::from_secs(30),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            client_name: format!("kmsd-client {}", env!("CARGO_PKG_VERSION")),
            server_uids: None,
        }
    }
}

pub struct Client {
    config: ClientConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    conn: Option<Arc<Conn>>,
    /// Index in `ClientConfig::sockets` of the endpoint tried first.
    current: usize,
    /// No connect attempt before this instant.
    retry_at: Option<Instant>,
    backoff: Duration,
}

struct Conn {
    writer: Mutex<UnixStream>,
    /// The read side; its holder is the current reader.
    reader: Mutex<BufReader<UnixStream>>,
    inbox: Mutex<Inbox>,
    /// Signalled whenever a reply is filed or the read side is released.
    turn: Condvar,
    next_id: AtomicU64,
    broken: AtomicBool,
    /// How long a reply may take (the socket's receive timeout too).
    timeout: Duration,
    /// Index of its socket in `ClientConfig::sockets`.
    endpoint: usize,
}

#[derive(Default)]
struct Inbox {
    /// Ids of calls still waiting.
    waiting: HashSet<u64>,
    replies: HashMap<u64, Reply>,
    /// Why the connection broke, once it has.
    failure: Option<String>,
    /// Calls blocked on `Conn::turn`: with none, filing a reply wakes
    /// nobody (and costs no `futex` call).
    sleepers: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Client {
    /// A client that connects on first use.
    pub fn new(config: ClientConfig) -> Self {
        Client {
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// Connects now, so a missing kmsd is reported at once.
    pub fn connect(socket: impl AsRef<Path>) -> Result<Self, ClientError> {
        let client = Client::new(ClientConfig::new(socket.as_ref()));
        client.connection()?;
        Ok(client)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The socket of the endpoint in use (or tried first next).
    pub fn endpoint(&self) -> PathBuf {
        let current = lock(&self.state).current;
        self.config
            .sockets
            .get(current)
            .cloned()
            .unwrap_or_default()
    }

    /// Sends one request and waits for its response.
    ///
    /// A request that could not even be written on a connection kmsd had
    /// already closed (an idle connection kmsd timed out, or a restart) is
    /// sent once more on a new connection: it never reached kmsd.
    pub fn call<O: Operation>(&self, op: O) -> Result<O::Output, ClientError> {
        let conn = self.connection()?;
        let request = op.into_request();
        let op_name = request.name();
        // A copy for a second try, only where one may be made.
        let mut retry = (self.config.sockets.len() > 1 && crate::failover::repeatable(op_name))
            .then(|| request.clone());
        let mut result = self.checked(&conn, conn.call(request));
        if let Err(Unsent(mut requests, e)) = result {
            let Some(request) = requests.pop() else {
                return Err(e);
            };
            let conn = self.connection()?;
            result = self.checked(&conn, conn.call(request));
        }
        let response = match result {
            Ok(r) => r,
            Err(Unsent(_, e)) => return Err(e),
            Err(Sent(e)) => {
                let Some(request) = retry
                    .take()
                    .filter(|_| crate::failover::connection_lost(&e))
                else {
                    return Err(e);
                };
                // The connection broke with the request in flight: a
                // request that changes nothing is sent once more, on the
                // next endpoint that answers (failover).
                self.move_past(conn.endpoint);
                let conn = self.connection()?;
                self.checked(&conn, conn.call(request))
                    .map_err(CallError::into_error)?
            }
        };
        output::<O>(response)
    }

    /// Sends `ops` in one write, so kmsd answers them as one batch (one
    /// audit group commit, one write back), and waits for every answer.
    /// The outer error: the batch as a whole failed (no connection, or
    /// it broke); it is not sent again once any of it may have reached
    /// kmsd.
    pub fn call_many<O: Operation>(
        &self,
        ops: Vec<O>,
    ) -> Result<Vec<Result<O::Output, ClientError>>, ClientError> {
        let requests: Vec<_> = ops.into_iter().map(Operation::into_request).collect();
        let conn = self.connection()?;
        let mut result = self.checked(&conn, conn.call_many(requests));
        if let Err(Unsent(requests, _)) = result {
            let conn = self.connection()?;
            result = self.checked(&conn, conn.call_many(requests));
        }
        let replies = result.map_err(CallError::into_error)?;
        Ok(replies.into_iter().map(|r| output::<O>(r?)).collect())
    }

    /// `result`, after forgetting `conn` if it broke (the next call
    /// reconnects).
    fn checked<T>(&self, conn: &Arc<Conn>, result: T) -> T {
        if conn.broken.load(Ordering::Acquire) {
            self.forget(conn);
        }
        result
    }

    fn connection(&self) -> Result<Arc<Conn>, ClientError> {
        let mut st = lock(&self.state);
        if let Some(c) = &st.conn {
            if !c.broken.load(Ordering::Acquire) {
                return Ok(c.clone());
            }
            st.conn = None;
        }
        if let Some(at) = st.retry_at
            && Instant::now() < at
        {
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                format!(
                    "kmsd at {} unreachable (retrying with backoff)",
                    crate::failover::describe(&self.config.sockets)
                ),
            )));
        }
        let mut failures = Vec::new();
        for idx in crate::failover::order(st.current, self.config.sockets.len()) {
            match Conn::open(&self.config, idx) {
                Ok(c) => {
                    st.conn = Some(c.clone());
                    st.current = idx;
                    st.retry_at = None;
                    st.backoff = Duration::ZERO;
                    return Ok(c);
                }
                Err(e) => failures.push(e),
            }
        }
        st.backoff = (st.backoff * 2).clamp(self.config.min_backoff, self.config.max_backoff);
        st.retry_at = Some(Instant::now() + st.backoff);
        Err(crate::failover::all_failed(failures))
    }

    /// Makes the endpoint after `endpoint` the first one tried, unless
    /// another caller has moved on already.
    fn move_past(&self, endpoint: usize) {
        let mut st = lock(&self.state);
        if st.current == endpoint && !self.config.sockets.is_empty() {
            st.current = (endpoint + 1) % self.config.sockets.len();
            st.conn = None;
        }
    }

    fn forget(&self, conn: &Arc<Conn>) {
        let mut st = lock(&self.state);
        if st.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            st.conn = None;
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(c) = lock(&self.state).conn.take() {
            c.shut();
        }
    }
}

impl Conn {
    fn open(config: &ClientConfig, endpoint: usize) -> Result<Arc<Conn>, ClientError> {
        let socket = &config.sockets[endpoint];
        let stream = UnixStream::connect(socket).map_err(|e| {
            ClientError::Io(std::io::Error::new(
                e.kind(),
                format!("cannot connect to kmsd at {}: {e}", socket.display()),
            ))
        })?;
        let trusted = match &config.server_uids {
            Some(u) => u.clone(),
            None => crate::socket::trusted_server_uids()?,
        };
        crate::socket::check_server(
            &stream,
            &trusted,
            &crate::logsafe::EscapedPath(socket).to_string(),
        )?;
        stream.set_read_timeout(Some(config.call_timeout))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        let hello = ClientFrame::Hello(ClientHello {
            protocol_version: PROTOCOL_VERSION,
            client: config.client_name.clone(),
        });
        let mut buf = Vec::new();
        codec::encode(&hello, &mut buf).map_err(|e| ClientError::Protocol(e.to_string()))?;
        writer.write_all(&buf)?;
        match codec::read_frame::<_, ServerFrame>(&mut reader) {
            Ok(Some(ServerFrame::Hello(h))) if h.protocol_version == PROTOCOL_VERSION => {}
            Ok(Some(ServerFrame::Hello(h))) => {
                return Err(ClientError::Protocol(format!(
                    "kmsd speaks protocol version {}, this client {PROTOCOL_VERSION}",
                    h.protocol_version
                )));
            }
            Ok(Some(ServerFrame::Goodbye(e))) => return Err(ClientError::Kms(e)),
            Ok(Some(_)) => return Err(ClientError::Protocol("expected a hello from kmsd".into())),
            Ok(None) => {
                return Err(ClientError::Protocol(
                    "kmsd closed the connection during the handshake".into(),
                ));
            }
            Err(e) => return Err(read_error(e)),
        }
        Ok(Arc::new(Conn {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            inbox: Mutex::new(Inbox::default()),
            turn: Condvar::new(),
            next_id: AtomicU64::new(1),
            broken: AtomicBool::new(false),
            timeout: config.call_timeout,
            endpoint,
        }))
    }

    fn call(&self, request: crate::messages::Request) -> Result<Response, CallError> {
        let mut replies = self.call_many(vec![request])?;
        replies
            .pop()
            .unwrap_or_else(|| Err(ClientError::Protocol("no reply".into())))
            .map_err(Sent)
    }

    /// Writes `requests` with one `write` (so kmsd reads them as one
    /// batch), then waits for each answer, in order.
    fn call_many(&self, requests: Vec<crate::messages::Request>) -> Result<Vec<Reply>, CallError> {
        if self.broken.load(Ordering::Acquire) {
            return Err(Sent(ClientError::Io(
                std::io::ErrorKind::NotConnected.into(),
            )));
        }
        let n = requests.len() as u64;
        let first = self.next_id.fetch_add(n, Ordering::Relaxed);
        let ids: Vec<u64> = (first..first + n).collect();
        lock(&self.inbox).waiting.extend(ids.iter().copied());
        let forget = |ids: &[u64]| {
            let mut inbox = lock(&self.inbox);
            for id in ids {
                inbox.waiting.remove(id);
            }
        };
        let mut buf = Zeroizing::new(Vec::with_capacity(256 * requests.len()));
        let frames: Vec<ClientFrame> = ids
            .iter()
            .zip(requests)
            .map(|(&id, request)| ClientFrame::Request { id, request })
            .collect();
        for frame in &frames {
            if let Err(e) = codec::encode(frame, &mut buf) {
                forget(&ids);
                return Err(Sent(ClientError::Protocol(e.to_string())));
            }
        }
        let written = write_counted(&mut lock(&self.writer), &buf);
        if let Err((sent, e)) = written {
            forget(&ids);
            self.fail_all("write to kmsd failed".into());
            // kmsd had closed the connection and not a byte went out:
            // nothing of the batch reached it.
            let closed = matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            );
            if !closed || sent > 0 {
                return Err(Sent(ClientError::Io(e)));
            }
            let requests = frames
                .into_iter()
                .filter_map(|f| match f {
                    ClientFrame::Request { request, .. } => Some(request),
                    _ => None,
                })
                .collect();
            return Err(Unsent(requests, ClientError::Io(e)));
        }
        drop(frames);
        Ok(ids.into_iter().map(|id| self.await_reply(id)).collect())
    }

    fn await_reply(&self, id: u64) -> Reply {
        let mut inbox = lock(&self.inbox);
        loop {
            if let Some(r) = inbox.replies.remove(&id) {
                inbox.waiting.remove(&id);
                return r;
            }
            if let Some(why) = inbox.failure.clone() {
                inbox.waiting.remove(&id);
                return Err(ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    why,
                )));
            }
            // Become the reader if nobody is; otherwise wait for a reply
            // or for the read side to come free.
            let Ok(mut rd) = self.reader.try_lock() else {
                inbox.sleepers += 1;
                inbox = self.turn.wait(inbox).unwrap_or_else(|p| p.into_inner());
                inbox.sleepers -= 1;
                continue;
            };
            drop(inbox);
            // One frame, then every frame already buffered behind it (kmsd
            // answers a batch with one write): filed together, with one
            // wake-up for all their owners instead of one per frame.
            let mut frames = Vec::new();
            let mut frame = wait_readable(&rd, self.timeout)
                .map_err(ReadError::Io)
                .and_then(|()| codec::read_frame::<_, ServerFrame>(&mut *rd));
            loop {
                let more = matches!(frame, Ok(Some(ServerFrame::Response { .. })))
                    && !rd.buffer().is_empty();
                frames.push(frame);
                if !more {
                    break;
                }
                frame = codec::read_frame::<_, ServerFrame>(&mut *rd);
            }
            drop(rd);
            inbox = lock(&self.inbox);
            for frame in frames {
                match frame {
                    Ok(Some(ServerFrame::Response { id: rid, result })) => {
                        if inbox.waiting.contains(&rid) {
                            inbox.replies.insert(rid, result.map_err(ClientError::Kms));
                        }
                    }
                    Ok(Some(ServerFrame::Goodbye(e))) => {
                        inbox.failure = Some(format!("kmsd closed the connection: {e}"));
                    }
                    Ok(Some(ServerFrame::Hello(_))) => {
                        inbox.failure = Some("unexpected hello from kmsd".into());
                    }
                    Ok(None) => inbox.failure = Some("kmsd closed the connection".into()),
                    Err(e) => inbox.failure = Some(read_error(e).to_string()),
                }
            }
            if inbox.failure.is_some() {
                self.broken.store(true, Ordering::Release);
            }
            if inbox.sleepers > 0 {
                self.turn.notify_all();
            }
        }
    }

    /// Marks the connection broken and fails every waiting call.
    fn fail_all(&self, why: String) {
        self.broken.store(true, Ordering::Release);
        lock(&self.inbox).failure.get_or_insert(why);
        self.turn.notify_all();
    }

    fn shut(&self) {
        self.broken.store(true, Ordering::Release);
        let _ = lock(&self.writer).shutdown(std::net::Shutdown::Both);
    }
}

/// `O`'s answer out of a response, or a protocol error naming what came.
fn output<O: Operation>(response: Response) -> Result<O::Output, ClientError> {
    let name = response.name();
    O::from_response(response)
        .ok_or_else(|| ClientError::Protocol(format!("kmsd answered with a {name} response")))
}

/// `write_all` that says, on failure, how many bytes went out first.
fn write_counted(w: &mut UnixStream, mut buf: &[u8]) -> Result<(), (usize, std::io::Error)> {
    let mut sent = 0;
    while !buf.is_empty() {
        match w.write(buf) {
            Ok(0) => return Err((sent, std::io::ErrorKind::WriteZero.into())),
            Ok(k) => {
                sent += k;
                buf = &buf[k..];
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((sent, e)),
        }
    }
    Ok(())
}

/// Waits until the socket has bytes to read (or the buffer has some).
///
/// A thread blocked in `read` on a Unix socket sleeps on the queue that
/// also signals *write space*, so it is woken for nothing each time kmsd
/// reads a request; one blocked in `poll(POLLIN)` is woken only for
/// input. Those wake-ups cost as much as the call itself on some virtual
/// machines.
fn wait_readable(rd: &BufReader<UnixStream>, timeout: Duration) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    if !rd.buffer().is_empty() {
        return Ok(());
    }
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    let mut pfd = libc::pollfd {
        fd: rd.get_ref().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, for the length given.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            0 => return Err(std::io::ErrorKind::TimedOut.into()),
            n if n > 0 => return Ok(()),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

fn read_error(e: ReadError) -> ClientError {
    match e {
        ReadError::Io(e) => ClientError::Io(e),
        ReadError::Frame(f) => ClientError::Protocol(f.to_string()),
    }
}

/// Convenience: the error a closed-over `KmsError` produces.
impl From<ClientError> for KmsError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Kms(k) => k,
            other => KmsError::internal(other.to_string()),
        }
    }
}
