//! One request on the AWS endpoint, in this order: a bounded body read in
//! bounded time; SigV4 authentication against kmsd's access keys; decoding
//! of the AWS JSON 1.1 body; the request through the service's pipeline
//! (the same resolve → authorize → execute → audit path as a socket
//! request); the AWS JSON answer with `x-amzn-RequestId`, the id of the
//! audit record. A request refused before it reaches the pipeline
//! (unauthenticated, malformed) gets its own audit record here.

use super::identity::{self, Callers};
use super::signing_keys::SigningKeys;
use crate::metrics::{METRICS, Meter, Transport};
use crate::regions::Regions;
use crate::service::KeyService;
use crate::service::dispatch::is_mutation;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request as HttpRequest, Response as HttpResponse, StatusCode};
use kmsd_audit::{AuditEvent, Principal};
use kmsd_awsjson::AwsError;
use kmsd_client::KmsError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What the listener's requests share: their bounds and the cache of
/// access-key callers.
pub struct Limits {
    pub max_body: usize,
    pub body_timeout: Duration,
    pub callers: Callers,
    /// SigV4 signing keys already derived.
    pub signing_keys: SigningKeys,
    /// The per-uid request and audit-byte rates, shared with the socket.
    pub rates: Arc<crate::server::limits::Limits>,
}

/// An answer refused before the pipeline, with its own HTTP status (413,
/// 408, ...) where AWS's rule (400, or 500 for faults) does not apply.
fn refusal(name: &'static str, status: u16, message: impl Into<String>) -> AwsError {
    AwsError {
        name,
        message: message.into(),
        status,
    }
}

fn respond(status: u16, request_id: &str, body: Vec<u8>) -> HttpResponse<Full<Bytes>> {
    let mut r = HttpResponse::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(request_id) {
        h.insert("x-amzn-RequestId", v);
    }
    r
}

fn refuse(request_id: &str, r: &AwsError) -> HttpResponse<Full<Bytes>> {
    let (status, body) = r.encode();
    respond(status, request_id, body)
}

/// The operation name a target names, for records of refused requests:
/// only ever a name kmsd knows (an attacker's text never becomes an event
/// name).
fn event_name(target: Option<&str>) -> &'static str {
    target
        .and_then(|t| t.strip_prefix("TrentService."))
        .and_then(|op| {
            kmsd_awsjson::AWS_OPERATIONS
                .iter()
                .copied()
                .find(|k| *k == op)
        })
        .unwrap_or("UnknownOperation")
}

/// Records a refusal and answers it.
async fn audited_refusal(
    svc: &KeyService,
    target: Option<&str>,
    principal: Principal,
    r: AwsError,
) -> HttpResponse<Full<Bytes>> {
    let request_id = svc.auditor().request_id();
    let ev = AuditEvent::new(event_name(target), request_id.clone(), principal)
        .with_error(r.name, r.message.clone());
    if let Err(e) = svc.auditor().submit(&ev).await {
        tracing::error!(error = %e, "the record of a refused http request was not written");
        let internal = refusal(
            "KMSInternalException",
            500,
            "the request's audit record could not be written",
        );
        return refuse(&request_id, &internal);
    }
    refuse(&request_id, &r)
}

