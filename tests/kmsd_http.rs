//! kmsd's AWS endpoint with real clients: boto3 (every implemented
//! operation, errors, paginators), the aws CLI (the AWS KMS hands-on lab),
//! and raw requests signed here (SigV4 negative cases, bad input, idle and
//! slow clients). Every refusal is in the audit trail with the access key
//! id and the source address.

mod common;
#[path = "common/http.rs"]
mod http;

use http::{amz_date, head_of, signed};

use http::{Endpoint, endpoint, has_aws_cli, python_has_boto3, suite_file};
use kmsd_client::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn boto3_every_operation_errors_and_paginators() {
    assert!(
        python_has_boto3(),
        "boto3 is missing: .ci/run installs it (pip install boto3 awscli)"
    );
    let e = endpoint(&[]);
    let (akid, secret) = e.access_key("user:root");
    let (other, other_secret) = e.access_key(&format!("uid:{}", 3_900_000));
    let out = Command::new("python3")
        .arg(suite_file("boto3_suite.py"))
        .env("KMSD_ENDPOINT", e.url())
        .env("AWS_ACCESS_KEY_ID", &akid)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_DEFAULT_REGION", "local")
        .env("KMSD_OTHER_KEY_ID", &other)
        .env("KMSD_OTHER_SECRET", &other_secret)
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("run python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "boto3 suite failed:\n{text}");
    assert!(text.contains("0 failures"), "{text}");
    // Refusals are audited with the access key and the source address.
    let recs = e.records();
    let refused = recs
        .iter()
        .find(|r| r["errorCode"] == "InvalidSignatureException")
        .expect("the wrong-secret request is in the trail");
    assert_eq!(refused["principal"]["accessKeyId"], akid.as_str());
    assert_eq!(refused["principal"]["sourceIPAddress"], "127.0.0.1");
    assert!(
        recs.iter()
            .any(|r| r["errorCode"] == "UnrecognizedClientException"
                && r["principal"]["accessKeyId"] == "AKIAAAAAAAAAAAAAAAAA")
    );
}

#[test]
fn aws_cli_runs_the_kms_hands_on_lab() {
    assert!(
        has_aws_cli(),
        "the aws CLI is missing: .ci/run installs it (pip install awscli)"
    );
    let e = endpoint(&[]);
    let (akid, secret) = e.access_key("user:root");
    let lab = tempfile::tempdir().expect("lab dir");
    let out = Command::new("bash")
        .arg(suite_file("aws_cli_lab.sh"))
        .env("KMSD_ENDPOINT", e.url())
        .env("AWS_ACCESS_KEY_ID", &akid)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_DEFAULT_REGION", "local")
        .env("LAB_DIR", lab.path())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run the lab");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(
        out.status.success() && text.contains("lab: all steps passed"),
        "{text}"
    );
}

/// One raw HTTP/1.1 request; the status and body of the answer.
fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&out);
                if let Some(i) = text.find("\r\n\r\n") {
                    let len = text[..i]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if out.len() >= i + 4 + len {
                        break;
                    }
                }
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A refused request: label, headers, body, the exception expected.
type Case = (&'static str, Vec<(String, String)>, String, &'static str);

