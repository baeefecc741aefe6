//! Evaluation semantics: deny by default, subtree coverage, `*` segments,
//! siblings, deny wins, skills scoping, multi-file merge.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

use agentsec_policy::{
    AgentId, Decision, DenialReason, Operation, Policy, SecretPath, SkillDigest, SkillName,
    SkillRef,
};

fn policy(text: &str) -> Policy {
    Policy::from_sources(&[("p.yaml", text)]).unwrap_or_else(|e| panic!("{e}"))
}

fn skill(name: &str) -> SkillRef {
    SkillRef::new(
        SkillName::parse(name).unwrap(),
        SkillDigest::from_bytes([7; 32]),
    )
}

fn decide(p: &Policy, agent: &str, path: &str) -> Result<String, String> {
    decide_skill(p, agent, &skill("any-skill"), path)
}

fn decide_skill(p: &Policy, agent: &str, skill: &SkillRef, path: &str) -> Result<String, String> {
    let agent = AgentId::parse(agent).unwrap();
    let path = SecretPath::parse(path).unwrap();
    match p.evaluate(&agent, skill, &path, Operation::Read) {
        Decision::Allow(a) => {
            assert_eq!(a.agent(), &agent);
            assert_eq!(a.path(), &path);
            Ok(format!("{} {}", a.rule().pattern(), a.access_level()))
        }
        Decision::Deny(d) => Err(d.to_string()),
    }
}

