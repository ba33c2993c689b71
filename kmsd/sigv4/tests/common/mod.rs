//! Shared by the integration tests: owned requests, the signed vectors, a
//! small deterministic PRNG.
#![allow(dead_code)]

use kmsd_sigv4::{KMS_RULES, Parsed, RequestParts, SigV4Error, parse, verify};

/// An owned request; [`Request::parts`] borrows it as [`RequestParts`].
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    /// Calls `f` with the request as [`RequestParts`].
    pub fn with_parts<T>(&self, f: impl FnOnce(&RequestParts<'_>) -> T) -> T {
        let headers: Vec<(&str, &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        f(&RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        })
    }

    /// `parse` with the KMS rules.
    pub fn parse(&self) -> Result<Parsed, SigV4Error> {
        self.with_parts(|r| parse(r, &KMS_RULES))
    }

    /// `parse` with the KMS rules, then `verify` at `now`.
    pub fn check(&self, secret: &[u8], now: u64) -> Result<Parsed, SigV4Error> {
        self.with_parts(|r| {
            let parsed = parse(r, &KMS_RULES)?;
            verify(&parsed, r, secret, now)?;
            Ok(parsed)
        })
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn header_str(&self, name: &str) -> String {
        String::from_utf8(self.header(name).unwrap().to_vec()).unwrap()
    }

    /// Replaces the value of every header `name`.
    pub fn set_header(&mut self, name: &str, value: &[u8]) {
        for (n, v) in &mut self.headers {
            if n.eq_ignore_ascii_case(name) {
                *v = value.to_vec();
            }
        }
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn add_header(&mut self, name: &str, value: &[u8]) {
        self.headers.push((name.to_owned(), value.to_vec()));
    }
}

/// A signed request and the secret it was signed with.
#[derive(Clone, Debug)]
pub struct Vector {
    pub name: String,
    pub request: Request,
    pub secret: Vec<u8>,
}

impl Vector {
    /// X-Amz-Date in epoch seconds (the `now` at which it verifies).
    pub fn now(&self) -> u64 {
        u64::try_from(self.request.parse().unwrap().amz_time()).unwrap()
    }
}

fn load(file: &str, text: &str) -> Vec<Vector> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let s = |k: &str, default: &str| v[k].as_str().unwrap_or(default).to_owned();
            let headers: Vec<(String, Vec<u8>)> = match &v["headers"] {
                serde_json::Value::Object(map) => map
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
                    .collect(),
                serde_json::Value::Array(list) => list
                    .iter()
                    .map(|p| {
                        let name = p[0].as_str().unwrap().to_owned();
                        (name, p[1].as_str().unwrap().as_bytes().to_vec())
                    })
                    .collect(),
                other => panic!("headers: {other}"),
            };
            Vector {
                name: format!("{file}:{}", i + 1),
                request: Request {
                    method: s("method", "POST"),
                    path: s("path", "/"),
                    query: s("query", ""),
                    headers,
                    body: s("body", "").into_bytes(),
                },
                secret: s("secret", "").into_bytes(),
            }
        })
        .collect()
}

/// The three requests captured from boto3 and the aws CLI.
pub fn captured() -> Vec<Vector> {
    load("captured.jsonl", include_str!("../vectors/captured.jsonl"))
}

/// Requests signed by botocore's SigV4Auth (`vectors/gen_botocore.py`).
pub fn botocore() -> Vec<Vector> {
    load("botocore.jsonl", include_str!("../vectors/botocore.jsonl"))
}

pub fn all_vectors() -> Vec<Vector> {
    let mut v = captured();
    v.extend(botocore());
    v
}

/// xorshift64*: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes_from(&mut self, alphabet: &[u8], len: usize) -> Vec<u8> {
        (0..len).map(|_| *self.pick(alphabet)).collect()
    }

    pub fn string_from(&mut self, alphabet: &str, len: usize) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        (0..len).map(|_| *self.pick(&chars)).collect()
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}
