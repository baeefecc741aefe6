//! Every outcome of [`Broker::request`] and [`Broker::list`]: what the caller gets back and
//! the audit record written for it (decision, access type, rule, level, detail), with no
//! WebAssembly and no SOPS file.

use std::sync::{Arc, Mutex};

use agentsec_audit::{AccessType, AuditEntry, AuditLog, Decision, RunContext, read_entries};
use agentsec_broker::{Broker, Caller, CallerLimits, NoRedaction, Redaction, Refusal, Stop};
use agentsec_policy::{AgentId, Operation, Policy, SecretPath, SkillDigest, SkillName, SkillRef};
use agentsec_secrets::{MemoryStore, SecretValue};

const POLICY: &str = "access_control:
  secrets:
    db:
      allowed_agents: [ops/*]
      access_level: readonly
    db.root:
      allowed_agents: [ops/*]
      denied_agents: [ops/release]
    bin:
      allowed_agents: [ops/*]
    hooks:
      allowed_agents: [ops/*]
      access_level: post
";

const POST: Operation<'static> = Operation::Inject {
    method: "POST",
    destination: "https://ci.example:443",
};

struct Fixture {
    _dir: tempfile::TempDir,
    log: std::path::PathBuf,
    broker: Broker,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = MemoryStore::new();
    for (path, value, redact) in [
        ("db.password", &b"pw-value"[..], true),
        ("db.host", b"db.example", false),
        ("db.root", b"root-pw", true),
        ("bin.blob", b"\xff\xfe", true),
        ("hooks.deploy", b"https://hooks.example/x", true),
    ] {
        let path = SecretPath::parse(path).expect("path");
        store
            .insert(path, SecretValue::copy_from_slice(value), redact)
            .expect("insert");
    }
    let policy = Policy::from_sources(&[("policy.yaml", POLICY)]).expect("policy");
    let log = dir.path().join("audit.log");
    let audit = Arc::new(Mutex::new(AuditLog::open(&log).expect("audit log")));
    let broker = Broker::new(Arc::new(policy), Arc::new(store), audit);
    Fixture {
        _dir: dir,
        log,
        broker,
    }
}

fn caller<R: Redaction>(max_calls: u32, redaction: R) -> Caller<R> {
    let skill = SkillRef::new(
        SkillName::parse("db-check").expect("name"),
        SkillDigest::from_bytes([0; 32]),
    );
    let run = RunContext::new("ops/release", "db-check", "00".repeat(32), "run-1");
    Caller::new(
        AgentId::parse("ops/release").expect("agent"),
        skill,
        run,
        CallerLimits::new(max_calls, 1024),
        redaction,
    )
}

impl Fixture {
    fn entries(&self) -> Vec<AuditEntry> {
        self.broker.sync().expect("sync");
        let mut out = Vec::new();
        read_entries(&[&self.log], |e| out.push(e)).expect("read");
        out
    }

    /// The last record as (decision, access type, path, rule, level, detail).
    fn last(
        &self,
    ) -> (
        Decision,
        AccessType,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    ) {
        let e = self.entries().pop().expect("a record");
        (
            e.decision,
            e.access_type,
            e.secret_path,
            e.rule,
            e.access_level,
            e.detail,
        )
    }
}

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

#[test]
fn a_granted_read_is_released_after_its_record() {
    let f = fixture();
    let mut c = caller(100, NoRedaction);
    let released = f
        .broker
        .request(&mut c, Operation::Read, "db.password")
        .expect("released");
    assert_eq!(released.value.expose_secret(), b"pw-value");
    assert_eq!(released.path, "db.password");
    assert!(released.redact);
    assert_eq!(released.level.as_str(), "readonly");
    assert_eq!(
        f.last(),
        (
            Decision::Allow,
            AccessType::Read,
            "db.password".into(),
            s("db"),
            s("readonly"),
            None
        )
    );
    // A value clear in the store is released unredacted; the bracketed form is canonicalised.
    let host = f
        .broker
        .request(&mut c, Operation::Read, "[\"db\"][\"host\"]")
        .expect("released");
    assert!(!host.redact);
    assert_eq!(host.path, "db.host");
    assert_eq!(c.stats().released, 2);
}

#[test]
fn a_denial_is_recorded_with_the_denying_rule() {
    let f = fixture();
    let mut c = caller(100, NoRedaction);
    let refused = f.broker.request(&mut c, Operation::Read, "db.root");
    let Err(Refusal::Denied(message)) = refused else {
        panic!("not denied")
    };
    assert!(message.contains("db.root"), "{message}");
    assert_eq!(
        f.last(),
        (
            Decision::Deny,
            AccessType::Read,
            "db.root".into(),
            s("db.root"),
            None,
            None
        )
    );
    assert_eq!(c.stats().denied, 1);
}

#[test]
fn a_post_secret_is_injected_but_never_read() {
    let f = fixture();
    let mut c = caller(100, NoRedaction);
    assert!(matches!(
        f.broker.request(&mut c, Operation::Read, "hooks.deploy"),
        Err(Refusal::Denied(_))
    ));
    assert_eq!(
        f.last(),
        (
            Decision::Deny,
            AccessType::Read,
            "hooks.deploy".into(),
            s("hooks"),
            s("post"),
            s("level post does not permit read")
        )
    );
    let released = f
        .broker
        .request(&mut c, POST, "hooks.deploy")
        .expect("injected");
    assert_eq!(released.level.as_str(), "post");
    assert_eq!(
        f.last(),
        (
            Decision::Allow,
            AccessType::Inject,
            "hooks.deploy".into(),
            s("hooks"),
            s("post"),
            s("POST https://ci.example:443")
        )
    );
}

#[test]
fn what_the_store_lacks_is_recorded_as_allowed_with_the_outcome() {
    let f = fixture();
    let mut c = caller(100, NoRedaction);
    let Err(Refusal::NotFound(message)) = f.broker.request(&mut c, Operation::Read, "db.nothing")
    else {
        panic!("not not-found")
    };
    assert_eq!(message, "no secret at `db.nothing`");
    let (decision, access, _, rule, level, detail) = f.last();
    assert_eq!(
        (decision, access, rule, level),
        (Decision::Allow, AccessType::Read, s("db"), s("readonly"))
    );
    assert!(
        detail
            .as_deref()
            .is_some_and(|d| d.starts_with("not-found")),
        "{detail:?}"
    );

    // With an operation, its detail comes first.
    assert!(matches!(
        f.broker.request(&mut c, POST, "hooks.nothing"),
        Err(Refusal::NotFound(_))
    ));
    let (_, access, _, _, _, detail) = f.last();
    assert_eq!(access, AccessType::Inject);
    assert!(
        detail
            .as_deref()
            .is_some_and(|d| d.starts_with("POST https://ci.example:443; not-found")),
        "{detail:?}"
    );
}

#[test]
fn a_mapping_is_refused_with_the_entries_the_caller_may_read() {
    let f = fixture();
    let mut c = caller(100, NoRedaction);
    let Err(Refusal::InvalidPath(message)) = f.broker.request(&mut c, Operation::Read, "db") else {
        panic!("not invalid-path")
    };
    assert_eq!(
        message,
        "`db` is not a secret but a mapping or list; entries you may read: password, host"
    );
    assert_eq!(
        f.last(),
        (
            Decision::Allow,
            AccessType::Read,
            "db".into(),
            s("db"),
            s("readonly"),
            s("not-a-leaf")
        )
    );
}

#[test]
fn binary_data_is_not_read_as_text() {
    let f = fixture();
    let mut c = caller(100, NoRedaction);
    let Err(Refusal::InvalidPath(message)) = f.broker.request(&mut c, Operation::Read, "bin.blob")
    else {
        panic!("not invalid-path")
    };
    assert!(message.contains("binary data"), "{message}");
    assert_eq!(f.last().5, s("not-utf8"));
    assert_eq!(c.stats().released, 0);
}

#[test]
fn a_path_that_does_not_parse_is_denied_on_the_record() {
    let f = fixture();
    let mut c = caller(100, NoRedaction);
    let Err(Refusal::InvalidPath(message)) = f.broker.request(&mut c, Operation::Read, "db..x")
    else {
        panic!("not invalid-path")
    };
    assert!(message.starts_with("invalid secret path: "), "{message}");
    let (decision, access, _, rule, level, detail) = f.last();
    assert_eq!(
        (decision, access, rule, level),
        (Decision::Deny, AccessType::Read, None, None)
    );
    assert!(
        detail
            .as_deref()
            .is_some_and(|d| d.starts_with("invalid-path")),
        "{detail:?}"
    );
}

/// A redaction that can learn nothing.
struct Full;

impl Redaction for Full {
    fn learn(&mut self, _path: &str, _value: &[u8]) -> Result<(), String> {
        Err("full".to_owned())
    }

    fn redact_text(&mut self, text: &str) -> String {
        text.to_owned()
    }
}

#[test]
fn a_value_that_cannot_be_redacted_stops_the_caller_unreleased() {
    let f = fixture();
    let mut c = caller(100, Full);
    let refused = f.broker.request(&mut c, Operation::Read, "db.password");
    assert!(matches!(refused, Err(Refusal::Stop(Stop::Redaction))));
    assert_eq!(
        f.last(),
        (
            Decision::Deny,
            AccessType::Read,
            "db.password".into(),
            s("db"),
            None,
            s("limit: redaction limit: full")
        )
    );
    // A clear value needs no redaction, but the caller is stopped now.
    let again = f.broker.request(&mut c, Operation::Read, "db.host");
    assert!(matches!(again, Err(Refusal::Stop(Stop::Redaction))));
    assert_eq!(c.stats().released, 0);
}

#[test]
fn the_call_limit_stops_the_caller_on_the_record() {
    let f = fixture();
    let mut c = caller(2, NoRedaction);
    f.broker
        .request(&mut c, Operation::Read, "db.password")
        .expect("first");
    assert_eq!(
        f.broker.list(&mut c, "db").expect("second"),
        ["db.password", "db.host"]
    );
    let third = f.broker.request(&mut c, Operation::Read, "db.password");
    assert!(matches!(third, Err(Refusal::Stop(Stop::SecretCalls))));
    assert_eq!(
        f.last(),
        (
            Decision::Deny,
            AccessType::Read,
            "db.password".into(),
            None,
            None,
            s("limit: more than 2 secret calls in one run")
        )
    );
    assert_eq!(f.entries().len(), 3);
}

#[test]
fn a_listing_names_only_what_the_policy_lets_the_caller_list() {
    let f = fixture();
    let mut c = caller(100, NoRedaction);
    let names = f.broker.list(&mut c, "").expect("listed");
    assert_eq!(
        names,
        ["db.password", "db.host", "bin.blob", "hooks.deploy"]
    );
    let (decision, access, _, _, _, detail) = f.last();
    assert_eq!((decision, access), (Decision::Allow, AccessType::List));
    assert_eq!(detail, s("4 names"));
}

#[test]
fn a_cancelled_caller_is_refused_and_the_refusal_is_recorded_once() {
    let f = fixture();
    let mut c = caller(100, NoRedaction);
    c.cancel_token().cancel();
    let refused = f.broker.request(&mut c, Operation::Read, "db.password");
    assert!(matches!(refused, Err(Refusal::Stop(Stop::Cancelled))));
    assert_eq!(
        f.entries().len(),
        1,
        "the request that found the token tripped"
    );
    let again = f.broker.request(&mut c, Operation::Read, "db.password");
    assert!(matches!(again, Err(Refusal::Stop(Stop::Cancelled))));
    assert_eq!(f.entries().len(), 1, "nothing more once stopped");
}