const BASIC: &str = "\
access_control:
  secrets:
    databases.postgres.production:
      allowed_agents: [ops/release-manager, ops/deploy-validator]
      access_level: readonly
      audit: true
    communication.discord:
      allowed_agents: [\"ops/*\"]
      access_level: post
    databases.*.staging:
      allowed_agents: [\"ops/**\"]
      denied_agents: [ops/intern]
";

#[test]
fn policy_is_shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Policy>();
}

#[test]
fn subtree_coverage() {
    let p = policy(BASIC);
    let ok = Ok("databases.postgres.production readonly".to_owned());
    assert_eq!(
        decide(&p, "ops/release-manager", "databases.postgres.production"),
        ok
    );
    assert_eq!(
        decide(
            &p,
            "ops/release-manager",
            "databases.postgres.production.password"
        ),
        ok
    );
    assert_eq!(
        decide(
            &p,
            "ops/release-manager",
            "databases.postgres.production.a.b.c"
        ),
        ok
    );
    assert_eq!(
        decide(
            &p,
            "ops/release-manager",
            r#"["databases"]["postgres"]["production"]["x.y"]"#
        ),
        ok
    );
}

#[test]
fn siblings_and_ancestors_are_not_granted() {
    let p = policy("access_control:\n  secrets:\n    a.b:\n      allowed_agents: [x]\n");
    assert!(decide(&p, "x", "a.b").is_ok());
    assert!(decide(&p, "x", "a.b.c").is_ok());
    assert!(decide(&p, "x", "a.bc").is_err());
    assert!(decide(&p, "x", "a").is_err());
    assert!(decide(&p, "x", "a.c").is_err());
    assert!(decide(&p, "x", "ab").is_err());
    assert!(decide(&p, "x", "b").is_err());
}

#[test]
fn denial_messages_say_how_to_fix() {
    let p = policy(BASIC);
    assert_eq!(
        decide(&p, "ops/changelog", "databases.postgres.production.password"),
        Err("agent `ops/changelog` may not read `databases.postgres.production.password`: rule \
             `databases.postgres.production` (p.yaml:3) allows only ops/release-manager, ops/deploy-validator; \
             add the agent to its allowed_agents to grant it"
            .into())
    );
    assert_eq!(
        decide(&p, "ops/intern", "databases.redis.staging.url"),
        Err("agent `ops/intern` may not read `databases.redis.staging.url`: it is denied by `denied_agents` \
             of rule `databases.*.staging` (p.yaml:10); a deny always wins"
            .into())
    );
    assert_eq!(
        decide(&p, "ops/x", "monitoring.datadog"),
        Err("agent `ops/x` may not read `monitoring.datadog`: no rule covers this path; add a rule under \
             access_control.secrets"
            .into())
    );
}

#[test]
fn globs_in_rules() {
    let p = policy(BASIC);
    assert_eq!(
        level_in_force(&p, "ops/changelog", "communication.discord.webhook"),
        Ok("communication.discord post".into())
    );
    assert!(level_in_force(&p, "ops/team/bot", "communication.discord.webhook").is_err());
    assert!(decide(&p, "ops", "communication.discord.webhook").is_err());
    assert!(decide(&p, "dev/ops", "communication.discord.webhook").is_err());
    assert!(decide(&p, "ops/team/bot", "databases.mysql.staging.password").is_ok());
}

#[test]
fn star_segments() {
    let p = policy(BASIC);
    assert!(decide(&p, "ops/a", "databases.postgres.staging").is_ok());
    assert!(decide(&p, "ops/a", "databases.redis.staging.password").is_ok());
    assert!(decide(&p, "ops/a", "databases.redis").is_err());
    assert!(decide(&p, "ops/a", "databases.redis.production").is_err());
    assert!(decide(&p, "ops/a", "databases.a.b.staging").is_err());
    // A quoted "*" is a literal key, not a wildcard.
    let q =
        policy("access_control:\n  secrets:\n    '[\"a\"][\"*\"]':\n      allowed_agents: [x]\n");
    assert!(decide(&q, "x", r#"a["*"]"#).is_ok());
    assert!(decide(&q, "x", "a.b").is_err());
}

#[test]
fn deny_wins_over_more_specific_allow() {
    let p = policy(
        "access_control:
  secrets:
    databases:
      denied_agents: [ops/intern]
    databases.postgres.production.password:
      allowed_agents: [ops/intern]
",
    );
    let e = decide(&p, "ops/intern", "databases.postgres.production.password").unwrap_err();
    assert!(
        e.contains("denied by `denied_agents` of rule `databases` (p.yaml:3)"),
        "{e}"
    );
    // Deny in the same rule as an allow.
    let q = policy(
        "access_control:\n  secrets:\n    a:\n      allowed_agents: [\"ops/**\"]\n      denied_agents: [ops/intern]\n",
    );
    assert!(decide(&q, "ops/intern", "a").is_err());
    assert!(decide(&q, "ops/intern2", "a").is_ok());
}

#[test]
fn most_specific_allow_is_reported() {
    let p = policy(
        "access_control:
  secrets:
    a:
      allowed_agents: [x]
      access_level: readonly
    a.*.c:
      allowed_agents: [x]
      access_level: sign
    a.b:
      allowed_agents: [x]
      access_level: read-write
    '*.b.c':
      allowed_agents: [x]
      access_level: post
",
    );
    // a.*.c (2 literals, 3 segments) beats *.b.c (2 literals, 3 segments) by file order,
    // and both beat a.b (2 literals, 2 segments). Listing is permitted at every level, so
    // it shows the level in force.
    let level = |path| level_in_force(&p, "x", path);
    assert_eq!(level("a.b.c.d"), Ok("a.*.c sign".into()));
    assert_eq!(level("a.b.d"), Ok("a.b read-write".into()));
    assert_eq!(level("a.z"), Ok("a readonly".into()));
    assert_eq!(level("z.b.c"), Ok("*.b.c post".into()));
    // The most specific rule decides the operation too: its `sign` forbids the read that
    // the broader `a.b: read-write` would permit.
    let e = decide(&p, "x", "a.b.c.d").unwrap_err();
    assert!(
        e.contains("rule `a.*.c` (p.yaml:6) grants access_level `sign`"),
        "{e}"
    );
    assert_eq!(decide(&p, "x", "a.b.d"), Ok("a.b read-write".into()));
}

fn level_in_force(p: &Policy, agent: &str, path: &str) -> Result<String, String> {
    let agent = AgentId::parse(agent).unwrap();
    let path = SecretPath::parse(path).unwrap();
    match p.evaluate(&agent, &skill("any-skill"), &path, Operation::List) {
        Decision::Allow(a) => Ok(format!("{} {}", a.rule().pattern(), a.access_level())),
        Decision::Deny(d) => Err(d.to_string()),
    }
}

/// `access_level: post` permits only host-made POST requests: a raw read is denied with a
/// message that says the secret may only be used by the host; injection is decided by
/// method; `readonly` permits GET/HEAD injection and reads, `read-write` any method.
#[test]
fn access_levels_are_enforced_per_operation() {
    let p = policy(BASIC);
    let agent = AgentId::parse("ops/bot").unwrap();
    let skill = skill("notify");
    let hook = SecretPath::parse("communication.discord.webhook").unwrap();
    let read = p.evaluate(&agent, &skill, &hook, Operation::Read);
    let Decision::Deny(denial) = read else {
        panic!("post must deny a raw read");
    };
    assert!(matches!(denial.reason(), DenialReason::LevelForbids(_)));
    assert_eq!(
        denial.to_string(),
        "agent `ops/bot` may not read `communication.discord.webhook`: the secret may only be \
         used by the host: rule `communication.discord` (p.yaml:7) grants access_level `post`, \
         which permits only host-made POST requests with it (injection); the skill never reads \
         it; let the host use it for the skill, or give the rule access_level readonly if the \
         skill must hold the value"
    );
    assert_eq!(denial.rule().map(|r| r.line()), Some(7));
    let inject = |method| Operation::Inject {
        method,
        destination: "https://discord.com:443",
    };
    assert!(
        p.evaluate(&agent, &skill, &hook, inject("POST"))
            .is_allowed()
    );
    let get = p.evaluate(&agent, &skill, &hook, inject("GET"));
    let Decision::Deny(denial) = get else {
        panic!("post must deny a GET");
    };
    assert!(
        denial.to_string().starts_with(
            "agent `ops/bot` may not use `communication.discord.webhook`: rule \
             `communication.discord` (p.yaml:7) grants access_level `post`"
        ),
        "{denial}"
    );
    assert!(
        p.evaluate(&agent, &skill, &hook, Operation::List)
            .is_allowed()
    );
    // readonly: reads and GET/HEAD injection, no POST.
    let manager = AgentId::parse("ops/release-manager").unwrap();
    let pw = SecretPath::parse("databases.postgres.production.password").unwrap();
    assert!(
        p.evaluate(&manager, &skill, &pw, Operation::Read)
            .is_allowed()
    );
    assert!(
        p.evaluate(&manager, &skill, &pw, inject("HEAD"))
            .is_allowed()
    );
    assert!(
        !p.evaluate(&manager, &skill, &pw, inject("POST"))
            .is_allowed()
    );
    assert!(
        !p.evaluate(
            &manager,
            &skill,
            &pw,
            Operation::Sign {
                key: "k",
                target: agentsec_policy::SignTarget::Unbound,
            }
        )
        .is_allowed()
    );
    // A deny still wins over the level question.
    let intern = AgentId::parse("ops/intern").unwrap();
    let staging = SecretPath::parse("databases.pg.staging.pw").unwrap();
    let Decision::Deny(denial) = p.evaluate(&intern, &skill, &staging, inject("GET")) else {
        panic!("denied agent");
    };
    assert!(matches!(denial.reason(), DenialReason::DeniedBy(_)));
}

#[test]
fn skills_scoping() {
    let digest = "ab".repeat(32);
    let p = policy(&format!(
        "access_control:
  secrets:
    db:
      allowed_agents: [ops/a]
      skills: [db-healthcheck, \"sha256:{digest}\"]
"
    ));
    assert!(decide_skill(&p, "ops/a", &skill("db-healthcheck"), "db.pw").is_ok());
    let by_digest = SkillRef::new(
        SkillName::parse("renamed").unwrap(),
        SkillDigest::from_bytes([0xab; 32]),
    );
    assert!(decide_skill(&p, "ops/a", &by_digest, "db.pw").is_ok());
    let e = decide_skill(&p, "ops/a", &skill("other"), "db.pw").unwrap_err();
    assert!(
        e.contains("rule `db` (p.yaml:3) grants it only to skills db-healthcheck, sha256:abab"),
        "{e}"
    );
    assert!(e.contains("not to skill `other` (sha256:0707"), "{e}");
    // Another agent is told about allowed_agents, not skills.
    let e = decide_skill(&p, "ops/b", &skill("db-healthcheck"), "db.pw").unwrap_err();
    assert!(e.contains("allows only ops/a"), "{e}");
}

#[test]
fn denial_rule_for_audit() {
    let p = policy(BASIC);
    let agent = AgentId::parse("ops/intern").unwrap();
    let s = skill("s");
    let path = SecretPath::parse("databases.x.staging").unwrap();
    let Decision::Deny(d) = p.evaluate(&agent, &s, &path, Operation::Read) else {
        panic!()
    };
    assert!(matches!(d.reason(), DenialReason::DeniedBy(_)));
    let r = d.rule().unwrap();
    assert_eq!(
        (r.pattern().to_string().as_str(), r.origin(), r.line()),
        ("databases.*.staging", "p.yaml", 10)
    );
    let path = SecretPath::parse("nothing").unwrap();
    let Decision::Deny(d) = p.evaluate(&agent, &s, &path, Operation::Read) else {
        panic!()
    };
    assert!(d.rule().is_none());
    assert!(matches!(
        d.reason(),
        DenialReason::NoGrant { nearest: None }
    ));
}

#[test]
fn deny_only_rule_as_nearest() {
    let p = policy("access_control:\n  secrets:\n    cloud:\n      denied_agents: [dev/x]\n");
    let e = decide(&p, "ops/a", "cloud.aws").unwrap_err();
    assert!(
        e.contains("rule `cloud` (p.yaml:3) allows no agents (it only has denied_agents)"),
        "{e}"
    );
}

#[test]
fn root_is_never_granted() {
    let p = policy(BASIC);
    let agent = AgentId::parse("ops/release-manager").unwrap();
    let s = skill("s");
    let root = SecretPath::parse_prefix("").unwrap();
    assert!(!p.evaluate(&agent, &s, &root, Operation::Read).is_allowed());
}

#[test]
fn multi_file_merge_and_conflict() {
    let a = "access_control:\n  secrets:\n    a.b:\n      allowed_agents: [x]\n";
    let b = "access_control:\n  secrets:\n    c:\n      allowed_agents: [y]\n    a.b.c:\n      denied_agents: [x]\n";
    let p = Policy::from_sources(&[("a.yaml", a), ("b.yaml", b)]).unwrap();
    assert_eq!(p.len(), 3);
    let origins: Vec<_> = p
        .rules()
        .map(|r| (r.origin().to_owned(), r.line(), r.index()))
        .collect();
    assert_eq!(
        origins,
        [
            ("a.yaml".into(), 3, 0),
            ("b.yaml".into(), 3, 1),
            ("b.yaml".into(), 5, 2)
        ]
    );
    assert!(decide(&p, "x", "a.b.d").is_ok());
    assert!(decide(&p, "x", "a.b.c").is_err());
    assert!(decide(&p, "y", "c.d").is_ok());

    let c = "access_control:\n  secrets:\n\n    a.b:\n      denied_agents: [z]\n";
    let e = Policy::from_sources(&[("a.yaml", a), ("c.yaml", c)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "c.yaml:4:5: rule `a.b` is also defined at a.yaml:3:5; conflicts are reported, never resolved: merge the two \
         rules into one"
    );
}

#[test]
fn load_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let a = "access_control:\n  secrets:\n    a:\n      allowed_agents: [x]\n";
    let b = "access_control:\n  secrets:\n    b:\n      allowed_agents: [x]\n";
    std::fs::write(dir.path().join("20-b.yml"), b).unwrap();
    std::fs::write(dir.path().join("10-a.yaml"), a).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not yaml").unwrap();
    std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
    let p = Policy::load(&[dir.path().to_path_buf()]).unwrap();
    let keys: Vec<_> = p.rules().map(|r| r.pattern().to_string()).collect();
    assert_eq!(keys, ["a", "b"]);
    assert!(p.rules().next().unwrap().origin().ends_with("10-a.yaml"));

    // The same file twice is a conflict, reported with both locations.
    let file = dir.path().join("10-a.yaml");
    let e = Policy::load(&[dir.path().to_path_buf(), file]).unwrap_err();
    assert!(e.to_string().contains("rule `a` is also defined at"), "{e}");
}

/// `Operation::Reveal` (MCP `secrets_get`): a read that the most specific granting rule
/// must also allow with `reveal_to_agent: true`; a deny still wins, and a level that
/// forbids reads forbids reveals.
#[test]
fn reveal_needs_reveal_to_agent_on_the_deciding_rule() {
    let p = policy(
        "access_control:\n  secrets:\n    a:\n      allowed_agents: [ops/x]\n      reveal_to_agent: true\n    a.inner:\n      allowed_agents: [ops/x]\n    a.denied:\n      allowed_agents: [ops/x]\n      denied_agents: [ops/x]\n    b:\n      allowed_agents: [ops/x]\n      access_level: post\n      reveal_to_agent: true\n",
    );
    let agent = AgentId::parse("ops/x").unwrap();
    let s = skill("mcp");
    let reveal = |path: &str| {
        let path = SecretPath::parse(path).unwrap();
        match p.evaluate(&agent, &s, &path, Operation::Reveal) {
            Decision::Allow(_) => Ok(()),
            Decision::Deny(d) => Err((
                match d.reason() {
                    DenialReason::NotRevealed(_) => "not-revealed",
                    DenialReason::DeniedBy(_) => "denied-by",
                    DenialReason::LevelForbids(_) => "level-forbids",
                    _ => "other",
                },
                d.to_string(),
            )),
        }
    };
    assert!(reveal("a.key").is_ok());
    let (reason, text) = reveal("a.inner.key").unwrap_err();
    assert_eq!(reason, "not-revealed", "{text}");
    assert!(
        text.contains("rule `a.inner`") && text.contains("reveal_to_agent: true"),
        "{text}"
    );
    assert!(
        decide(&p, "ops/x", "a.inner.key").is_ok(),
        "a skill may still read it"
    );
    assert_eq!(reveal("a.denied.key").unwrap_err().0, "denied-by");
    assert_eq!(reveal("b.key").unwrap_err().0, "level-forbids");
    let bad = Policy::from_sources(&[(
        "p.yaml",
        "access_control:\n  secrets:\n    a:\n      allowed_agents: [ops/x]\n      reveal_to_agent: \"yes\"\n",
    )])
    .unwrap_err()
    .to_string();
    assert!(
        bad.contains("p.yaml:5") && bad.contains("reveal_to_agent"),
        "{bad}"
    );
}

#[test]
fn ssh_hosts_restricts_a_sign_key_to_logins_bound_to_those_host_keys() {
    use agentsec_policy::SignTarget;
    const HOST: &str = "SHA256:ZeQhD+IjZC/AN0DQua/dioymrTj+VbDcLD5Hco3RVzU";
    const OTHER: &str = "SHA256:AAAAD+IjZC/AN0DQua/dioymrTj+VbDcLD5Hco3RVzU";
    let p = policy(&format!(
        "access_control:\n  secrets:\n    ssh.deploy_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n      ssh_hosts: [\"{HOST}\"]\n    ssh.any_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n"
    ));
    let agent = AgentId::parse("ops/deploy").unwrap();
    let s = skill("ssh-agent");
    let sign = |path: &str, target| {
        let path = SecretPath::parse(path).unwrap();
        match p.evaluate(&agent, &s, &path, Operation::Sign { key: "k", target }) {
            Decision::Allow(_) => Ok(()),
            Decision::Deny(d) => {
                assert!(matches!(d.reason(), DenialReason::HostNotListed(_)));
                Err(d.to_string())
            }
        }
    };
    assert_eq!(sign("ssh.deploy_key", SignTarget::Host(HOST)), Ok(()));
    // Loading the key makes no signature: allowed.
    assert_eq!(sign("ssh.deploy_key", SignTarget::Load), Ok(()));
    let other = sign("ssh.deploy_key", SignTarget::Host(OTHER)).unwrap_err();
    assert!(
        other.contains(&format!("bound to host key {OTHER}")),
        "{other}"
    );
    assert!(other.contains(HOST), "{other}");
    let unbound = sign("ssh.deploy_key", SignTarget::Unbound).unwrap_err();
    assert!(unbound.contains("not bound to a host"), "{unbound}");
    let forwarded = sign("ssh.deploy_key", SignTarget::Forwarded(HOST)).unwrap_err();
    assert!(forwarded.contains("forwarded"), "{forwarded}");
    // Without ssh_hosts, any connection.
    for target in [
        SignTarget::Unbound,
        SignTarget::Host(OTHER),
        SignTarget::Forwarded(OTHER),
    ] {
        assert_eq!(sign("ssh.any_key", target), Ok(()));
    }
}

#[test]
fn ssh_hosts_must_be_fingerprints_on_a_sign_rule() {
    let err = |text: &str| {
        Policy::from_sources(&[("p.yaml", text)])
            .map(drop)
            .unwrap_err()
            .to_string()
    };
    let head = "access_control:\n  secrets:\n    ssh.k:\n      allowed_agents: [ops/deploy]\n";
    let e = err(&format!(
        "{head}      ssh_hosts: [\"SHA256:ZeQhD+IjZC/AN0DQua/dioymrTj+VbDcLD5Hco3RVzU\"]\n"
    ));
    assert!(e.contains("access_level: sign"), "{e}");
    let e = err(&format!(
        "{head}      access_level: sign\n      ssh_hosts: [host.example]\n"
    ));
    assert!(e.contains("invalid ssh_hosts entry `host.example`"), "{e}");
    assert!(e.contains("p.yaml:6"), "{e}");
    let e = err(&format!(
        "{head}      access_level: sign\n      ssh_hosts: []\n"
    ));
    assert!(e.contains("lists 0 host keys"), "{e}");
}

/// `injected_header` finds the rule that injects a header the request already carries at
/// a destination its inject url matches, whichever agents the rule is for; a header it
/// does not inject, or a url outside the entry, is not reported.
#[test]
fn a_header_a_rule_injects_is_found_for_its_urls_only() {
    use agentsec_policy::{Host, Scheme, Target};
    let p = policy(
        "access_control:
  secrets:
    communication.github.token:
      allowed_agents: [ops/release-manager]
      access_level: read-write
      inject:
        - url: \"https://api.github.com/repos/**\"
          header: \"Authorization: Bearer {secret}\"
    communication.hook:
      allowed_agents: [ops/other]
      access_level: post
      inject:
        - url: \"https://hooks.example/**\"
          header: \"X-Hook-Token: {secret}\"
        - as: url
",
    );
    let gh = Host::parse("api.github.com").unwrap();
    let at = |host, path| Target {
        scheme: Scheme::Https,
        host,
        port: 443,
        path,
    };
    let found = p.injected_header(&at(&gh, "/repos/o/r"), |name| name == "authorization");
    let (rule, name) = found.expect("the github rule injects authorization there");
    assert_eq!(rule.pattern().to_string(), "communication.github.token");
    assert_eq!(rule.line(), 3);
    assert_eq!(name, "authorization");
    // Outside the entry's url, or another header: nothing.
    assert!(
        p.injected_header(&at(&gh, "/orgs/o"), |name| name == "authorization")
            .is_none()
    );
    assert!(
        p.injected_header(&at(&gh, "/repos/o/r"), |name| name == "x-hook-token")
            .is_none()
    );
    // The names asked about are the lowercase ones of the entries.
    let hooks = Host::parse("hooks.example").unwrap();
    let mut asked = Vec::new();
    let found = p.injected_header(&at(&hooks, "/x"), |name| {
        asked.push(name.to_owned());
        true
    });
    assert_eq!(found.map(|(r, n)| (r.line(), n)), Some((9, "x-hook-token")));
    assert_eq!(asked, ["x-hook-token"]);
}
