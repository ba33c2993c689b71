//! One client connection. The reader decodes every frame already buffered,
//! answers quick requests (reads and cryptographic calls) inline into one
//! output batch, and writes that batch before it waits for more input: a
//! burst of pipelined requests costs one read and one write. Mutations,
//! which wait on a durable commit, run on the blocking pool and write
//! their own response; responses are matched to requests by id, so order
//! does not matter.

use super::audit;
use super::limits::ConnSlot;
use super::listener::ServerConfig;
use crate::metrics::{Meter, Transport};
use crate::service::dispatch::is_mutation;
use crate::service::{Caller, KeyService, Outcome};
use kmsd_audit::Principal;
use kmsd_client::codec::{
    self, ClientFrame, FrameError, MAX_FRAME, PROTOCOL_VERSION, ServerFrame, ServerHello,
};
use kmsd_client::{KmsError, Request, Response};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, Semaphore, broadcast, mpsc};
use zeroize::{Zeroize, Zeroizing};

pub struct Connection {
    stream: UnixStream,
    session: Session,
}

/// Everything of a connection but its socket.
struct Session {
    caller: Caller,
    /// The caller as audit records show it (names and executable looked
    /// up once per connection).
    principal: Principal,
    service: Arc<KeyService>,
    config: ServerConfig,
    /// The connection's place in the limits and its uid's rate buckets.
    slot: ConnSlot,
    shutdown: broadcast::Receiver<()>,
    _done: mpsc::Sender<()>,
}

/// An answered request whose audit record may still be in flight.
struct Pending {
    id: u64,
    outcome: Outcome<Response>,
}

enum ReadError {
    Io(std::io::Error),
    Frame(FrameError),
    Stalled,
}

impl ReadError {
    fn describe(&self) -> String {
        match self {
            ReadError::Io(e) => e.to_string(),
            ReadError::Frame(f) => f.to_string(),
            ReadError::Stalled => "frame not completed in time".into(),
        }
    }
}

/// The read side: a buffer that never holds more than one maximal frame
/// plus what the last read brought, wiped as it is consumed.
struct FrameReader {
    rd: OwnedReadHalf,
    buf: Zeroizing<Vec<u8>>,
    frame_timeout: std::time::Duration,
}

impl FrameReader {
    /// The next frame if one is wholly buffered, with its encoded length.
    fn try_next(&mut self) -> Result<Option<(ClientFrame, usize)>, ReadError> {
        match codec::decode::<ClientFrame>(&self.buf).map_err(ReadError::Frame)? {
            Some((msg, used)) => {
                self.consume(used);
                Ok(Some((msg, used)))
            }
            None => Ok(None),
        }
    }

    /// Reads more bytes; `false` on a clean end of stream. A frame that
    /// has started must complete within the frame timeout.
    async fn fill(&mut self) -> Result<bool, ReadError> {
        let want = codec::peek_len(&self.buf)
            .map_err(ReadError::Frame)?
            .map_or(4096, |l| l + codec::LEN_PREFIX);
        let len = self.buf.len();
        if self.buf.capacity() < want {
            self.buf.reserve(want - len);
        }
        let n = if self.buf.is_empty() {
            self.rd
                .read_buf(&mut *self.buf)
                .await
                .map_err(ReadError::Io)?
        } else {
            match tokio::time::timeout(self.frame_timeout, self.rd.read_buf(&mut *self.buf)).await {
                Ok(r) => r.map_err(ReadError::Io)?,
                Err(_) => return Err(ReadError::Stalled),
            }
        };
        if n == 0 && !self.buf.is_empty() {
            return Err(ReadError::Frame(FrameError::Truncated));
        }
        Ok(n > 0)
    }

