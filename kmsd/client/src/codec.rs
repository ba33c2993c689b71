//! The frame codec: the one module that knows the serialization format.
//!
//! A frame is a `u32` big-endian payload length followed by the payload, a
//! bincode (2.x, standard config) encoding of a [`ClientFrame`] or
//! [`ServerFrame`]. The length is checked against [`MAX_FRAME`] before any
//! buffer is allocated, and a payload must decode to exactly its length.
//! Lengths inside the payload are not trusted to size buffers: decoding
//! `N` bytes allocates `O(N)` ([`crate::no_prealloc`]).
//! See `docs/WIRE.md`. Moving to another serde format touches this file only.

use crate::error::KmsError;
use crate::messages::{Request, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Read;
use zeroize::Zeroizing;

/// The protocol version this build speaks; the handshake refuses others.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest payload accepted, in bytes (a 32 KB policy plus headroom).
pub const MAX_FRAME: usize = 256 * 1024;
/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;

const CONFIG: bincode::config::Configuration<
    bincode::config::BigEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_FRAME>,
> = bincode::config::standard()
    .with_big_endian()
    .with_limit::<MAX_FRAME>();

/// First frame on a connection, from the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    pub protocol_version: u32,
    /// Free text for logs, e.g. `kmsctl 0.1.0`.
    pub client: String,
}

/// The server's answer to a [`ClientHello`] it accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHello {
    pub protocol_version: u32,
    pub server: String,
    pub max_frame: u32,
}

#[derive(Serialize, Deserialize)]
pub enum ClientFrame {
    Hello(ClientHello),
    /// `id` is chosen by the client and echoed in the response; many
    /// requests may be in flight on one connection.
    Request {
        id: u64,
        request: Request,
    },
}

#[derive(Serialize, Deserialize)]
pub enum ServerFrame {
    Hello(ServerHello),
    Response {
        id: u64,
        result: Result<Response, KmsError>,
    },
    /// A connection-level error sent just before the server closes the
    /// connection (bad handshake, malformed or oversized frame).
    Goodbye(KmsError),
}

#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix exceeds [`MAX_FRAME`].
    TooLarge(u64),
    /// The payload does not decode, or leaves bytes over.
    Malformed(String),
    /// The stream ended inside a frame.
    Truncated,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge(n) => {
                write!(f, "frame of {n} bytes exceeds the {MAX_FRAME}-byte limit")
            }
            FrameError::Malformed(m) => write!(f, "malformed frame: {m}"),
            FrameError::Truncated => f.write_str("connection closed in the middle of a frame"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Appends one frame holding `msg` to `out`.
pub fn encode<T: Serialize>(msg: &T, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; LEN_PREFIX]);
    bincode::serde::encode_into_std_write(msg, out, CONFIG)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    let len = out.len() - start - LEN_PREFIX;
    if len > MAX_FRAME {
        out.truncate(start);
        return Err(FrameError::TooLarge(len as u64));
    }
    out[start..start + LEN_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// The payload length announced by a buffered prefix, checked against the
/// cap. `None` while fewer than four bytes are buffered.
pub fn peek_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..LEN_PREFIX) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len as u64));
    }
    Ok(Some(len))
}

/// Decodes one frame from the front of `buf`. `Ok(None)` when the frame is
/// not wholly buffered yet; otherwise the message and the bytes consumed.
pub fn decode<T: DeserializeOwned>(buf: &[u8]) -> Result<Option<(T, usize)>, FrameError> {
    let Some(len) = peek_len(buf)? else {
        return Ok(None);
    };
    let Some(payload) = buf.get(LEN_PREFIX..LEN_PREFIX + len) else {
        return Ok(None);
    };
    decode_payload(payload).map(|msg| Some((msg, LEN_PREFIX + len)))
}

/// Decodes a payload (a frame without its length prefix). Allocates in
/// proportion to the payload's length, whatever lengths it claims inside
/// (see [`crate::no_prealloc`]): a claimed length longer than what is left
/// is an error before anything is allocated for it.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let (msg, used) = bincode::serde::seed_decode_from_slice(
        crate::no_prealloc::Seed::<T>::new(),
        payload,
        CONFIG,
    )
    .map_err(|e| FrameError::Malformed(decode_error(e)))?;
    if used != payload.len() {
        return Err(FrameError::Malformed(format!(
            "{} bytes left over after the message",
            payload.len() - used
        )));
    }
    Ok(msg)
}

/// What went wrong, in words (bincode's own text names the variant).
fn decode_error(e: bincode::error::DecodeError) -> String {
    use bincode::error::DecodeError;
    match e {
        DecodeError::UnexpectedEnd { additional } => {
            format!("it ends at least {additional} byte(s) short of the lengths it claims ({e})")
        }
        DecodeError::LimitExceeded => {
            format!("it claims more than the {MAX_FRAME}-byte frame limit ({e})")
        }
        e => e.to_string(),
    }
}