fn header<'a>(headers: &'a hyper::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn handle(
    regions: &Regions,
    limits: &Limits,
    peer: SocketAddr,
    req: HttpRequest<Incoming>,
) -> HttpResponse<Full<Bytes>> {
    // Refusals before the request's region is known go to the home
    // region's trail.
    let svc = regions.home();
    let (parts, body) = req.into_parts();
    let target = header(&parts.headers, "x-amz-target");
    let anonymous = || identity::unauthenticated(None, peer);
    if parts.method != hyper::Method::POST || parts.uri.path() != "/" {
        let r = refusal(
            "UnknownOperationException",
            404,
            "kmsd serves AWS KMS's JSON protocol: POST / with X-Amz-Target",
        );
        return audited_refusal(svc, target, anonymous(), r).await;
    }
    let declared = header(&parts.headers, "content-length").and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limits.max_body) {
        let r = refusal(
            "SerializationException",
            413,
            format!("the request body is larger than {} bytes", limits.max_body),
        );
        return audited_refusal(svc, target, anonymous(), r).await;
    }
    let body = match tokio::time::timeout(
        limits.body_timeout,
        Limited::new(body, limits.max_body).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) => {
            let r = refusal(
                "SerializationException",
                413,
                format!("the request body could not be read: {e}"),
            );
            return audited_refusal(svc, target, anonymous(), r).await;
        }
        Err(_) => {
            let r = refusal(
                "RequestTimeoutException",
                408,
                "the request body was not sent in time",
            );
            return audited_refusal(svc, target, anonymous(), r).await;
        }
    };
    let sts = target.is_none() && is_get_caller_identity(&body);
    let service = if sts { "sts" } else { "kms" };
    let (access_key, svc) =
        match authenticate(regions, &limits.signing_keys, &parts, &body, service) {
            Ok(k) => k,
            Err((akid, r)) => {
                let who = identity::unauthenticated(akid.as_deref(), peer);
                return audited_refusal(svc, target, who, r).await;
            }
        };
    let (caller, principal) = match limits.callers.of(&access_key, regions.home(), peer).await {
        Ok(c) => c,
        Err(e) => {
            let who = identity::unauthenticated(Some(&access_key), peer);
            let r = refusal("AccessDeniedException", 400, e.message);
            return audited_refusal(&svc, target, who, r).await;
        }
    };
    if let Err(e) =
        limits
            .rates
            .check_request(caller.uid, event_name(target), body.len(), &principal)
    {
        // Counted for the uid's next RequestsThrottled record, not
        // audited one by one (docs/LIMITS.md).
        if let Some(m) = Meter::untimed(event_name(target)) {
            METRICS.answered(m, Transport::Http, Some(e.kind));
        }
        let (status, body) = kmsd_awsjson::encode_error(e.kind, &e.message);
        return respond(status, &svc.auditor().request_id(), body);
    }
    if sts {
        return get_caller_identity(&svc, &access_key, &caller, principal).await;
    }
    let decoded = match kmsd_awsjson::decode_request(target.unwrap_or(""), &body) {
        Ok(d) => d,
        Err(e) => {
            return audited_refusal(&svc, target, principal, e).await;
        }
    };
    run(&svc, caller, principal, decoded).await
}

/// Runs a decoded request through the pipeline and encodes the answer.
async fn run(
    svc: &Arc<KeyService>,
    caller: Arc<crate::service::Caller>,
    principal: Principal,
    decoded: kmsd_awsjson::Decoded,
) -> HttpResponse<Full<Bytes>> {
    let kmsd_awsjson::Decoded::Kms { request, dry_run } = decoded;
    let (result, request_id) = if dry_run {
        let o = svc.handle_dry_run(&caller, &principal, request);
        let id = o.request_id.clone();
        (
            svc.finish_async(o, Transport::Http).await.map(|()| None),
            id,
        )
    } else if is_mutation(&request) {
        // A mutation waits for two fsyncs: off the async runtime.
        let s = svc.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let o = s.handle(&caller, &principal, request);
            let id = o.request_id.clone();
            (s.finish(o, Transport::Http), id)
        })
        .await;
        match joined {
            Ok((r, id)) => (r.map(Some), id),
            Err(e) => (
                Err(KmsError::internal(format!(
                    "the request did not finish: {e}"
                ))),
                String::new(),
            ),
        }
    } else {
        let o = svc.handle(&caller, &principal, request);
        let id = o.request_id.clone();
        (svc.finish_async(o, Transport::Http).await.map(Some), id)
    };
    match result {
        Ok(Some(resp)) => respond(200, &request_id, kmsd_awsjson::encode_response(&resp)),
        Ok(None) => respond(200, &request_id, b"{}".to_vec()),
        Err(e) => {
            let (status, body) = kmsd_awsjson::encode_error(e.kind, &e.message);
            respond(status, &request_id, body)
        }
    }
}