#[test]
fn sigv4_refusals_are_clear_and_audited() {
    let e = endpoint(&[]);
    let (akid, secret) = e.access_key("user:root");
    let key = (akid.as_str(), secret.as_str());
    let ok_body = "{}";
    let send = |headers: &[(String, String)], body: &str| {
        raw(e.addr, &head_of(headers, body), body.as_bytes())
    };
    let (st, body) = send(
        &signed(e.addr, key, "local", &amz_date(0), "ListKeys", ok_body),
        ok_body,
    );
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"Keys\""), "{body}");

    let mut cases: Vec<Case> = Vec::new();
    let good = signed(e.addr, key, "local", &amz_date(0), "ListKeys", ok_body);
    cases.push((
        "wrong secret",
        signed(
            e.addr,
            (key.0, "wrong-secret-wrong-secret-wrong-secret!!"),
            "local",
            &amz_date(0),
            "ListKeys",
            ok_body,
        ),
        ok_body.into(),
        "InvalidSignatureException",
    ));
    cases.push((
        "altered body",
        good.clone(),
        "{\"Limit\": 1}".into(),
        "InvalidSignatureException",
    ));
    let mut altered = good.clone();
    altered[3].1 = "TrentService.ListAliases".into();
    cases.push((
        "altered signed header",
        altered,
        ok_body.into(),
        "InvalidSignatureException",
    ));
    cases.push((
        "expired date",
        signed(
            e.addr,
            key,
            "local",
            &amz_date(-20 * 60),
            "ListKeys",
            ok_body,
        ),
        ok_body.into(),
        "InvalidSignatureException",
    ));
    cases.push((
        "future date",
        signed(
            e.addr,
            key,
            "local",
            &amz_date(20 * 60),
            "ListKeys",
            ok_body,
        ),
        ok_body.into(),
        "InvalidSignatureException",
    ));
    cases.push((
        "other region",
        signed(e.addr, key, "eu-west-1", &amz_date(0), "ListKeys", ok_body),
        ok_body.into(),
        "InvalidSignatureException",
    ));
    cases.push((
        "unknown access key",
        signed(
            e.addr,
            ("AKIAZZZZZZZZZZZZZZZZ", key.1),
            "local",
            &amz_date(0),
            "ListKeys",
            ok_body,
        ),
        ok_body.into(),
        "UnrecognizedClientException",
    ));
    let no_auth: Vec<(String, String)> = good
        .iter()
        .filter(|(k, _)| k != "authorization")
        .cloned()
        .collect();
    cases.push((
        "no authorization",
        no_auth,
        ok_body.into(),
        "MissingAuthenticationTokenException",
    ));
    for (label, headers, body, want) in &cases {
        let (st, answer) = send(headers, body);
        assert_eq!(st, 400, "{label}: {answer}");
        assert!(answer.contains(want), "{label}: {answer}");
    }

    // Inactive, then deleted: the captured request replays to a refusal.
    let captured = signed(e.addr, key, "local", &amz_date(0), "ListKeys", ok_body);
    let c = e.kmsd.client();
    c.call(UpdateAccessKeyRequest {
        access_key_id: akid.clone(),
        status: AccessKeyStatus::Inactive,
    })
    .unwrap();
    let (st, answer) = send(&captured, ok_body);
    assert!(
        st == 400 && answer.contains("UnrecognizedClientException"),
        "inactive: {answer}"
    );
    c.call(UpdateAccessKeyRequest {
        access_key_id: akid.clone(),
        status: AccessKeyStatus::Active,
    })
    .unwrap();
    let (st, _) = send(&captured, ok_body);
    assert_eq!(st, 200, "active again: the same request is accepted");
    c.call(DeleteAccessKeyRequest {
        access_key_id: akid.clone(),
    })
    .unwrap();
    let (st, answer) = send(&captured, ok_body);
    assert!(
        st == 400 && answer.contains("UnrecognizedClientException"),
        "deleted: {answer}"
    );

    let recs = e.records();
    let refusals = recs
        .iter()
        .filter(|r| r["principal"]["sourceIPAddress"] == "127.0.0.1" && !r["errorCode"].is_null())
        .count();
    assert!(refusals >= cases.len() + 2, "{refusals} refusals audited");
}

#[test]
fn bad_input_gets_clean_errors_and_the_listener_keeps_serving() {
    let e = endpoint(&[]);
    let (akid, secret) = e.access_key("user:root");
    let key = (akid.as_str(), secret.as_str());
    let call = |op: &str, body: &str| {
        let h = signed(e.addr, key, "local", &amz_date(0), op, body);
        raw(e.addr, &head_of(&h, body), body.as_bytes())
    };
    for (label, op, body, want) in [
        ("invalid JSON", "ListKeys", "{", "SerializationException"),
        ("not an object", "ListKeys", "[1]", "SerializationException"),
        (
            "wrong type",
            "ListKeys",
            "{\"Limit\": \"ten\"}",
            "SerializationException",
        ),
        (
            "unknown operation",
            "NoSuchOperation",
            "{}",
            "UnknownOperationException",
        ),
        (
            "unsupported operation",
            "Sign",
            "{}",
            "UnsupportedOperationException",
        ),
        ("missing member", "DescribeKey", "{}", "ValidationException"),
    ] {
        let (st, answer) = call(op, body);
        assert_eq!(st, 400, "{label}: {answer}");
        assert!(answer.contains(want), "{label}: {answer}");
    }
    let (st, answer) = call("ListKeys", "{\"Limit\": 5, \"SomethingNew\": true}");
    assert_eq!(st, 200, "unknown members are ignored: {answer}");

    // An oversized body is refused before it is read.
    let big = format!("{{\"Plaintext\": \"{}\"}}", "A".repeat(300 << 10));
    let (st, _) = call("Encrypt", &big);
    assert_eq!(st, 413);

    // 1,000 idle connections and a slow-loris client from other loopback
    // addresses: a normal client is still served.
    let idle: Vec<TcpStream> = (0..1000)
        .filter_map(|i| {
            let src = format!("127.0.{}.{}:0", 1 + i / 250, 2 + i % 250);
            let sock = socket2_connect(&src, e.addr);
            sock.ok()
        })
        .collect();
    assert!(idle.len() >= 900, "{} idle connections made", idle.len());
    let mut slow = TcpStream::connect(e.addr).expect("slow client");
    slow.write_all(b"POST / HTTP/1.1\r\nhost: x\r\n").unwrap();
    let t = Instant::now();
    let (st, answer) = call("ListKeys", "{}");
    assert_eq!(st, 200, "{answer}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    drop(idle);
}

/// Connects from a chosen loopback source address.
fn socket2_connect(src: &str, dst: SocketAddr) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let src: SocketAddr = src.parse().map_err(std::io::Error::other)?;
    let (SocketAddr::V4(src), SocketAddr::V4(dst)) = (src, dst) else {
        return Err(std::io::Error::other("ipv4 only"));
    };
    // SAFETY: plain socket calls on a descriptor this function owns until
    // it is handed to TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let to_sockaddr = |a: std::net::SocketAddrV4| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: a.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let s = to_sockaddr(src);
        let d = to_sockaddr(dst);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, &s as *const _ as *const libc::sockaddr, len) != 0
            || libc::connect(fd, &d as *const _ as *const libc::sockaddr, len) != 0
        {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(TcpStream::from_raw_fd(fd))
    }
}

