use kmsd_policy::*;
use std::time::Instant;
fn main() {
    let dir = FakeDirectory::new().user("alice", 1000, 100).group("users", 100, &[]);
    let alice = Caller::resolve(1000, 100, None, &dir);
    let kp = Policy::parse(&default_key_policy(0, 1000)).unwrap();
    let svc = Policy::parse(&default_service_policy(0)).unwrap();
    let ec = [("app".to_string(), "db".to_string()), ("file".to_string(), "/a/b".to_string())].into_iter().collect();
    let ctx = RequestContext::with_encryption_context(&ec);
    let n = 1_000_000;
    for (name, caller) in [("creator (allow, 2nd stmt)", alice.clone()), ("stranger (implicit deny)", Caller::resolve(1001, 100, None, &dir))] {
        let t = Instant::now();
        let mut allowed = 0;
        for _ in 0..n {
            let q = Query { caller: &caller, admin_uid: 0, action: "kms:GenerateDataKey",
                key: Some(KeyScope { key_id: "k", arn: "arn:aws:kms:local:0:key/k", policy: &kp, grants: &[] }),
                service_policy: &svc, context: &ctx };
            if evaluate(&q).is_allowed() { allowed += 1; }
        }
        println!("{name}: {:.0} ns/eval (allowed {allowed})", t.elapsed().as_nanos() as f64 / n as f64);
    }
    let text = default_key_policy(0, 1000);
    let t = Instant::now();
    for _ in 0..100_000 { Policy::parse(&text).unwrap(); }
    println!("parse default key policy: {:.0} ns", t.elapsed().as_nanos() as f64 / 100_000.0);
    let t = Instant::now();
    for _ in 0..10_000 { Caller::resolve(0, 0, None, &SystemDirectory); }
    println!("Caller::resolve via SystemDirectory: {:.1} us", t.elapsed().as_nanos() as f64 / 10_000.0 / 1000.0);
}
