//! One client connection: a reader that decodes frames and starts a task
//! per request, and a writer that batches encoded responses. Requests on
//! one connection run concurrently and answer out of order, matched by id.

use super::listener::ServerConfig;
use crate::service::dispatch::is_mutation;
use crate::service::{Caller, KeyService};
use kmsd_client::codec::{
    self, ClientFrame, FrameError, MAX_FRAME, PROTOCOL_VERSION, ServerFrame, ServerHello,
};
use kmsd_client::{KmsError, Request};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, broadcast, mpsc};
use zeroize::{Zeroize, Zeroizing};

type Frame = Zeroizing<Vec<u8>>;

pub struct Connection {
    stream: UnixStream,
    caller: Caller,
    service: Arc<KeyService>,
    config: ServerConfig,
    shutdown: broadcast::Receiver<()>,
    _done: mpsc::Sender<()>,
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
    async fn next(&mut self) -> Result<Option<ClientFrame>, ReadError> {
        loop {
            if let Some((msg, used)) =
                codec::decode::<ClientFrame>(&self.buf).map_err(ReadError::Frame)?
            {
                self.consume(used);
                return Ok(Some(msg));
            }
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
                match tokio::time::timeout(self.frame_timeout, self.rd.read_buf(&mut *self.buf))
                    .await
                {
                    Ok(r) => r.map_err(ReadError::Io)?,
                    Err(_) => return Err(ReadError::Stalled),
                }
            };
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ReadError::Frame(FrameError::Truncated))
                };
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

fn encode(frame: &ServerFrame) -> Frame {
    let mut out = Zeroizing::new(Vec::with_capacity(256));
    if let Err(e) = codec::encode(frame, &mut out) {
        out.clear();
        let fallback = ServerFrame::Goodbye(KmsError::internal(format!(
            "response could not be encoded: {e}"
        )));
        let _ = codec::encode(&fallback, &mut out);
    }
    out
}

async fn write_loop(mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Frame>) {
    let mut batch: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(16 * 1024));
    while let Some(f) = rx.recv().await {
        batch.extend_from_slice(&f);
        while batch.len() < MAX_FRAME {
            match rx.try_recv() {
                Ok(f) => batch.extend_from_slice(&f),
                Err(_) => break,
            }
        }
        if wr.write_all(&batch).await.is_err() {
            return;
        }
        batch.zeroize();
    }
    let _ = wr.shutdown().await;
}

impl Connection {
    pub fn new(
        stream: UnixStream,
        caller: Caller,
        service: Arc<KeyService>,
        config: ServerConfig,
        shutdown: broadcast::Receiver<()>,
        done: mpsc::Sender<()>,
    ) -> Self {
        Connection {
            stream,
            caller,
            service,
            config,
            shutdown,
            _done: done,
        }
    }

    /// Answers a connection over the limit with one error frame.
    pub async fn refuse_busy(mut self) {
        tracing::warn!(
            uid = self.caller.uid,
            pid = self.caller.pid,
            "connection limit reached; refusing"
        );
        let f = encode(&ServerFrame::Goodbye(KmsError::limit_exceeded(format!(
            "kmsd is serving its maximum of {} connections; try again later",
            self.config.max_connections
        ))));
        let _ = self.stream.write_all(&f).await;
    }

