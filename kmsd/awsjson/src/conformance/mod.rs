//! Conformance with AWS KMS's service model, as botocore ships it
//! (`botocore/data/kms/2014-11-01/`: `service-2.json.gz`,
//! `paginators-1.json`). The model is read at test time, never vendored:
//! set `KMS_SERVICE_MODEL` to a `service-2.json[.gz]`, or have botocore
//! installed for `python3` (`pip install boto3`); the tests fail, saying
//! so, when neither is there.
//!
//! * `operations`: every operation of the model is served or answered
//!   `UnsupportedOperationException`; kmsd's own are unknown on this wire.
//! * `outputs`: one answer per served operation, every optional member
//!   set, checked member by member against the output shape, and against
//!   the kmsd value it encodes.
//! * `inputs`: the decoder's member table against the input shapes;
//!   requests generated from the model decode and keep their values.
//! * `botocore`: botocore itself parses the sample answers and errors, and
//!   serializes the model's example requests, which then decode.

mod botocore;
mod inputs;
mod operations;
mod outputs;
mod samples;

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the image installs botocore (used when `python3` cannot say).
const DEFAULT_DIR: &str =
    "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/botocore/data/kms/2014-11-01";

pub(crate) struct Model {
    pub service: Value,
    pub paginators: Value,
    pub dir: PathBuf,
}

/// The model, read once per test binary.
pub(crate) fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(load)
}

fn model_file() -> PathBuf {
    if let Some(p) = std::env::var_os("KMS_SERVICE_MODEL") {
        return PathBuf::from(p);
    }
    let from_python = std::process::Command::new("python3")
        .args([
            "-c",
            "import botocore, os; print(os.path.dirname(botocore.__file__))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
                .join("data/kms/2014-11-01/service-2.json.gz")
        });
    match from_python {
        Some(p) if p.exists() => p,
        _ => Path::new(DEFAULT_DIR).join("service-2.json.gz"),
    }
}

fn load() -> Model {
    let file = model_file();
    let raw = std::fs::read(&file).unwrap_or_else(|e| {
        panic!(
            "cannot read botocore's KMS service model at {}: {e}\n\
             The conformance tests need it: install boto3 for python3 \
             (`pip install boto3`) or set KMS_SERVICE_MODEL to a service-2.json[.gz].",
            file.display()
        )
    });
    let text = if file.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_string(&mut s)
            .unwrap_or_else(|e| panic!("{} is not gzip JSON: {e}", file.display()));
        s
    } else {
        String::from_utf8(raw).expect("model is UTF-8")
    };
    let service: Value = serde_json::from_str(&text).expect("model is JSON");
    assert_eq!(
        service["metadata"]["targetPrefix"],
        "TrentService",
        "{} is not the KMS model",
        file.display()
    );
    let dir = file
        .parent()
        .expect("model file has a directory")
        .to_path_buf();
    let paginators = std::fs::read(dir.join("paginators-1.json"))
        .map(|b| serde_json::from_slice(&b).expect("paginators-1.json is JSON"))
        .unwrap_or_else(|e| panic!("cannot read paginators-1.json beside the model: {e}"));
    Model {
        service,
        paginators,
        dir,
    }
}

impl Model {
    pub fn shape(&self, name: &str) -> &Value {
        let s = &self.service["shapes"][name];
        assert!(s.is_object(), "model has no shape {name}");
        s
    }

    pub fn operations(&self) -> Vec<&str> {
        let ops = self.service["operations"].as_object().expect("operations");
        ops.keys().map(String::as_str).collect()
    }

    fn io_shape(&self, op: &str, which: &str) -> Option<&str> {
        let o = &self.service["operations"][op];
        assert!(o.is_object(), "model has no operation {op}");
        o[which]["shape"].as_str()
    }

    pub fn input(&self, op: &str) -> Option<&str> {
        self.io_shape(op, "input")
    }

    pub fn output(&self, op: &str) -> Option<&str> {
        self.io_shape(op, "output")
    }

    /// The shape name of member `member` of structure `shape`.
    pub fn member_shape<'a>(&'a self, shape: &str, member: &str) -> Option<&'a str> {
        self.shape(shape)["members"][member]["shape"].as_str()
    }

    pub fn required(&self, shape: &str) -> Vec<&str> {
        self.shape(shape)["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    pub fn enum_values(&self, shape: &str) -> Option<Vec<&str>> {
        self.shape(shape)["enum"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect())
    }

    pub fn kind(&self, shape: &str) -> &str {
        self.shape(shape)["type"].as_str().expect("shape type")
    }
}

#[test]
fn the_model_is_the_kms_model() {
    let m = model();
    assert_eq!(m.service["metadata"]["protocol"], "json", "{:?}", m.dir);
    assert_eq!(m.service["metadata"]["jsonVersion"], "1.1");
    assert!(m.operations().len() >= 54);
}