/// Error of a blocking frame read.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    Frame(FrameError),
}

/// Reads one frame from a blocking reader. `Ok(None)` on a clean end of
/// stream before any byte of a frame. The payload buffer is wiped after
/// decoding, since it may hold plaintext.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>, ReadError> {
    let mut prefix = [0u8; LEN_PREFIX];
    let mut got = 0;
    while got < LEN_PREFIX {
        match r.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ReadError::Frame(FrameError::Truncated)),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    let len = peek_len(&prefix).map_err(ReadError::Frame)?.unwrap_or(0);
    let mut payload = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut payload).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => ReadError::Frame(FrameError::Truncated),
        _ => ReadError::Io(e),
    })?;
    decode_payload(&payload).map(Some).map_err(ReadError::Frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::*;
    use crate::secret::SecretBytes;

    fn request_frame(id: u64) -> ClientFrame {
        ClientFrame::Request {
            id,
            request: Request::Encrypt(EncryptRequest {
                key_id: "alias/x".into(),
                plaintext: SecretBytes::from_slice(b"hello"),
                encryption_context: [("a".to_string(), "b".to_string())].into(),
                grant_tokens: vec![],
            }),
        }
    }

    #[test]
    fn round_trip_and_partial_buffers() {
        let mut buf = Vec::new();
        encode(&request_frame(7), &mut buf).unwrap();
        encode(&request_frame(8), &mut buf).unwrap();
        let first_len = LEN_PREFIX + peek_len(&buf).unwrap().unwrap();
        // Every strict prefix of the first frame is "not yet".
        for cut in 0..first_len {
            assert!(
                decode::<ClientFrame>(&buf[..cut]).unwrap().is_none(),
                "cut {cut}"
            );
        }
        let (msg, used) = decode::<ClientFrame>(&buf).unwrap().unwrap();
        assert_eq!(used, first_len);
        match msg {
            ClientFrame::Request {
                id,
                request: Request::Encrypt(e),
            } => {
                assert_eq!(id, 7);
                assert_eq!(e.plaintext.expose(), b"hello");
                assert_eq!(e.encryption_context["a"], "b");
            }
            _ => panic!("wrong frame"),
        }
        let (msg, _) = decode::<ClientFrame>(&buf[used..]).unwrap().unwrap();
        assert!(matches!(msg, ClientFrame::Request { id: 8, .. }));
    }

    #[test]
    fn oversized_length_is_refused_before_allocation() {
        let buf = u32::MAX.to_be_bytes();
        assert_eq!(
            decode::<ClientFrame>(&buf).err(),
            Some(FrameError::TooLarge(u32::MAX as u64))
        );
        let mut r = &buf[..];
        assert!(matches!(
            read_frame::<_, ClientFrame>(&mut r),
            Err(ReadError::Frame(FrameError::TooLarge(_)))
        ));
    }

    #[test]
    fn garbage_and_trailing_bytes_are_malformed() {
        let mut buf = 5u32.to_be_bytes().to_vec();
        buf.extend_from_slice(&[0xff; 5]);
        assert!(matches!(
            decode::<ClientFrame>(&buf),
            Err(FrameError::Malformed(_))
        ));

        let mut good = Vec::new();
        encode(&ServerFrame::Goodbye(KmsError::internal("x")), &mut good).unwrap();
        let len = peek_len(&good).unwrap().unwrap();
        let mut padded = ((len + 1) as u32).to_be_bytes().to_vec();
        padded.extend_from_slice(&good[LEN_PREFIX..]);
        padded.push(0);
        let err = decode::<ServerFrame>(&padded).err().unwrap();
        assert!(err.to_string().contains("left over"), "{err}");
    }

    #[test]
    fn blocking_reader_sees_clean_eof_and_truncation() {
        let mut empty = &b""[..];
        assert!(read_frame::<_, ClientFrame>(&mut empty).unwrap().is_none());
        let mut buf = Vec::new();
        encode(&request_frame(1), &mut buf).unwrap();
        for cut in 1..buf.len() {
            let mut r = &buf[..cut];
            assert!(
                matches!(
                    read_frame::<_, ClientFrame>(&mut r),
                    Err(ReadError::Frame(FrameError::Truncated))
                ),
                "cut {cut}"
            );
        }
        let mut r = &buf[..];
        assert!(read_frame::<_, ClientFrame>(&mut r).unwrap().is_some());
    }

    #[test]
    fn oversized_message_is_not_encoded() {
        let big = ClientFrame::Request {
            id: 1,
            request: Request::PutServicePolicy(PutServicePolicyRequest {
                policy: "x".repeat(MAX_FRAME),
            }),
        };
        let mut out = vec![1, 2, 3];
        assert!(matches!(
            encode(&big, &mut out),
            Err(FrameError::TooLarge(_))
        ));
        assert_eq!(out, vec![1, 2, 3]);
    }
}
