//! [`sign`]: the `Authorization` header for a request (for clients and
//! tests; the same code as [`crate::verify`] computes the signature).

use crate::canonical::{ALGORITHM, TERMINATOR, hex};
use crate::error::SignError;
use crate::verify::{parse, request_string_to_sign, signing_key};
use crate::{RequestParts, Rules};

/// Who signs, for which scope, and which headers.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// The names of the headers to sign, in any case and order; `None`
    /// signs every header of the request. `authorization` is never signed.
    pub signed_headers: Option<&'a [&'a str]>,
}

/// The value of the `Authorization` header that signs `req` (its
/// `X-Amz-Date` header gives the time and the scope's date; an
/// `Authorization` header already in `req` is ignored):
///
/// ```text
/// AWS4-HMAC-SHA256 Credential=AKID/yyyymmdd/region/service/aws4_request, SignedHeaders=a;b, Signature=<hex>
/// ```
///
/// Refuses (with the reason [`crate::parse`] would give) to sign what
/// [`crate::parse`] would refuse, with the rules `{ service:
/// params.service, sign_if_present: [] }`: e.g. no `host` or `x-amz-date`
/// among the headers, a malformed date, region or access key id.
pub fn sign(
    req: &RequestParts<'_>,
    params: &SigningParams<'_>,
    secret: &[u8],
) -> Result<String, SignError> {
    let mut names: Vec<String> = match params.signed_headers {
        Some(names) => names.iter().map(|n| n.to_ascii_lowercase()).collect(),
        None => req
            .headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect(),
    };
    names.retain(|n| n != "authorization");
    names.sort();
    names.dedup();

    let date = req
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-date"))
        .and_then(|(_, v)| v.get(..8))
        .and_then(|d| std::str::from_utf8(d).ok())
        .unwrap_or("");
    let with_signature = |signature: &str| {
        format!(
            "{ALGORITHM} Credential={}/{date}/{}/{}/{TERMINATOR}, SignedHeaders={}, Signature={signature}",
            params.access_key_id,
            params.region,
            params.service,
            names.join(";"),
        )
    };

    // Check the request as it will be sent (with a placeholder signature).
    let placeholder = with_signature(&"0".repeat(64));
    let mut headers: Vec<(&str, &[u8])> = req
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("authorization"))
        .copied()
        .collect();
    headers.push(("authorization", placeholder.as_bytes()));
    let signed_req = RequestParts {
        headers: &headers,
        ..*req
    };
    let rules = Rules {
        service: params.service,
        sign_if_present: &[],
    };
    let parsed = parse(&signed_req, &rules).map_err(SignError)?;
    let string_to_sign = request_string_to_sign(&parsed, &signed_req).map_err(SignError)?;
    let signature = signing_key(&parsed, secret).sign(string_to_sign.as_bytes());
    Ok(with_signature(&hex(&signature)))
}
