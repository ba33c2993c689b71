//! `--kms native|aws` and its flags: which key service a command talks to
//! (`crate::kms`), shared by init, mount, cat, fsck, rewrap and
//! backing-path.

use crate::kms::Kms;
#[cfg(feature = "aws")]
use crate::kms::{AwsKms, AwsOptions};
use clap::{Args, ValueEnum};
use kmsd_client::{Client, ClientConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KmsKind {
    /// kmsd's Unix socket (callers identified by the kernel).
    Native,
    /// The AWS KMS API through the AWS SDK: kmsd's HTTP endpoint with an
    /// access key, or AWS KMS itself.
    Aws,
}

/// Where the keys come from.
#[derive(Args, Debug, Clone)]
pub struct KmsArgs {
    /// kmsd's socket; repeat it to name several kmsd instances of one
    /// deployment, tried in turn (failover) [default: $KMSD_ENDPOINTS (a
    /// comma-separated list), $KMSD_SOCKET, /run/kmsd/kmsd.sock for root,
    /// else kmsd.sock in $XDG_RUNTIME_DIR, /run/user/UID or ~/.local/state]
    #[arg(long, value_name = "PATH")]
    pub socket: Vec<PathBuf>,
    /// The key service's protocol.
    #[arg(long, value_enum, default_value_t = KmsKind::Native)]
    pub kms: KmsKind,
    /// --kms aws: the endpoint, e.g. kmsd's `http://127.0.0.1:8443`
    /// [default: $AWS_ENDPOINT_URL_KMS, $AWS_ENDPOINT_URL, else AWS KMS in
    /// the region]
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// --kms aws: the profile for credentials and region [default:
    /// $AWS_PROFILE, else `default`]
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// --kms aws: the region [default: $AWS_REGION, else the profile's]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

impl KmsArgs {
    /// The kmsd sockets named, else the defaults (an error when no private
    /// directory exists for the default socket).
    pub fn sockets(&self) -> Result<Vec<PathBuf>, String> {
        if !self.socket.is_empty() {
            return Ok(self.socket.clone());
        }
        kmsd_client::default_endpoints().map_err(|e| e.to_string())
    }

    /// Flags that do not go with the protocol chosen.
    fn check(&self) -> Result<(), String> {
        let aws_only = [
            ("--endpoint-url", self.endpoint_url.is_some()),
            ("--profile", self.profile.is_some()),
            ("--region", self.region.is_some()),
        ];
        match self.kms {
            KmsKind::Native => match aws_only.iter().find(|(_, given)| *given) {
                Some((flag, _)) => Err(format!("{flag} needs --kms aws")),
                None => Ok(()),
            },
            KmsKind::Aws if !self.socket.is_empty() => {
                Err("--socket is kmsd's native socket: it does not go with --kms aws".into())
            }
            KmsKind::Aws => Ok(()),
        }
    }

    /// The key service, named `client_name` in kmsd's logs; each call
    /// waits at most `call_timeout` (the client's default when `None`).
    /// Nothing is sent yet: an unreachable service fails the first call.
    pub fn open(
        &self,
        client_name: &str,
        call_timeout: Option<Duration>,
    ) -> Result<Arc<dyn Kms>, String> {
        self.check()?;
        match self.kms {
            KmsKind::Native => {
                let mut cc = ClientConfig::with_sockets(self.sockets()?);
                if let Some(t) = call_timeout {
                    cc.call_timeout = t;
                }
                cc.client_name = client_name.to_string();
                Ok(Arc::new(Client::new(cc)))
            }
            #[cfg(feature = "aws")]
            KmsKind::Aws => Ok(Arc::new(AwsKms::new(&AwsOptions {
                endpoint_url: self.endpoint_url.clone(),
                profile: self.profile.clone(),
                region: self.region.clone(),
                call_timeout,
            })?)),
            #[cfg(not(feature = "aws"))]
            KmsKind::Aws => Err("--kms aws: this kmsfs was built without the `aws` feature".into()),
        }
    }

    /// A source of connections for a command with several workers: a
    /// socket of its own for each (kmsd serves each connection on its own
    /// task), or one shared SDK client (it pools its own connections).
    pub fn connector(
        &self,
        client_name: &str,
    ) -> Result<impl Fn() -> Result<Arc<dyn Kms>, String> + Sync + use<>, String> {
        let shared = match self.kms {
            KmsKind::Aws => Some(self.open(client_name, None)?),
            KmsKind::Native => None,
        };
        let args = self.clone();
        let name = client_name.to_string();
        Ok(move || match &shared {
            Some(kms) => Ok(kms.clone()),
            None => args.open(&name, None),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        kms: KmsArgs,
    }

    fn parse(args: &[&str]) -> KmsArgs {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .map(|t| t.kms)
            .expect("parses")
    }

    #[test]
    fn sockets_repeat_in_order() {
        let k = parse(&["--socket", "/a", "--socket", "/b"]);
        assert_eq!(
            k.sockets(),
            Ok(vec![PathBuf::from("/a"), PathBuf::from("/b")])
        );
        assert_eq!(k.kms, KmsKind::Native);
        assert!(k.check().is_ok());
    }

    #[test]
    fn aws_flags_need_kms_aws_and_sockets_need_native() {
        let e = parse(&["--endpoint-url", "http://127.0.0.1:1"]).check();
        assert_eq!(e, Err("--endpoint-url needs --kms aws".to_string()));
        assert!(parse(&["--region", "r"]).check().is_err());
        assert!(parse(&["--kms", "aws", "--socket", "/s"]).check().is_err());
        let k = parse(&[
            "--kms",
            "aws",
            "--endpoint-url",
            "http://127.0.0.1:1",
            "--profile",
            "p",
            "--region",
            "local",
        ]);
        assert!(k.check().is_ok());
        assert_eq!(k.kms, KmsKind::Aws);
        assert_eq!(k.region.as_deref(), Some("local"));
    }

    #[test]
    fn an_aws_service_is_described_by_its_endpoint_and_region() {
        let k = parse(&[
            "--kms",
            "aws",
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--region",
            "eu-west-3",
        ]);
        let kms = k.open("test", None).expect("opens without a request");
        assert_eq!(
            kms.describe(),
            "AWS KMS at http://127.0.0.1:9 (region eu-west-3)"
        );
    }
}