    /// The next frame, reading as needed; `None` on a clean end of stream.
    async fn next(&mut self) -> Result<Option<ClientFrame>, ReadError> {
        loop {
            if let Some((f, _)) = self.try_next()? {
                return Ok(Some(f));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    fn consume(&mut self, used: usize) {
        let len = self.buf.len();
        self.buf.copy_within(used..len, 0);
        self.buf[len - used..].zeroize();
        self.buf.truncate(len - used);
    }
}

/// Appends an encoded frame; a response too large to encode becomes an
/// internal error for that request.
fn encode_into(frame: &ServerFrame, out: &mut Vec<u8>) {
    let start = out.len();
    if let Err(e) = codec::encode(frame, out) {
        out.truncate(start);
        let msg = KmsError::internal(format!("response could not be encoded: {e}"));
        let fallback = match frame {
            ServerFrame::Response { id, .. } => ServerFrame::Response {
                id: *id,
                result: Err(msg),
            },
            _ => ServerFrame::Goodbye(msg),
        };
        let _ = codec::encode(&fallback, out);
    }
}

/// The write half, shared by the reader and the mutation tasks; each
/// write is whole frames, so writers never interleave inside a frame.
struct Writer(Mutex<OwnedWriteHalf>);

impl Writer {
    async fn send(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.lock().await.write_all(bytes).await
    }

    async fn send_frame(&self, frame: &ServerFrame) {
        let mut out = Zeroizing::new(Vec::with_capacity(256));
        encode_into(frame, &mut out);
        let _ = self.send(&out).await;
    }
}

impl Connection {
    #[allow(clippy::too_many_arguments)] // one per part of a session
    pub fn new(
        stream: UnixStream,
        caller: Caller,
        service: Arc<KeyService>,
        config: ServerConfig,
        slot: ConnSlot,
        shutdown: broadcast::Receiver<()>,
        done: mpsc::Sender<()>,
    ) -> Self {
        let principal = audit::principal(&caller);
        Connection {
            stream,
            session: Session {
                caller,
                principal,
                service,
                config,
                slot,
                shutdown,
                _done: done,
            },
        }
    }

    pub async fn run(self) {
        let Connection {
            stream,
            mut session,
        } = self;
        let caller = session.caller.clone();
        tracing::debug!(
            uid = caller.uid,
            gid = caller.gid,
            pid = caller.pid,
            "connection opened"
        );
        let (rd, wr) = stream.into_split();
        let writer = Arc::new(Writer(Mutex::new(wr)));
        let mut reader = FrameReader {
            rd,
            buf: Zeroizing::new(Vec::with_capacity(8192)),
            frame_timeout: session.config.frame_timeout,
        };
        if session.handshake(&mut reader, &writer).await {
            session.serve(&mut reader, &writer).await;
        }
        let _ = writer.0.lock().await.shutdown().await;
        tracing::debug!(uid = caller.uid, pid = caller.pid, "connection closed");
    }
}

impl Session {
    async fn handshake(&self, reader: &mut FrameReader, writer: &Writer) -> bool {
        let refuse = |msg: String| ServerFrame::Goodbye(KmsError::validation(msg));
        let reply = match tokio::time::timeout(self.config.handshake_timeout, reader.next()).await {
            Ok(Ok(Some(ClientFrame::Hello(h)))) if h.protocol_version == PROTOCOL_VERSION => {
                writer
                    .send_frame(&ServerFrame::Hello(ServerHello {
                        protocol_version: PROTOCOL_VERSION,
                        server: format!("kmsd {}", env!("CARGO_PKG_VERSION")),
                        max_frame: MAX_FRAME as u32,
                    }))
                    .await;
                return true;
            }
            Ok(Ok(Some(ClientFrame::Hello(h)))) => refuse(format!(
                "protocol version {} is not supported; this kmsd speaks {PROTOCOL_VERSION}",
                h.protocol_version
            )),
            Ok(Ok(Some(ClientFrame::Request { .. }))) => {
                refuse("the first frame must be a hello".into())
            }
            Ok(Ok(None)) => return false,
            Ok(Err(e)) => {
                self.log_bad_frame(&e);
                if matches!(e, ReadError::Io(_)) {
                    return false;
                }
                refuse(e.describe())
            }
            Err(_) => refuse("no hello within the handshake timeout".into()),
        };
        writer.send_frame(&reply).await;
        false
    }

    async fn serve(&mut self, reader: &mut FrameReader, writer: &Arc<Writer>) {
        let max = self.config.max_in_flight;
        let in_flight = Arc::new(Semaphore::new(max));
        let mut pending: Vec<Pending> = Vec::new();
        loop {
            let frame = match reader.try_next() {
                // Rate limits, before the request reaches the service.
                Ok(Some((ClientFrame::Request { id, request }, len))) => {
                    match self.slot.check(request.name(), len, &self.principal) {
                        Ok(()) => Some(ClientFrame::Request { id, request }),
                        Err(e) => {
                            let meter = Meter::untimed(request.name());
                            pending.push(Pending {
                                id,
                                outcome: Outcome::refused(Err(e), meter),
                            });
                            if pending.len() >= max {
                                self.flush(&mut pending, writer).await;
                            }
                            continue;
                        }
                    }
                }
                Ok(Some((f, _))) => Some(f),
                Ok(None) => None,
                Err(e) => {
                    self.fail(e, &mut pending, writer).await;
                    break;
                }
            };
            match frame {
                Some(ClientFrame::Request { id, request }) if is_mutation(&request) => {
                    let Ok(permit) = in_flight.clone().acquire_owned().await else {
                        break;
                    };
                    let (svc, caller, principal, w) = (
                        self.service.clone(),
                        self.caller.clone(),
                        self.principal.clone(),
                        writer.clone(),
                    );
                    tokio::task::spawn_blocking(move || {
                        let outcome = run_request(&svc, &caller, &principal, request);
                        let result = svc.finish(outcome, Transport::Socket);
                        let mut buf = Zeroizing::new(Vec::with_capacity(256));
                        encode_into(&ServerFrame::Response { id, result }, &mut buf);
                        tokio::runtime::Handle::current().block_on(async move {
                            let _ = w.send(&buf).await;
                        });
                        drop(permit);
                    });
                }
                Some(ClientFrame::Request { id, request }) => {
                    let outcome =
                        run_request(&self.service, &self.caller, &self.principal, request);
                    pending.push(Pending { id, outcome });
                    if pending.len() >= max {
                        self.flush(&mut pending, writer).await;
                    }
                }
                Some(ClientFrame::Hello(_)) => {
                    let e =
                        ReadError::Frame(FrameError::Malformed("unexpected second hello".into()));
                    self.fail(e, &mut pending, writer).await;
                    break;
                }
                None => {
                    // Nothing complete is buffered: answer what we have,
                    // then wait for more input or shutdown.
                    self.flush(&mut pending, writer).await;
                    let idle = self.config.idle_timeout.unwrap_or(std::time::Duration::MAX);
                    let more = tokio::select! {
                        r = reader.fill() => r,
                        _ = tokio::time::sleep(idle) => {
                            if in_flight.available_permits() < max || !reader.buf.is_empty() {
                                continue; // not idle: a mutation or a frame is under way
                            }
                            self.close_idle(idle, writer).await;
                            break;
                        }
                        _ = self.shutdown.recv() => break,
                    };
                    match more {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            self.fail(e, &mut pending, writer).await;
                            break;
                        }
                    }
                }
            }
        }
        self.flush(&mut pending, writer).await;
        // Let in-flight mutations finish and answer.
        let _ = in_flight.acquire_many(max as u32).await;
    }

    /// Waits for the batch's audit records (one group commit covers them
    /// all), then answers the batch in one write.
    async fn flush(&self, pending: &mut Vec<Pending>, writer: &Writer) {
        let mut out = self.encode_pending(pending).await;
        if !out.is_empty() {
            let _ = writer.send(&out).await;
            out.zeroize();
        }
    }

    async fn encode_pending(&self, pending: &mut Vec<Pending>) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(256 * pending.len()));
        for p in pending.drain(..) {
            let result = self
                .service
                .finish_async(p.outcome, Transport::Socket)
                .await;
            encode_into(&ServerFrame::Response { id: p.id, result }, &mut out);
        }
        out
    }

