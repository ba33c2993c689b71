//! `--store etcd://host:port,...` and the `--etcd-*` options.

use crate::store::StoreError;
use std::path::PathBuf;
use std::time::Duration;

/// TLS to etcd: the CA that signs its certificates and, for client
/// certificate authentication, ours.
#[derive(Clone, Debug, Default)]
pub struct EtcdTls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl EtcdTls {
    /// `ca=FILE[,cert=FILE,key=FILE]`.
    pub fn parse(text: &str) -> Result<EtcdTls, String> {
        let mut t = EtcdTls::default();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}': give ca=FILE, cert=FILE or key=FILE"))?;
            let slot = match k {
                "ca" => &mut t.ca,
                "cert" => &mut t.cert,
                "key" => &mut t.key,
                _ => return Err(format!("unknown --etcd-tls field '{k}' (ca, cert, key)")),
            };
            *slot = Some(PathBuf::from(v));
        }
        if t.cert.is_some() != t.key.is_some() {
            return Err("--etcd-tls: give cert= and key= together".into());
        }
        Ok(t)
    }
}

#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// `host:port` of each member.
    pub endpoints: Vec<String>,
    /// Every key kmsd writes starts with this (`/kmsd`).
    pub prefix: String,
    /// Deadline of one etcd call (a mutation's commit).
    pub timeout: Duration,
    /// TTL of the lease that holds the sweeper.
    pub lease_ttl_secs: i64,
    /// How often each instance writes its heartbeat.
    pub heartbeat: Duration,
    /// Requests are refused once the state may be older than this.
    pub max_stale: Duration,
    pub tls: Option<EtcdTls>,
}

impl EtcdConfig {
    /// `etcd://h1:2379,h2:2379` with the defaults.
    pub fn parse_url(url: &str) -> Result<EtcdConfig, String> {
        let list = url
            .strip_prefix("etcd://")
            .ok_or_else(|| format!("'{url}' is not etcd://HOST:PORT[,HOST:PORT...]"))?;
        let endpoints: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        if endpoints.is_empty() {
            return Err(format!("'{url}' names no etcd endpoint"));
        }
        for e in &endpoints {
            let ok = e.rsplit_once(':').is_some_and(|(h, p)| {
                !h.is_empty() && !h.contains('/') && p.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !ok {
                return Err(format!("'{e}' in {url} is not HOST:PORT"));
            }
        }
        Ok(EtcdConfig {
            endpoints,
            prefix: "/kmsd".into(),
            timeout: Duration::from_millis(3000),
            lease_ttl_secs: 10,
            heartbeat: Duration::from_millis(200),
            max_stale: Duration::from_secs(300),
            tls: None,
        })
    }

    /// The URL as given.
    pub fn describe(&self) -> String {
        format!("etcd://{}", self.endpoints.join(","))
    }

    pub(super) fn urls(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.endpoints
            .iter()
            .map(|e| format!("{scheme}://{e}"))
            .collect()
    }

    pub(super) fn connect_options(&self) -> Result<etcd_client::ConnectOptions, StoreError> {
        let mut o = etcd_client::ConnectOptions::new()
            .with_connect_timeout(self.timeout)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
            .with_require_leader(true);
        if let Some(t) = &self.tls {
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|e| StoreError(format!("{}: {e}", p.display())))
            };
            let mut tls = etcd_client::TlsOptions::new();
            if let Some(ca) = &t.ca {
                tls = tls.ca_certificate(etcd_client::Certificate::from_pem(read(ca)?));
            }
            if let (Some(c), Some(k)) = (&t.cert, &t.key) {
                tls = tls.identity(etcd_client::Identity::from_pem(read(c)?, read(k)?));
            }
            o = o.with_tls(tls);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_tls_options_parse_or_say_why_not() {
        let c = EtcdConfig::parse_url("etcd://127.0.0.1:2379,h2:2380").unwrap();
        assert_eq!(c.endpoints, vec!["127.0.0.1:2379", "h2:2380"]);
        assert_eq!(c.urls()[1], "http://h2:2380");
        for bad in [
            "http://h:1",
            "etcd://",
            "etcd://h",
            "etcd://h:0",
            "etcd://h:x",
        ] {
            assert!(EtcdConfig::parse_url(bad).is_err(), "{bad}");
        }
        let t = EtcdTls::parse("ca=/a,cert=/b,key=/c").unwrap();
        assert_eq!(t.ca.as_deref(), Some(std::path::Path::new("/a")));
        assert!(EtcdTls::parse("cert=/b").is_err());
        assert!(EtcdTls::parse("pin=/b").is_err());
    }
}
