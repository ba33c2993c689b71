//! Failover between several kmsd endpoints: which to try in what order,
//! which requests may be sent again after a connection broke under them,
//! and how "every endpoint failed" reads.

use crate::error::ClientError;
use std::path::PathBuf;

/// `KMSD_ENDPOINTS`: kmsd sockets, comma-separated, tried in order.
pub const ENV_ENDPOINTS: &str = "KMSD_ENDPOINTS";

/// The endpoints of a `KMSD_ENDPOINTS` value: comma-separated socket
/// paths, blanks around them ignored, empty items skipped.
pub fn parse_endpoints(value: &str) -> Vec<PathBuf> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// The order to try `n` endpoints in: the current one first, then the
/// others in their configured order after it (wrapping around).
pub fn order(current: usize, n: usize) -> impl Iterator<Item = usize> {
    let start = if n == 0 { 0 } else { current % n };
    (0..n).map(move |i| (start + i) % n)
}

/// Whether a request may be sent a second time after the connection broke
/// with it in flight: true for every request that changes no state (AWS's
/// read-only and cryptographic operations), so sending it twice is as good
/// as once. Mutations are never repeated: the first may have committed.
pub fn repeatable(operation: &str) -> bool {
    const READ_PREFIXES: [&str; 3] = ["Describe", "List", "Get"];
    const CRYPTO: [&str; 6] = [
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateRandom",
    ];
    READ_PREFIXES.iter().any(|p| operation.starts_with(p)) || CRYPTO.contains(&operation)
}

/// Whether a failed call lost its connection (kmsd died, restarted or went
/// silent), as opposed to an answer from kmsd or a protocol error.
pub fn connection_lost(e: &ClientError) -> bool {
    matches!(e, ClientError::Io(_))
}

/// The endpoints for a message: one path, or `a, b and c`.
pub fn describe(sockets: &[PathBuf]) -> String {
    let names: Vec<String> = sockets
        .iter()
        .map(|p| crate::logsafe::EscapedPath(p).to_string())
        .collect();
    match names.as_slice() {
        [] => "(no socket configured)".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// One error for a connect that failed on every endpoint: the only one's
/// as it is; for several, an I/O error of the last one's kind listing each.
pub fn all_failed(mut failures: Vec<ClientError>) -> ClientError {
    match failures.len() {
        0 => ClientError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no kmsd socket configured",
        )),
        1 => failures.remove(0),
        _ => {
            let kind = match failures.last() {
                Some(ClientError::Io(e)) => e.kind(),
                _ => std::io::ErrorKind::ConnectionRefused,
            };
            let each: Vec<String> = failures.iter().map(|e| e.to_string()).collect();
            ClientError::Io(std::io::Error::new(
                kind,
                format!("no kmsd endpoint answered: {}", each.join("; ")),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_from_a_comma_list() {
        assert_eq!(
            parse_endpoints(" /a/k.sock, ,/b/k.sock,"),
            [PathBuf::from("/a/k.sock"), PathBuf::from("/b/k.sock")]
        );
        assert!(parse_endpoints("").is_empty());
    }

    #[test]
    fn the_current_endpoint_is_tried_first_then_the_rest_in_order() {
        assert_eq!(order(0, 3).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(order(2, 3).collect::<Vec<_>>(), [2, 0, 1]);
        assert_eq!(order(5, 2).collect::<Vec<_>>(), [1, 0]);
        assert_eq!(order(0, 0).count(), 0);
    }

    #[test]
    fn only_requests_that_change_nothing_are_repeated() {
        for op in [
            "Decrypt",
            "Encrypt",
            "ReEncrypt",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "GenerateRandom",
            "DescribeKey",
            "ListKeys",
            "ListGrants",
            "GetKeyPolicy",
            "GetKeyRotationStatus",
        ] {
            assert!(repeatable(op), "{op}");
        }
        for op in [
            "CreateKey",
            "CreateAlias",
            "CreateGrant",
            "DisableKey",
            "RotateKeyOnDemand",
            "ScheduleKeyDeletion",
            "PutKeyPolicy",
            "TagResource",
            "RetireGrant",
        ] {
            assert!(!repeatable(op), "{op}");
        }
    }

    #[test]
    fn only_a_lost_connection_fails_over() {
        let io = ClientError::Io(std::io::ErrorKind::ConnectionReset.into());
        assert!(connection_lost(&io));
        let kms = ClientError::Kms(crate::KmsError::new(
            crate::ErrorKind::AccessDeniedException,
            "no",
        ));
        assert!(!connection_lost(&kms));
        assert!(!connection_lost(&ClientError::Protocol("x".into())));
    }

    #[test]
    fn every_failed_endpoint_is_named() {
        let e = |p: &str| {
            ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                format!("cannot connect to kmsd at {p}"),
            ))
        };
        let one = all_failed(vec![e("/a")]);
        assert_eq!(
            one.to_string(),
            "cannot reach kmsd: cannot connect to kmsd at /a"
        );
        let two = all_failed(vec![e("/a"), e("/b")]).to_string();
        assert!(two.contains("/a") && two.contains("/b"), "{two}");
        assert!(matches!(all_failed(Vec::new()), ClientError::Io(_)));
        assert_eq!(
            describe(&[
                PathBuf::from("/a"),
                PathBuf::from("/b"),
                PathBuf::from("/c")
            ]),
            "/a, /b and /c"
        );
    }
}