    /// Answers what is pending, then a goodbye naming the problem.
    async fn fail(&self, e: ReadError, pending: &mut Vec<Pending>, writer: &Writer) {
        self.log_bad_frame(&e);
        let mut out = self.encode_pending(pending).await;
        if !matches!(e, ReadError::Io(_)) {
            encode_into(
                &ServerFrame::Goodbye(KmsError::validation(e.describe())),
                &mut out,
            );
        }
        let _ = writer.send(&out).await;
        out.zeroize();
    }

    /// Says goodbye to a connection idle for `idle`.
    async fn close_idle(&self, idle: std::time::Duration, writer: &Writer) {
        tracing::debug!(
            uid = self.caller.uid,
            pid = self.caller.pid,
            "closing an idle connection"
        );
        let msg = format!(
            "no request for {} s; kmsd closes idle connections",
            idle.as_secs()
        );
        writer
            .send_frame(&ServerFrame::Goodbye(KmsError::limit_exceeded(msg)))
            .await;
    }

    fn log_bad_frame(&self, e: &ReadError) {
        if let ReadError::Io(io) = e {
            // A client that exits with the connection open resets it:
            // nothing to warn about.
            tracing::debug!(uid = self.caller.uid, pid = self.caller.pid, error = %io, "connection lost");
            return;
        }
        tracing::warn!(uid = self.caller.uid, pid = self.caller.pid, error = %e.describe(), "closing connection after a bad frame");
    }
}

/// Answers a connection over a limit with one goodbye naming it.
pub async fn refuse(mut stream: UnixStream, why: KmsError) {
    let mut f = Vec::new();
    encode_into(&ServerFrame::Goodbye(why), &mut f);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), stream.write_all(&f)).await;
}

/// Runs one request through the service's pipeline; its record is
/// durable already (mutations) or in flight (the outcome's ticket).
fn run_request(
    svc: &KeyService,
    caller: &Caller,
    principal: &Principal,
    request: Request,
) -> Outcome<Response> {
    let name = request.name();
    let o = svc.handle(caller, principal, request);
    match &o.result {
        Ok(_) => tracing::debug!(op = name, uid = caller.uid, "ok"),
        Err(e) => tracing::debug!(op = name, uid = caller.uid, error = %e.kind, "failed"),
    }
    o
}
