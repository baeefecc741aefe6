//! The broker decides operations, not paths: what each access level lets a caller do,
//! what is recorded, and that a listing never releases a value.

use std::sync::{Arc, Mutex};

use agentsec_audit::{AuditLog, RunContext};
use agentsec_broker::{Broker, Caller, CallerLimits, CancelToken, NoRedaction, Refusal, Stop};
use agentsec_policy::{AgentId, Operation, Policy, SecretPath, SkillDigest, SkillName, SkillRef};
use agentsec_secrets::{MemoryStore, SecretValue};
use serde_json::Value;

const POLICY: &str = "\
access_control:
  secrets:
    db:
      allowed_agents: [ops/*]
    hooks:
      allowed_agents: [ops/*]
      access_level: post
    keys:
      allowed_agents: [ops/*]
      access_level: sign
";

struct World {
    broker: Broker,
    dir: tempfile::TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = MemoryStore::new();
    for (path, value) in [
        ("db.pw", "pw-1"),
        ("hooks.deploy", "hook-2"),
        ("keys.ci", "key-3"),
    ] {
        store
            .insert(
                SecretPath::parse(path).expect("path"),
                SecretValue::copy_from_slice(value.as_bytes()),
                true,
            )
            .expect("inserts");
    }
    let policy = Policy::from_sources(&[("p.yaml", POLICY)]).expect("policy");
    let audit = AuditLog::open(dir.path().join("audit.log")).expect("log");
    World {
        broker: Broker::new(
            Arc::new(policy),
            Arc::new(store),
            Arc::new(Mutex::new(audit)),
        ),
        dir,
    }
}

fn caller(max_calls: u32) -> Caller<NoRedaction> {
    Caller::new(
        AgentId::parse("ops/a").expect("agent"),
        SkillRef::new(
            SkillName::parse("s").expect("name"),
            SkillDigest::from_bytes([0; 32]),
        ),
        RunContext::new("ops/a", "s", "00".repeat(32), "r"),
        CallerLimits::new(max_calls, 1024),
        NoRedaction,
    )
}

fn records(w: &World) -> Vec<Value> {
    std::fs::read_to_string(w.dir.path().join("audit.log"))
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

#[test]
fn each_level_permits_its_operations_and_every_request_is_on_record() {
    let w = world();
    let mut c = caller(100);
    let post = Operation::Inject {
        method: "POST",
        destination: "https://h.example:443",
    };
    let get = Operation::Inject {
        method: "GET",
        destination: "https://h.example:443",
    };
    let sign = Operation::Sign {
        key: "SHA256:abc",
        target: agentsec_policy::SignTarget::Unbound,
    };
    let ok =
        |r: Result<agentsec_broker::Released, Refusal>| r.map(|v| v.value.expose_secret().to_vec());
    assert_eq!(
        ok(w.broker.request(&mut c, Operation::Read, "db.pw")).expect("read"),
        b"pw-1"
    );
    assert_eq!(
        ok(w.broker.request(&mut c, get, "db.pw")).expect("GET"),
        b"pw-1"
    );
    assert!(matches!(
        w.broker.request(&mut c, post, "db.pw"),
        Err(Refusal::Denied(_))
    ));
    assert!(
        matches!(w.broker.request(&mut c, Operation::Read, "hooks.deploy"), Err(Refusal::Denied(m)) if m.contains("may only be used by the host"))
    );
    assert_eq!(
        ok(w.broker.request(&mut c, post, "hooks.deploy")).expect("POST"),
        b"hook-2"
    );
    assert!(matches!(
        w.broker.request(&mut c, Operation::Read, "keys.ci"),
        Err(Refusal::Denied(_))
    ));
    assert_eq!(
        ok(w.broker.request(&mut c, sign, "keys.ci")).expect("sign"),
        b"key-3"
    );
    // Every name is listed at every level.
    assert_eq!(
        w.broker.list(&mut c, "").expect("list"),
        ["db.pw", "hooks.deploy", "keys.ci"]
    );
    let log = records(&w);
    let row = |i: usize| {
        (
            log[i]["access_type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            log[i]["decision"].as_str().unwrap_or_default().to_owned(),
            log[i]["detail"].as_str().map(str::to_owned),
        )
    };
    assert_eq!(row(0), ("read".into(), "allow".into(), None));
    assert_eq!(
        row(1),
        (
            "inject".into(),
            "allow".into(),
            Some("GET https://h.example:443".into())
        )
    );
    assert_eq!(
        row(2),
        (
            "inject".into(),
            "deny".into(),
            Some("POST https://h.example:443; level readonly does not permit inject".into())
        )
    );
    // A level denial says which level refused, unlike a `denied_agents` deny.
    assert_eq!(
        row(3),
        (
            "read".into(),
            "deny".into(),
            Some("level post does not permit read".into())
        )
    );
    assert_eq!(log[3]["access_level"], "post");
    assert_eq!(log[3]["rule"], "hooks");
    assert_eq!(row(4).0, "inject");
    assert_eq!(log[4]["access_level"], "post");
    assert_eq!(
        row(6),
        ("sign".into(), "allow".into(), Some("key SHA256:abc".into()))
    );
    assert_eq!(row(7).0, "list");
    assert_eq!(c.stats().calls, 8);
    assert_eq!(c.stats().denied, 3);
}

#[test]
fn a_listing_never_releases_a_value() {
    let w = world();
    let mut c = caller(100);
    let refused = w.broker.request(&mut c, Operation::List, "hooks.deploy");
    assert!(
        matches!(refused, Err(Refusal::InvalidPath(_))),
        "a post value must not come out of a List"
    );
    let log = records(&w);
    assert_eq!(log[0]["decision"], "deny");
    assert_eq!(log[0]["access_type"], "list");
}

#[test]
fn the_call_limit_and_the_cancel_token_stop_the_caller() {
    let w = world();
    let mut c = caller(1);
    assert!(w.broker.request(&mut c, Operation::Read, "db.pw").is_ok());
    assert!(matches!(
        w.broker.request(&mut c, Operation::Read, "db.pw"),
        Err(Refusal::Stop(Stop::SecretCalls))
    ));
    // Once stopped, always stopped, and nothing more is recorded.
    let before = records(&w).len();
    assert!(matches!(
        w.broker.list(&mut c, ""),
        Err(Refusal::Stop(Stop::SecretCalls))
    ));
    assert_eq!(records(&w).len(), before);

    let cancel = CancelToken::new();
    let mut c = caller(100).with_cancel(cancel.clone());
    assert!(w.broker.request(&mut c, Operation::Read, "db.pw").is_ok());
    cancel.cancel();
    assert!(matches!(
        w.broker.request(&mut c, Operation::Read, "db.pw"),
        Err(Refusal::Stop(Stop::Cancelled))
    ));
    assert_eq!(c.stopped(), Some(&Stop::Cancelled));
}