/// SigV4 against kmsd's access keys (the home region's: identities are
/// global), for `service` (`kms`, or `sts` for GetCallerIdentity): the
/// access key and the service of the region the request is signed for. On
/// refusal: the access key id the request claimed (for the record) and the
/// answer.
fn authenticate(
    regions: &Regions,
    signing_keys: &SigningKeys,
    parts: &hyper::http::request::Parts,
    body: &[u8],
    service: &str,
) -> Result<(String, Arc<KeyService>), (Option<String>, AwsError)> {
    let headers: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let req = kmsd_sigv4::RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    let rules = kmsd_sigv4::Rules {
        service,
        ..kmsd_sigv4::KMS_RULES
    };
    let parsed = kmsd_sigv4::parse(&req, &rules).map_err(|e| (None, sigv4_refusal(&e)))?;
    let akid = parsed.access_key_id();
    let claimed = || Some(akid.to_owned());
    let Some(svc) = regions.get(parsed.region()) else {
        let msg = format!(
            "Credential should be scoped to a valid region: this kmsd serves {}, not '{}'.",
            served_list(&regions.names()),
            kmsd_client::logsafe::escape(parsed.region())
        );
        return Err((claimed(), refusal("InvalidSignatureException", 400, msg)));
    };
    let unrecognized = || {
        refusal(
            "UnrecognizedClientException",
            400,
            "The security token included in the request is invalid.",
        )
    };
    if parts.headers.contains_key("x-amz-security-token") {
        // kmsd issues no session credentials.
        return Err((claimed(), unrecognized()));
    }
    let key = regions.home().with_access_key(akid, |record, secret| {
        (record.status == kmsd_client::AccessKeyStatus::Active).then(|| {
            signing_keys.get(
                akid,
                parsed.date(),
                parsed.region(),
                parsed.service(),
                secret,
            )
        })
    });
    let Some(Some(key)) = key else {
        return Err((claimed(), unrecognized()));
    };
    kmsd_sigv4::verify_with_key(&parsed, &req, &key, svc.now().0)
        .map_err(|e| (claimed(), sigv4_refusal(&e)))?;
    Ok((akid.to_owned(), svc.clone()))
}

/// `'a'`, `'a' and 'b'`, `'a', 'b' and 'c'`.
fn served_list(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match q.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

fn sigv4_refusal(e: &kmsd_sigv4::SigV4Error) -> AwsError {
    refusal(e.aws_exception_name(), 400, e.to_string())
}

/// STS's `GetCallerIdentity` (Query protocol), which the aws CLI sends as
/// `Action=GetCallerIdentity&Version=2011-06-15`.
fn is_get_caller_identity(body: &[u8]) -> bool {
    std::str::from_utf8(body).is_ok_and(|b| b.split('&').any(|kv| kv == "Action=GetCallerIdentity"))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Who kmsd thinks the caller is, as STS answers: the IAM-style ARN of the
/// access key's user (`arn:aws:iam::ACCOUNT:user/NAME`, the form key
/// policies may name), the access key id as `UserId`, and the account.
async fn get_caller_identity(
    svc: &KeyService,
    access_key_id: &str,
    caller: &crate::service::Caller,
    principal: Principal,
) -> HttpResponse<Full<Bytes>> {
    let request_id = svc.auditor().request_id();
    let account = &svc.config().account;
    let name = caller
        .user_name
        .clone()
        .unwrap_or_else(|| format!("uid-{}", caller.uid));
    let arn = format!("arn:aws:iam::{account}:user/{name}");
    let ev = AuditEvent::new("GetCallerIdentity", request_id.clone(), principal);
    if let Err(e) = svc.auditor().submit(&ev).await {
        tracing::error!(error = %e, "the record of GetCallerIdentity was not written");
        let internal = refusal(
            "KMSInternalException",
            500,
            "the request's audit record could not be written",
        );
        return refuse(&request_id, &internal);
    }
    let body = format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n\
         <GetCallerIdentityResult>\n<Arn>{}</Arn>\n<UserId>{}</UserId>\n<Account>{}</Account>\n\
         </GetCallerIdentityResult>\n<ResponseMetadata>\n<RequestId>{}</RequestId>\n\
         </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
        xml_escape(&arn),
        xml_escape(access_key_id),
        xml_escape(account),
        xml_escape(&request_id),
    );
    let mut r = respond(200, &request_id, body.into_bytes());
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/xml"),
    );
    r
}