/// Each served region is its own namespace (keys, aliases, trail), as in
/// AWS: what is made in one region is unknown in the other; the native
/// socket and the access keys belong to the home region; the layout
/// survives a restart with the regions listed in another order, and a start
/// without the home region is refused.
#[test]
fn each_region_is_its_own_namespace() {
    use serde_json::Value;
    let mut e = endpoint(&["--region", "eu-west-1", "--region", "us-east-1"]);
    let (akid, secret) = e.access_key("user:root");
    let call = |e: &Endpoint, region: &str, op: &str, body: &str| -> (u16, Value, String) {
        let h = signed(
            e.addr,
            (akid.as_str(), secret.as_str()),
            region,
            &amz_date(0),
            op,
            body,
        );
        let (st, b) = raw(e.addr, &head_of(&h, body), body.as_bytes());
        (st, serde_json::from_str(&b).unwrap_or(Value::Null), b)
    };
    let create = |e: &Endpoint, region: &str| -> (String, String) {
        let (st, v, b) = call(e, region, "CreateKey", r#"{"Description":"r"}"#);
        assert_eq!(st, 200, "{region}: {b}");
        let m = &v["KeyMetadata"];
        (
            m["KeyId"].as_str().expect("KeyId").to_string(),
            m["Arn"].as_str().expect("Arn").to_string(),
        )
    };
    let (eu_id, eu_arn) = create(&e, "eu-west-1");
    let (us_id, us_arn) = create(&e, "us-east-1");
    assert!(eu_arn.starts_with("arn:aws:kms:eu-west-1:"), "{eu_arn}");
    assert!(us_arn.starts_with("arn:aws:kms:us-east-1:"), "{us_arn}");

    let ids = |e: &Endpoint, region: &str| -> Vec<String> {
        let (st, v, b) = call(e, region, "ListKeys", "{}");
        assert_eq!(st, 200, "{b}");
        v["Keys"]
            .as_array()
            .expect("Keys")
            .iter()
            .map(|k| k["KeyId"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(ids(&e, "eu-west-1"), vec![eu_id.clone()]);
    assert_eq!(ids(&e, "us-east-1"), vec![us_id.clone()]);

    // Unknown in the other region, by id and by ARN.
    for r in [eu_id.as_str(), eu_arn.as_str()] {
        let (st, _, b) = call(
            &e,
            "us-east-1",
            "DescribeKey",
            &format!(r#"{{"KeyId":"{r}"}}"#),
        );
        assert_eq!(st, 400, "{b}");
        assert!(b.contains("NotFoundException"), "{b}");
    }

    // One alias name in both regions, two targets.
    for (region, id) in [("eu-west-1", &eu_id), ("us-east-1", &us_id)] {
        let body = format!(r#"{{"AliasName":"alias/app","TargetKeyId":"{id}"}}"#);
        let (st, _, b) = call(&e, region, "CreateAlias", &body);
        assert_eq!(st, 200, "{region}: {b}");
    }
    let enc = r#"{"KeyId":"alias/app","Plaintext":"aGVsbG8="}"#;
    let (st, v, b) = call(&e, "eu-west-1", "Encrypt", enc);
    assert_eq!(st, 200, "{b}");
    assert_eq!(v["KeyId"], Value::from(eu_arn.clone()));
    let blob = v["CiphertextBlob"].as_str().expect("blob").to_string();
    let dec = format!(r#"{{"CiphertextBlob":"{blob}"}}"#);
    let (st, v, b) = call(&e, "eu-west-1", "Decrypt", &dec);
    assert_eq!(st, 200, "{b}");
    assert_eq!(v["Plaintext"], "aGVsbG8=");
    let (st, _, b) = call(&e, "us-east-1", "Decrypt", &dec);
    assert_eq!(
        st, 400,
        "a blob of eu-west-1 does not decrypt in us-east-1: {b}"
    );

    // A region kmsd does not serve: refused, naming the served ones.
    let (st, _, b) = call(&e, "ap-south-1", "ListKeys", "{}");
    assert_eq!(st, 400, "{b}");
    assert!(
        b.contains("'eu-west-1' and 'us-east-1'") && b.contains("ap-south-1"),
        "{b}"
    );

    // The native socket serves the home region (the first, on a new state dir).
    let listed = e
        .kmsd
        .client()
        .call(ListKeysRequest::default())
        .expect("list over the socket");
    let socket_ids: Vec<String> = listed.keys.iter().map(|k| k.key_id.clone()).collect();
    assert_eq!(socket_ids, vec![eu_id.clone()]);

    // Each region has its own trail.
    let home_trail = e.records();
    assert!(
        home_trail
            .iter()
            .any(|r| r["eventName"] == "CreateKey" && r["resources"].to_string().contains(&eu_id)),
        "the home trail has eu-west-1's CreateKey"
    );
    assert!(
        !home_trail.iter().any(|r| r.to_string().contains(&us_id)),
        "the home trail knows nothing of us-east-1's key"
    );
    let us_trail = kmsd_audit::audit_dir(&e.kmsd.state_dir.join("regions/us-east-1"));
    let us_records: Vec<String> = kmsd_audit::query(&us_trail, kmsd_audit::Filter::default())
        .expect("query us-east-1")
        .map(|r| r.expect("entry").raw)
        .collect();
    assert!(
        us_records
            .iter()
            .any(|r| r.contains("CreateAlias") && r.contains(&us_id)),
        "us-east-1's trail has its CreateAlias"
    );

    // Restart with the regions in another order: the same namespaces.
    e.kmsd.terminate();
    e.kmsd.extra_args = vec![
        "--http-listen".into(),
        e.addr.to_string(),
        "--region".into(),
        "us-east-1".into(),
        "--region".into(),
        "eu-west-1".into(),
    ];
    e.kmsd.spawn();
    assert_eq!(ids(&e, "eu-west-1"), vec![eu_id.clone()]);
    assert_eq!(ids(&e, "us-east-1"), vec![us_id.clone()]);
    let listed = e.kmsd.client().call(ListKeysRequest::default()).unwrap();
    assert_eq!(listed.keys.len(), 1);
    assert_eq!(
        listed.keys[0].key_id, eu_id,
        "the home region stays eu-west-1"
    );

    // Without the home region: refused at start, naming it.
    e.kmsd.terminate();
    let out = Command::new(common::bin("kmsd"))
        .arg("--state-dir")
        .arg(&e.kmsd.state_dir)
        .arg("--socket")
        .arg(e.kmsd.state_dir.join("other.sock"))
        .args(["--region", "us-east-1"])
        .output()
        .expect("run kmsd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'eu-west-1'") && err.contains("--region"),
        "{err}"
    );
}

/// The per-uid request rate (docs/LIMITS.md) holds on the AWS endpoint:
/// an access key's requests draw on its user's bucket, the excess gets
/// `ThrottlingException` (HTTP 400) and is reported in one
/// `RequestsThrottled` record with the access key id.
#[test]
fn access_key_callers_are_throttled_like_socket_callers() {
    let e = endpoint(&[
        "--requests-per-sec",
        "2",
        "--request-burst",
        "5",
        "--throttle-report-secs",
        "1",
    ]);
    let (akid, secret) = e.access_key("uid:65534");
    let mut throttled = 0;
    let mut answered = 0;
    for _ in 0..30 {
        let h = signed(
            e.addr,
            (akid.as_str(), secret.as_str()),
            "local",
            &amz_date(0),
            "ListKeys",
            "{}",
        );
        let (st, body) = raw(e.addr, &head_of(&h, "{}"), b"{}");
        if body.contains("ThrottlingException") {
            assert_eq!(st, 400, "{body}");
            assert!(body.contains("Rate exceeded"), "{body}");
            throttled += 1;
        } else {
            answered += 1;
        }
    }
    assert!(throttled >= 20, "{throttled} of 30 throttled");
    assert!(answered >= 5, "the burst is served: {answered}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = e
            .records()
            .into_iter()
            .find(|r| r["eventName"] == "RequestsThrottled");
        if let Some(r) = report {
            assert_eq!(
                r["principal"]["accessKeyId"],
                serde_json::Value::from(akid.clone()),
                "{r}"
            );
            assert!(
                r["requestParameters"]["ThrottledRequests"].as_u64() >= Some(1),
                "{r}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no RequestsThrottled record");
        std::thread::sleep(Duration::from_millis(100));
    }
}