    pub async fn run(mut self) {
        let caller = self.caller.clone();
        tracing::debug!(
            uid = caller.uid,
            gid = caller.gid,
            pid = caller.pid,
            "connection opened"
        );
        let (rd, wr) = self.stream.into_split();
        let (tx, rx) = mpsc::channel::<Frame>(self.config.max_in_flight);
        let writer = tokio::spawn(write_loop(wr, rx));
        let mut reader = FrameReader {
            rd,
            buf: Zeroizing::new(Vec::with_capacity(8192)),
            frame_timeout: self.config.frame_timeout,
        };
        let in_flight = Arc::new(Semaphore::new(self.config.max_in_flight));

        let hello = tokio::time::timeout(self.config.handshake_timeout, reader.next()).await;
        let ok = match hello {
            Ok(Ok(Some(ClientFrame::Hello(h)))) if h.protocol_version == PROTOCOL_VERSION => {
                let _ = tx
                    .send(encode(&ServerFrame::Hello(ServerHello {
                        protocol_version: PROTOCOL_VERSION,
                        server: format!("kmsd {}", env!("CARGO_PKG_VERSION")),
                        max_frame: MAX_FRAME as u32,
                    })))
                    .await;
                true
            }
            Ok(Ok(Some(ClientFrame::Hello(h)))) => {
                let msg = format!(
                    "protocol version {} is not supported; this kmsd speaks {PROTOCOL_VERSION}",
                    h.protocol_version
                );
                let _ = tx
                    .send(encode(&ServerFrame::Goodbye(KmsError::validation(msg))))
                    .await;
                false
            }
            Ok(Ok(Some(ClientFrame::Request { .. }))) => {
                let msg = "the first frame must be a hello";
                let _ = tx
                    .send(encode(&ServerFrame::Goodbye(KmsError::validation(msg))))
                    .await;
                false
            }
            Ok(Ok(None)) => false,
            Ok(Err(e)) => {
                goodbye(&caller, &tx, &e).await;
                false
            }
            Err(_) => {
                let _ = tx
                    .send(encode(&ServerFrame::Goodbye(KmsError::validation(
                        "no hello within the handshake timeout",
                    ))))
                    .await;
                false
            }
        };

        while ok {
            let frame = tokio::select! {
                f = reader.next() => f,
                _ = self.shutdown.recv() => break,
            };
            match frame {
                Ok(Some(ClientFrame::Request { id, request })) => {
                    let Ok(permit) = in_flight.clone().acquire_owned().await else {
                        break;
                    };
                    let (svc, tx, caller) = (self.service.clone(), tx.clone(), caller.clone());
                    tokio::spawn(async move {
                        let result = run_request(svc, caller, request).await;
                        let _ = tx.send(encode(&ServerFrame::Response { id, result })).await;
                        drop(permit);
                    });
                }
                Ok(Some(ClientFrame::Hello(_))) => {
                    let _ = tx
                        .send(encode(&ServerFrame::Goodbye(KmsError::validation(
                            "unexpected second hello",
                        ))))
                        .await;
                    break;
                }
                Ok(None) => break,
                Err(e) => {
                    goodbye(&caller, &tx, &e).await;
                    break;
                }
            }
        }
        drop(tx);
        let _ = writer.await;
        tracing::debug!(uid = caller.uid, pid = caller.pid, "connection closed");
    }
}

async fn goodbye(caller: &Caller, tx: &mpsc::Sender<Frame>, e: &ReadError) {
    tracing::warn!(uid = caller.uid, pid = caller.pid, error = %e.describe(), "closing connection after a bad frame");
    if !matches!(e, ReadError::Io(_)) {
        let _ = tx
            .send(encode(&ServerFrame::Goodbye(KmsError::validation(
                e.describe(),
            ))))
            .await;
    }
}

async fn run_request(
    svc: Arc<KeyService>,
    caller: Caller,
    request: Request,
) -> Result<kmsd_client::Response, KmsError> {
    let name = request.name();
    let result = if is_mutation(&request) {
        let c = caller.clone();
        tokio::task::spawn_blocking(move || svc.handle(&c, request))
            .await
            .unwrap_or_else(|e| Err(KmsError::internal(format!("request task failed: {e}"))))
    } else {
        svc.handle(&caller, request)
    };
    match &result {
        Ok(_) => tracing::debug!(op = name, uid = caller.uid, "ok"),
        Err(e) => tracing::debug!(op = name, uid = caller.uid, error = %e.kind, "failed"),
    }
    result
}
