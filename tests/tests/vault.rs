//! Vault / OpenBao as a secret store, through the real `agentsec-run`, the real `probe`
//! component and a real OpenBao dev server on 127.0.0.1: KV v2 reads (latest and pinned
//! versions), listing, a store stack with a SOPS file, overlapping mounts refused, token /
//! AppRole / JWT logins, a Vault policy that refuses a path, our token revoked at exit, and
//! no token or secret_id in any output, audit record or file.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::process::Command;

use agentsec_tests::peers::{Server, bao, openbao_dev};
use agentsec_tests::probe::PROD_PASSWORD;
use agentsec_tests::{Run, Scratch, assert_no_leak, bin, demo_key, root, skill, skills_dir};
use base64::Engine as _;
use serde_json::{Value, json};

/// The dev server's root token: it must never appear anywhere agentsec writes.
const ROOT: &str = "vault-test-root-Zq81xKd0";
const PG_V1: &str = "Vault-Pg-first-version-3Jd9";
const PG_V2: &str = "Vault-Pg-latest-7Hq2Lm5Zt";
const GH_TOKEN: &str = "ghp_vaultHeldGithubToken42xyz";

const POLICY: &str = "access_control:\n  secrets:\n    databases:\n      allowed_agents: [\"ops/*\"]\n      access_level: readonly\n    pinned:\n      allowed_agents: [\"ops/*\"]\n    vaultdb:\n      allowed_agents: [\"ops/*\"]\n    communication.github:\n      allowed_agents: [\"ops/*\"]\n";

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A dev server holding two versions of `secret/agents/postgres` and a GitHub token.
fn server() -> Server {
    let s = openbao_dev(ROOT);
    for pw in [PG_V1, PG_V2] {
        ok(&bao(
            &s,
            ROOT,
            &[
                "kv",
                "put",
                "secret/agents/postgres",
                &format!("password={pw}"),
                "user=agent",
                "port=5432",
            ],
        ));
    }
    ok(&bao(
        &s,
        ROOT,
        &[
            "kv",
            "put",
            "secret/agents/github",
            &format!("token={GH_TOKEN}"),
        ],
    ));
    s
}

/// Credentials live outside the scratch directory, so that the scratch scan proves agentsec
/// wrote none of them anywhere.
struct Creds(tempfile::TempDir);

impl Creds {
    fn new() -> Creds {
        Creds(tempfile::tempdir().unwrap())
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn config(s: &Scratch, name: &str, addr: &str, auth: &str, mounts: &str) -> PathBuf {
    s.write(
        &format!("work/{name}"),
        &format!("vault:\n  address: {addr}\n  auth:\n{auth}secrets:\n{mounts}"),
    )
}

/// The `auth:` lines of a config for method `token` with `token` in a file of `creds`.
fn token_auth(creds: &Creds, token: &str) -> String {
    let file = creds.write("token", &format!("{token}\n"));
    format!("    method: token\n    token_file: {}\n", file.display())
}

/// `cfg` (under `work/`) with `settings` (YAML lines under `vault:`) added, rewritten in place.
fn with_settings(s: &Scratch, cfg: &Path, settings: &str) -> PathBuf {
    let text = std::fs::read_to_string(cfg)
        .unwrap()
        .replace("vault:\n", &format!("vault:\n{settings}"));
    let rel = cfg
        .strip_prefix(s.dir.path())
        .unwrap()
        .display()
        .to_string();
    s.write(&rel, &text)
}

fn probe(s: &Scratch, args: &[&str], env: &[(&str, &str)], ops: Value) -> Run {
    let input = s.write("work/input.json", &json!({ "ops": ops }).to_string());
    let policy = s.write("work/policy.yaml", POLICY);
    let mut cmd = s.command(&bin("agentsec-run"));
    cmd.arg(skill("probe"))
        .arg("--skills")
        .arg(skills_dir())
        .args(["--agent", "ops/release-manager", "--policy"])
        .arg(&policy)
        .arg("--audit-log")
        .arg(s.audit_log())
        .arg("--input")
        .arg(format!("@{}", input.display()))
        .args(args)
        .env("AGENTSEC_LOG", "debug");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().unwrap())
}

fn results(run: &Run) -> Vec<Value> {
    assert_eq!(run.code, 0, "{run:?}");
    run.json().as_array().cloned().unwrap()
}

/// No form of `value` in the run's output, its stderr, or any file under the scratch dir
/// but the probe's input (which carries the expected values the probe compares against).
fn assert_nowhere(s: &Scratch, run: &Run, value: &str, what: &str) {
    assert_no_leak(value, run.stdout.as_bytes(), &format!("stdout ({what})"));
    assert_no_leak(value, run.stderr.as_bytes(), &format!("stderr ({what})"));
    for (path, bytes) in s.all_file_bytes() {
        if path.ends_with("work/input.json") {
            continue;
        }
        assert_no_leak(value, &bytes, &format!("{} ({what})", path.display()));
    }
}

#[test]
fn kv_v2_reads_versions_lists_and_stacks_with_sops_through_agentsec_run() {
    let bao_server = server();
    let s = Scratch::new();
    let creds = Creds::new();
    let auth = token_auth(&creds, ROOT);
    let cfg = config(
        &s,
        "vault-config.yaml",
        &bao_server.addr,
        &auth,
        "  databases.postgres: secret/data/agents/postgres\n  pinned.postgres: { path: secret/data/agents/postgres, version: 1 }\n  communication.github: secret/data/agents/github\n",
    );
    let cfg_arg = cfg.display().to_string();
    let run = probe(
        &s,
        &["--vault-config", &cfg_arg],
        &[],
        json!([
            {"get": "databases.postgres.password", "expect": PG_V2},
            {"get": "pinned.postgres.password", "expect": PG_V1},
            {"get": "databases.postgres.port", "expect": "5432"},
            {"get": "databases.postgres.nope"},
            {"get": "databases.postgres"},
            {"list": "databases"},
            {"get": "communication.github.token", "expect": GH_TOKEN},
        ]),
    );
    let out = results(&run);
    assert_eq!(out[0]["matches"], json!(true), "{out:?}");
    assert_eq!(out[1]["matches"], json!(true), "a pinned version: {out:?}");
    assert_eq!(out[2]["matches"], json!(true), "{out:?}");
    assert_eq!(out[3]["err"], "not-found", "{out:?}");
    assert_eq!(out[4]["err"], "invalid-path", "{out:?}");
    let mut names: Vec<String> = out[5]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "databases.postgres.password",
            "databases.postgres.port",
            "databases.postgres.user"
        ]
    );
    assert_eq!(out[6]["matches"], json!(true));
    let records = s.audit_records();
    let read = records
        .iter()
        .find(|r| r["secret_path"] == "databases.postgres.password")
        .unwrap();
    assert_eq!(read["decision"], "allow");
    assert_eq!(read["store"]["kind"], "vault", "{read}");
    assert_eq!(read["store"]["addr"], bao_server.addr.as_str(), "{read}");
    for value in [ROOT, PG_V1, PG_V2, GH_TOKEN] {
        assert_nowhere(&s, &run, value, "a Vault-backed run");
    }

    // The same Vault mounted beside a SOPS file: one tree.
    let stacked = config(
        &s,
        "vault-stack.yaml",
        &bao_server.addr,
        &auth,
        "  vaultdb.postgres: secret/data/agents/postgres\n",
    );
    let demo = root().join("demo/secrets.yaml");
    let demo_arg = demo.display().to_string();
    let key = demo_key().display().to_string();
    let stacked_arg = stacked.display().to_string();
    let run = probe(
        &s,
        &["--secrets", &demo_arg, "--vault-config", &stacked_arg],
        &[("SOPS_AGE_KEY_FILE", &key)],
        json!([
            {"get": "databases.postgres.production.password", "expect": PROD_PASSWORD},
            {"get": "vaultdb.postgres.password", "expect": PG_V2},
        ]),
    );
    let out = results(&run);
    assert_eq!(out[0]["matches"], json!(true), "{out:?}");
    assert_eq!(out[1]["matches"], json!(true), "{out:?}");
    assert_eq!(s.audit_records().last().unwrap()["store"]["kind"], "stack");

    // A Vault mount over the SOPS file's tree: refused before anything runs, naming both.
    let run = probe(
        &s,
        &["--secrets", &demo_arg, "--vault-config", &cfg_arg],
        &[("SOPS_AGE_KEY_FILE", &key)],
        json!([]),
    );
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("the stores overlap")
            && run.stderr.contains("of SOPS file")
            && run.stderr.contains("`databases.postgres` of Vault config"),
        "{}",
        run.stderr
    );
}

/// Runs the real `bao` with a file argument and returns stdout.
fn bao_out(s: &Server, args: &[&str]) -> String {
    let out = bao(s, ROOT, args);
    ok(&out);
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A Vault policy for agentsec: read on the postgres secret (and list its folder), nothing
/// on the GitHub secret.
fn agentsec_policy(s: &Server, creds: &Creds) {
    let hcl = creds.write(
        "agentsec.hcl",
        "path \"secret/data/agents/postgres\" { capabilities = [\"read\"] }\npath \"secret/metadata/agents/postgres\" { capabilities = [\"list\"] }\n",
    );
    bao_out(
        s,
        &["policy", "write", "agentsec", &hcl.display().to_string()],
    );
}

fn accessors(s: &Server) -> usize {
    let text = bao_out(s, &["list", "-format=json", "auth/token/accessors"]);
    serde_json::from_str::<Vec<String>>(&text).unwrap().len()
}

#[test]
fn approle_login_a_vault_policy_refusal_is_unavailable_and_our_token_is_revoked() {
    let bao_server = server();
    agentsec_policy(&bao_server, &Creds::new());
    bao_out(&bao_server, &["auth", "enable", "approle"]);
    bao_out(
        &bao_server,
        &[
            "write",
            "auth/approle/role/agent-role",
            "token_policies=agentsec",
            "token_ttl=60s",
            "token_max_ttl=120s",
        ],
    );
    let role_id = bao_out(
        &bao_server,
        &[
            "read",
            "-field=role_id",
            "auth/approle/role/agent-role/role-id",
        ],
    );
    let secret_id = bao_out(
        &bao_server,
        &[
            "write",
            "-f",
            "-field=secret_id",
            "auth/approle/role/agent-role/secret-id",
        ],
    );
    let s = Scratch::new();
    let creds = Creds::new();
    let auth = format!(
        "    method: approle\n    role: agent-role\n    role_id_file: {}\n    secret_id_file: {}\n",
        creds.write("role_id", &role_id).display(),
        creds.write("secret_id", &secret_id).display()
    );
    let cfg = config(
        &s,
        "vault-config.yaml",
        &bao_server.addr,
        &auth,
        "  databases.postgres: secret/data/agents/postgres\n  communication.github: secret/data/agents/github\n",
    );
    let before = accessors(&bao_server);
    let run = probe(
        &s,
        &["--vault-config", &cfg.display().to_string()],
        &[],
        json!([
            {"get": "databases.postgres.password", "expect": PG_V2},
            {"get": "communication.github.token"},
        ]),
    );
    let out = results(&run);
    assert_eq!(out[0]["matches"], json!(true), "{out:?}");
    // agentsec's policy allows it, Vault's refuses agentsec's token: `unavailable`, with
    // the fix, never the value.
    assert_eq!(out[1]["err"], "unavailable", "{out:?}");
    let message = out[1]["message"].as_str().unwrap();
    assert!(
        message.contains("secret/data/agents/github") && message.contains("grant `read`"),
        "{message}"
    );
    // Vault will not list that mount for agentsec's token either, so the path is not a
    // known name of the store: the record names it by its keyed hash (the audit's rule
    // for unknown paths), under the rule that granted it.
    let records = s.audit_records();
    let record = records
        .iter()
        .find(|r| r["rule"] == "communication.github")
        .unwrap_or_else(|| panic!("no record of the refused read: {records:?}"));
    assert_eq!(record["decision"], "allow", "{record}");
    let detail = record["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("unavailable; unknown-path len=26 hmac="),
        "{record}"
    );
    // The login's token was revoked when agentsec-run ended.
    assert_eq!(accessors(&bao_server), before, "our token outlived the run");
    for value in [ROOT, secret_id.as_str(), role_id.as_str(), PG_V2, GH_TOKEN] {
        assert_nowhere(&s, &run, value, "an AppRole run");
    }

    // A secret_id Vault does not know: a clear error, and no secret_id in it.
    let wrong = creds.write("wrong", "00000000-1111-2222-3333-444444444444");
    let bad = s.write(
        "work/bad.yaml",
        &std::fs::read_to_string(&cfg).unwrap().replace(
            &creds.0.path().join("secret_id").display().to_string(),
            &wrong.display().to_string(),
        ),
    );
    let run = probe(
        &s,
        &["--vault-config", &bad.display().to_string()],
        &[],
        json!([]),
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("Vault refused the approle login"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("00000000-1111"), "{}", run.stderr);
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An RS256 JWT signed with `key` (a PEM private key), by the real openssl.
fn jwt(dir: &Path, key: &Path, claims: &Value) -> String {
    let header = b64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let body = b64url(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{body}");
    let input = dir.join("jwt-input");
    std::fs::write(&input, &signing_input).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg(&input)
        .output()
        .unwrap();
    ok(&out);
    format!("{signing_input}.{}", b64url(&out.stdout))
}

#[test]
fn jwt_and_kubernetes_logins_with_a_locally_made_key() {
    let bao_server = server();
    let creds = Creds::new();
    agentsec_policy(&bao_server, &creds);
    let key = creds.0.path().join("key.pem");
    let public = creds.0.path().join("pub.pem");
    ok(&Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap());
    ok(&Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap());
    bao_out(&bao_server, &["auth", "enable", "jwt"]);
    bao_out(
        &bao_server,
        &[
            "write",
            "auth/jwt/config",
            &format!("jwt_validation_pubkeys=@{}", public.display()),
            "bound_issuer=https://issuer.test",
        ],
    );
    bao_out(
        &bao_server,
        &[
            "write",
            "auth/jwt/role/agent-role",
            "role_type=jwt",
            "user_claim=sub",
            "bound_audiences=agentsec",
            "token_policies=agentsec",
            "token_ttl=60s",
        ],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = jwt(
        creds.0.path(),
        &key,
        &json!({"iss": "https://issuer.test", "sub": "system:serviceaccount:agents:host-1", "aud": "agentsec", "iat": now, "nbf": now, "exp": now + 600}),
    );
    let jwt_file = creds.write("jwt", &token);
    let s = Scratch::new();
    for (method, mount) in [("jwt", ""), ("kubernetes", "    mount: jwt\n")] {
        let auth = format!(
            "    method: {method}\n    role: agent-role\n{mount}    jwt_file: {}\n",
            jwt_file.display()
        );
        let cfg = config(
            &s,
            &format!("{method}.yaml"),
            &bao_server.addr,
            &auth,
            "  databases.postgres: secret/data/agents/postgres\n",
        );
        let run = probe(
            &s,
            &["--vault-config", &cfg.display().to_string()],
            &[],
            json!([{"get": "databases.postgres.password", "expect": PG_V2}]),
        );
        let out = results(&run);
        assert_eq!(out[0]["matches"], json!(true), "{method}: {out:?}");
        for value in [ROOT, token.as_str(), PG_V2] {
            assert_nowhere(&s, &run, value, method);
        }
    }
    // A JWT signed by another key is refused at start-up, the JWT not echoed.
    let other = creds.0.path().join("other.pem");
    ok(&Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&other)
        .output()
        .unwrap());
    let forged = jwt(
        creds.0.path(),
        &other,
        &json!({"iss": "https://issuer.test", "sub": "x", "aud": "agentsec", "iat": now, "exp": now + 600}),
    );
    let forged_file = creds.write("forged", &forged);
    let cfg = config(
        &s,
        "forged.yaml",
        &bao_server.addr,
        &format!(
            "    method: jwt\n    role: agent-role\n    jwt_file: {}\n",
            forged_file.display()
        ),
        "  databases.postgres: secret/data/agents/postgres\n",
    );
    let run = probe(
        &s,
        &["--vault-config", &cfg.display().to_string()],
        &[],
        json!([]),
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("Vault refused the jwt login"),
        "{}",
        run.stderr
    );
    assert_no_leak(&forged, run.stderr.as_bytes(), "stderr");
}

#[test]
fn plain_http_to_a_remote_address_and_a_missing_token_are_refused_before_any_request() {
    let s = Scratch::new();
    let cfg = config(
        &s,
        "remote.yaml",
        "http://vault.example:8200",
        "    method: token\n",
        "  databases.postgres: secret/data/x\n",
    );
    let run = probe(
        &s,
        &["--vault-config", &cfg.display().to_string()],
        &[],
        json!([]),
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("`vault.address`") && run.stderr.contains("loopback"),
        "{}",
        run.stderr
    );
    let bao_server = server();
    let cfg = config(
        &s,
        "notoken.yaml",
        &bao_server.addr,
        "    method: token\n",
        "  databases.postgres: secret/data/x\n",
    );
    let run = probe(
        &s,
        &["--vault-config", &cfg.display().to_string()],
        &[],
        json!([]),
    );
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("VAULT_TOKEN"), "{}", run.stderr);
    // VAULT_TOKEN in agentsec's own environment serves method `token`.
    let run = probe(
        &s,
        &["--vault-config", &cfg.display().to_string()],
        &[("VAULT_TOKEN", ROOT)],
        json!([{"get": "databases.postgres.password"}]),
    );
    let out = results(&run);
    assert_eq!(out[0]["err"], "not-found", "{out:?}");
    assert_no_leak(ROOT, run.stderr.as_bytes(), "stderr");
}

/// `agentsec ssh-agent` on a Vault-held key: an OpenSSH private key in a KV v2 field is
/// listed by the real `ssh-add -l` and signs through the agent (verified by the real
/// `ssh-keygen -Y verify`); the key is in no file, output or audit record, nor is the token.
#[test]
fn ssh_agent_signs_with_a_vault_held_key() {
    use std::io::BufRead as _;
    let bao_server = server();
    let s = Scratch::new();
    let creds = Creds::new();
    let key = agentsec_tests::openssh::keygen(&s, "vault-deploy", &["-t", "ed25519"]);
    let key_file = creds.write("deploy_key", &key.private);
    ok(&bao(
        &bao_server,
        ROOT,
        &[
            "kv",
            "put",
            "secret/agents/ssh",
            &format!("deploy_key=@{}", key_file.display()),
        ],
    ));
    std::fs::remove_file(&key_file).unwrap();
    let cfg = config(
        &s,
        "vault-config.yaml",
        &bao_server.addr,
        &token_auth(&creds, ROOT),
        "  ssh.vault: secret/data/agents/ssh\n",
    );
    let policy = s.write(
        "work/ssh-policy.yaml",
        "access_control:\n  secrets:\n    ssh.vault.deploy_key:\n      allowed_agents: [ops/deploy]\n      access_level: sign\n",
    );
    let socket = s.path("tmp/agent/ssh.sock");
    let mut agent = s
        .command(&bin("agentsec"))
        .args(["ssh-agent", "--agent", "ops/deploy", "--socket"])
        .arg(&socket)
        .arg("--vault-config")
        .arg(&cfg)
        .arg("--policy")
        .arg(&policy)
        .arg("--audit-log")
        .arg(s.audit_log())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(agent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("SSH_AUTH_SOCK="), "{line:?}");
    let tool = |program: &str, args: &[&str]| {
        Run::from(
            s.command(Path::new(program))
                .env("SSH_AUTH_SOCK", &socket)
                .args(args)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap(),
        )
    };
    let list = tool("ssh-add", &["-l"]);
    assert_eq!(list.code, 0, "{list:?}");
    assert!(list.stdout.contains(&key.fingerprint), "{list:?}");
    assert!(list.stdout.contains("ssh.vault.deploy_key"), "{list:?}");
    let data = s.write("work/message.txt", "release v7\n");
    let pub_file = key.pub_file.display().to_string();
    let data_arg = data.display().to_string();
    let sign = tool(
        "ssh-keygen",
        &["-Y", "sign", "-n", "file", "-f", &pub_file, &data_arg],
    );
    assert_eq!(sign.code, 0, "{sign:?}");
    let signers = s.write("work/allowed_signers", &format!("d@test {}", key.public));
    let verify = Run::from(
        Command::new("ssh-keygen")
            .args(["-Y", "verify", "-n", "file", "-I", "d@test", "-f"])
            .arg(&signers)
            .arg("-s")
            .arg(s.path("work/message.txt.sig"))
            .stdin(std::fs::File::open(&data).unwrap())
            .output()
            .unwrap(),
    );
    assert_eq!(verify.code, 0, "{verify:?}");
    let _ = agent.kill();
    let out = agent.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();

    let records = s.audit_records();
    let signed = records
        .iter()
        .find(|r| r["access_type"] == "sign" && r["detail"] == format!("key {}", key.fingerprint))
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(signed["decision"], "allow");
    assert_eq!(signed["secret_path"], "ssh.vault.deploy_key");
    assert_eq!(signed["store"]["kind"], "vault", "{signed}");
    let mut secrets = agentsec_tests::openssh::material(&key);
    secrets.push(ROOT.to_owned());
    for value in &secrets {
        for (path, bytes) in s.all_file_bytes() {
            assert_no_leak(value, &bytes, &path.display().to_string());
        }
        for run in [&list, &sign, &verify] {
            assert_no_leak(value, run.stdout.as_bytes(), "stdout");
            assert_no_leak(value, run.stderr.as_bytes(), "stderr");
        }
        assert_no_leak(value, stderr.as_bytes(), "the agent's stderr");
    }
}

/// A fake Vault on 127.0.0.1 that answers every request with `answer` (or, with `None`,
/// reads it and never answers), until the test ends. Returns its address.
fn fake_vault(answer: Option<&'static str>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let _ = std::io::Read::read(&mut stream, &mut buf);
            match answer {
                Some(text) => {
                    let _ = std::io::Write::write_all(&mut stream, text.as_bytes());
                }
                // Silent: the connection stays open, unanswered.
                None => held.push(stream),
            }
        }
    });
    addr
}

const UNAVAILABLE_503: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 33\r\nConnection: close\r\n\r\n{\"errors\":[\"Vault is sealed\"]}\r\n\r\n";

/// Down, sealed, slow or failing: the skill sees `unavailable` (never `not-found`, never a
/// value), the run goes on, the read is on the audit record, and a slow server costs at
/// most the configured timeout per attempt.
#[test]
fn a_down_sealed_slow_or_failing_vault_is_unavailable_never_not_found() {
    let s = Scratch::new();
    let creds = Creds::new();
    let auth = token_auth(&creds, ROOT);
    let mut sealed = server();
    ok(&bao(&sealed, ROOT, &["operator", "seal"]));
    let closed = format!("http://127.0.0.1:{}", agentsec_tests::peers::free_port());
    let cases = [
        ("down", closed),
        ("5xx", fake_vault(Some(UNAVAILABLE_503))),
        ("slow", fake_vault(None)),
        ("sealed", sealed.addr.clone()),
    ];
    // A first run compiles the component (then cached): not what is timed below.
    let warm = s.write(
        "work/vault-warm.yaml",
        &format!("vault:\n  address: {}\n  auth:\n{auth}secrets:\n  databases.postgres: secret/data/agents/postgres\n", cases[0].1),
    );
    let warm_arg = warm.display().to_string();
    let _ = probe(&s, &["--vault-config", &warm_arg], &[], json!([]));
    for (what, addr) in &cases {
        let cfg = s.write(
            &format!("work/vault-{what}.yaml"),
            &format!(
                "vault:\n  address: {addr}\n  timeout: 1s\n  auth:\n{auth}secrets:\n  databases.postgres: secret/data/agents/postgres\n"
            ),
        );
        let cfg_arg = cfg.display().to_string();
        let started = std::time::Instant::now();
        let run = probe(
            &s,
            &["--vault-config", &cfg_arg],
            &[],
            json!([
                {"get": "databases.postgres.password", "expect": PG_V2},
                {"get": "databases.postgres.user"},
            ]),
        );
        let took = started.elapsed();
        let out = results(&run);
        assert_eq!(out[0]["err"], "unavailable", "{what}: {out:?} {run:?}");
        assert_eq!(out[1]["err"], "unavailable", "{what}: {out:?}");
        assert!(
            out[0]["message"]
                .as_str()
                .is_some_and(|m| !m.contains(ROOT)),
            "{what}: {out:?}"
        );
        // Bounded: a few attempts of at most `timeout: 1s` each, not a hang.
        assert!(
            took < std::time::Duration::from_secs(30),
            "{what}: {took:?}"
        );
        // Both reads are on the record as unavailable. (The store could not list its
        // names, so the paths count as unknown and are recorded by keyed hash.)
        let records = s.audit_records();
        let reads: Vec<&Value> = records
            .iter()
            .filter(|r| r["access_type"] == "read")
            .collect();
        assert!(reads.len() >= 2, "{what}: {records:#?}");
        for r in &reads[reads.len() - 2..] {
            assert!(
                r["detail"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("unavailable"),
                "{what}: {r}"
            );
        }
        assert_nowhere(&s, &run, ROOT, what);
    }
    sealed.kill();
}

/// `agentsec serve --vault-config CFG --policy POLICY` with the test skills, listening.
/// A running `agentsec serve`: killed when dropped (also when the test fails), its
/// stderr in a file (a pipe nobody reads would fill and stop it).
struct Daemon {
    child: std::process::Child,
    log: PathBuf,
}

impl Daemon {
    /// Kills it and returns what it wrote to stderr.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `agentsec serve` on the Vault store of `cfg`, with only the probe skill (so that it
/// starts in a few seconds: it compiles every skill of its directory first).
fn serve_vault(s: &Scratch, cfg: &Path, policy: &Path) -> (Daemon, PathBuf) {
    let socket = s.path("tmp/serve/agentsec.sock");
    let skills = s.path("work/serve-skills");
    std::fs::create_dir_all(&skills).unwrap();
    std::fs::copy(skill("probe"), skills.join("probe.wasm")).unwrap();
    let log = s.path("work/serve.log");
    let child = s
        .command(&bin("agentsec"))
        .arg("serve")
        .arg("--socket")
        .arg(&socket)
        .arg("--skills")
        .arg(&skills)
        .arg("--vault-config")
        .arg(cfg)
        .arg("--policy")
        .arg(policy)
        .arg("--audit-log")
        .arg(s.audit_log())
        .env("AGENTSEC_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut daemon = Daemon { child, log };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !socket.exists() {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            let err = std::fs::read_to_string(&daemon.log).unwrap_or_default();
            panic!("agentsec serve exited ({status}): {err}");
        }
        assert!(std::time::Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (daemon, socket)
}

/// The probe through the daemon at `socket`, as agent `ops/operator`.
fn connect_probe(s: &Scratch, socket: &Path, ops: Value) -> Run {
    let input = s.write("work/input.json", &json!({ "ops": ops }).to_string());
    Run::from(
        s.command(&bin("agentsec-run"))
            .args(["probe", "--connect", "--agent", "ops/operator", "--input"])
            .arg(format!("@{}", input.display()))
            .env("AGENTSEC_SOCKET", socket)
            .output()
            .unwrap(),
    )
}

/// The tests' policy with `ops/operator` bound to root (the daemon's callers here).
fn operator_policy(s: &Scratch) -> PathBuf {
    s.write(
        "work/serve-policy.yaml",
        &format!("agents:\n  ops/operator: {{ unix_users: [root] }}\n{POLICY}")
            .replace("ops/*", "ops/operator"),
    )
}

/// `agentsec serve` on a Vault store: values read are served from the cache (`cache_ttl`)
/// while the server is down, and are `unavailable` once the cache has expired.
#[test]
fn serve_serves_a_cached_vault_value_while_the_server_is_down() {
    let mut bao_server = server();
    let s = Scratch::new();
    let creds = Creds::new();
    let cfg = config(
        &s,
        "vault-config.yaml",
        &bao_server.addr,
        &token_auth(&creds, ROOT),
        "  databases.postgres: secret/data/agents/postgres\n  communication.github: secret/data/agents/github\n",
    );
    let cfg = with_settings(&s, &cfg, "  cache_ttl: 20s\n  timeout: 1s\n");
    let policy = operator_policy(&s);
    let (daemon, socket) = serve_vault(&s, &cfg, &policy);
    let listening = std::time::Instant::now();
    let client = |ops: Value| connect_probe(&s, &socket, ops);
    let first = client(json!([{"get": "databases.postgres.password", "expect": PG_V2}]));
    assert_eq!(results(&first)[0]["matches"], json!(true), "{first:?}");

    bao_server.kill();
    let down = client(json!([{"get": "databases.postgres.password", "expect": PG_V2}]));
    let out = results(&down);
    // The value was cached at most 20 s ago (by the daemon's start-up listing or the
    // first run): still served.
    assert!(
        listening.elapsed() < std::time::Duration::from_secs(20),
        "too slow to test the cache"
    );
    assert_eq!(
        out[0]["matches"],
        json!(true),
        "served from the cache: {out:?}"
    );
    // Every cached entry is older than 20 s after this: the server is asked, and is down.
    std::thread::sleep(std::time::Duration::from_secs(21).saturating_sub(listening.elapsed()));
    let expired = client(json!([{"get": "databases.postgres.password"}]));
    let out = results(&expired);
    assert_eq!(out[0]["err"], "unavailable", "the cache expired: {out:?}");

    let stderr = daemon.stop();
    for value in [ROOT, PG_V2, GH_TOKEN] {
        assert_no_leak(value, stderr.as_bytes(), "serve's stderr");
        assert_nowhere(&s, &expired, value, "serve on Vault");
    }
}

/// A token with a short TTL is renewed in the background at 2/3 of it, so a quiet `serve`
/// still holds a valid token long after the first TTL would have run out.
#[test]
fn serve_renews_a_short_lived_token_while_no_one_reads() {
    // Build the skills and binaries first: the token's clock starts when it is made.
    let _ = (skills_dir(), bin("agentsec"));
    let bao_server = server();
    let s = Scratch::new();
    let creds = Creds::new();
    agentsec_policy(&bao_server, &creds);
    let token = bao_out(
        &bao_server,
        &[
            "token",
            "create",
            "-ttl=10s",
            "-renewable=true",
            "-policy=agentsec",
            "-field=token",
        ],
    );
    let cfg = config(
        &s,
        "vault-config.yaml",
        &bao_server.addr,
        &token_auth(&creds, &token),
        "  databases.postgres: secret/data/agents/postgres\n",
    );
    let cfg = with_settings(&s, &cfg, "  cache_ttl: 0s\n");
    let policy = operator_policy(&s);
    let (daemon, socket) = serve_vault(&s, &cfg, &policy);
    // Nothing reads for more than twice the token's TTL.
    std::thread::sleep(std::time::Duration::from_secs(25));
    let run = connect_probe(
        &s,
        &socket,
        json!([{"get": "databases.postgres.password", "expect": PG_V2}]),
    );
    let out = results(&run);
    assert_eq!(out[0]["matches"], json!(true), "{out:?}");
    // The token agentsec holds is the one it was given, still alive.
    let ttl: u64 = bao_out(&bao_server, &["token", "lookup", "-format=json", &token])
        .parse::<Value>()
        .unwrap()["data"]["ttl"]
        .as_u64()
        .unwrap();
    assert!(ttl > 0, "the token was not kept alive");

    let stderr = daemon.stop();
    assert!(stderr.contains("renewed the Vault token"), "{stderr}");
    for value in [token.as_str(), PG_V2] {
        assert_no_leak(value, stderr.as_bytes(), "serve's stderr");
        assert_nowhere(&s, &run, value, "serve renewing a token");
    }
}

/// `agentsec secrets push` migrates a SOPS file's leaves into KV v2 through the config's
/// mounts: nothing is written while a leaf has no mount, `--dry-run` writes nothing, and
/// what it wrote reads back through `agentsec-run --vault-config` unchanged.
#[test]
fn secrets_push_migrates_a_sops_tree_into_kv_v2() {
    const PUSHED_PW: &str = "Pushed-From-Sops-4Kx9Qw";
    const PUSHED_TOKEN: &str = "ghp_pushedFromSopsToken77";
    let bao_server = server();
    let s = Scratch::new();
    let creds = Creds::new();
    let file = s.sops_encrypt(
        "work/migrate.yaml",
        &format!(
            "databases:\n  postgres:\n    password: {PUSHED_PW}\n    port: 6543\ncommunication:\n  github:\n    token: {PUSHED_TOKEN}\nleftover: x\n"
        ),
    );
    let cfg = config(
        &s,
        "push-config.yaml",
        &bao_server.addr,
        &token_auth(&creds, ROOT),
        "  databases.postgres: secret/data/agents/migrated-pg\n  communication: secret/data/agents/comm\n",
    );
    let push = |extra: &[&str]| {
        let mut cmd = s.command(&bin("agentsec"));
        cmd.args(["secrets", "push"])
            .arg(&file)
            .arg("--vault-config")
            .arg(&cfg)
            .args(extra)
            .env("SOPS_AGE_KEY_FILE", demo_key());
        Run::from(cmd.output().unwrap())
    };
    let exists = |secret: &str| {
        bao(&bao_server, ROOT, &["kv", "get", secret])
            .status
            .success()
    };

    // `leftover` has no mount: refused by name, nothing written.
    let refused = push(&[]);
    assert_eq!(refused.code, 5, "{refused:?}");
    assert!(refused.stderr.contains("leftover"), "{refused:?}");
    assert!(
        refused.stderr.contains("nothing was written"),
        "{refused:?}"
    );
    assert!(!exists("secret/agents/migrated-pg"));
    // A leaf under a dynamic credential mount is refused by name too.
    let dynamic_cfg = s.write(
        "work/push-dynamic.yaml",
        &std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("secrets:\n", "secrets:\n  leftover: database/creds/ro\n"),
    );
    let mut cmd = s.command(&bin("agentsec"));
    cmd.args(["secrets", "push"])
        .arg(&file)
        .arg("--vault-config")
        .arg(&dynamic_cfg)
        .env("SOPS_AGE_KEY_FILE", demo_key());
    let refused_dynamic = Run::from(cmd.output().unwrap());
    assert_eq!(refused_dynamic.code, 5, "{refused_dynamic:?}");
    assert!(
        refused_dynamic.stderr.contains("database/creds/ro")
            && refused_dynamic.stderr.contains("issues per run"),
        "{refused_dynamic:?}"
    );
    assert!(!exists("secret/agents/migrated-pg"));

    let dry = push(&["--prefix", "databases", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert_eq!(
        dry.stdout,
        "would write secret/data/agents/migrated-pg: password, port\n"
    );
    assert!(!exists("secret/agents/migrated-pg"));

    let first = push(&["--prefix", "databases"]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(
        first.stdout,
        "wrote secret/data/agents/migrated-pg (version 1): password, port\n"
    );
    assert!(
        !exists("secret/agents/comm/github"),
        "--prefix: only databases"
    );
    let second = push(&["--prefix", "communication"]);
    assert_eq!(
        second.stdout, "wrote secret/data/agents/comm/github (version 1): token\n",
        "{second:?}"
    );
    assert_eq!(
        bao_out(
            &bao_server,
            &["kv", "get", "-field=password", "secret/agents/migrated-pg"]
        ),
        PUSHED_PW
    );

    // Read back through agentsec, with the same mounts.
    let cfg_arg = cfg.display().to_string();
    let run = probe(
        &s,
        &["--vault-config", &cfg_arg],
        &[],
        json!([
            {"get": "databases.postgres.password", "expect": PUSHED_PW},
            {"get": "databases.postgres.port", "expect": "6543"},
            {"get": "communication.github.token", "expect": PUSHED_TOKEN},
        ]),
    );
    let out = results(&run);
    for r in &out {
        assert_eq!(r["matches"], json!(true), "{out:?}");
    }
    for value in [PUSHED_PW, PUSHED_TOKEN, ROOT] {
        for r in [&refused, &dry, &first, &second] {
            assert_no_leak(value, r.stdout.as_bytes(), "push's stdout");
            assert_no_leak(value, r.stderr.as_bytes(), "push's stderr");
        }
    }
}

/// A 3-node OpenBao Raft cluster: `serve`, configured with the three addresses (a standby
/// first), reads what was just written through the active node (the standby forwards), and
/// keeps serving a burst of reads, none cached, while the leader is killed.
#[test]
fn reads_keep_working_while_the_raft_leader_is_killed() {
    let _ = (skills_dir(), bin("agentsec"));
    let mut cluster = agentsec_tests::peers::RaftCluster::start(3);
    assert_eq!(cluster.leader(), Some(0));
    let root = cluster.root_token.clone();
    let put = |node: usize, value: &str| {
        ok(&bao(
            &cluster.nodes[node],
            &root,
            &[
                "kv",
                "put",
                "secret/agents/postgres",
                &format!("password={value}"),
            ],
        ));
    };
    put(0, PG_V1);
    let s = Scratch::new();
    let creds = Creds::new();
    let token_file = creds.write("token", &format!("{root}\n"));
    let addresses = cluster.addresses();
    let cfg = s.write(
        "work/vault-config.yaml",
        &format!(
            "vault:\n  address: [{}, {}, {}]\n  cache_ttl: 0s\n  auth:\n    method: token\n    token_file: {}\nsecrets:\n  databases.postgres: secret/data/agents/postgres\n",
            addresses[1],
            addresses[2],
            addresses[0],
            token_file.display()
        ),
    );
    let policy = operator_policy(&s);
    let (daemon, socket) = serve_vault(&s, &cfg, &policy);
    let read = |expect: &str| {
        let run = connect_probe(
            &s,
            &socket,
            json!([{"get": "databases.postgres.password", "expect": expect}]),
        );
        results(&run)[0].clone()
    };
    let first = read(PG_V1);
    assert_eq!(first["matches"], json!(true), "{first}");
    // Read-after-write: written through the active node, read at once through a standby.
    put(0, PG_V2);
    let after = read(PG_V2);
    assert_eq!(after["matches"], json!(true), "a stale read: {after}");

    // A burst of reads; the leader is killed after the first few.
    let mut outcomes = Vec::new();
    let start = std::time::Instant::now();
    let mut killed = None;
    while start.elapsed() < std::time::Duration::from_secs(15) {
        if killed.is_none() && outcomes.len() >= 3 {
            cluster.nodes[0].kill();
            killed = Some(start.elapsed());
        }
        outcomes.push((start.elapsed(), read(PG_V2)));
    }
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|(_, r)| r["matches"] != json!(true))
        .collect();
    assert!(
        failed.is_empty(),
        "leader killed at {killed:?}; failed reads: {failed:?} of {}",
        outcomes.len()
    );
    let longest = outcomes
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or_default();
    eprintln!(
        "{} reads, leader killed at {killed:?}, longest read {longest:?}",
        outcomes.len()
    );
    let after_kill = outcomes.iter().filter(|(t, _)| Some(*t) > killed).count();
    assert!(
        after_kill >= 5,
        "too few reads after the kill: {outcomes:?}"
    );
    // The two survivors elected one of them.
    let waited = std::time::Instant::now();
    while !matches!(cluster.leader(), Some(1 | 2)) {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(30),
            "no new leader: {:?}",
            cluster.health()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    let stderr = daemon.stop();
    for value in [root.as_str(), PG_V2] {
        assert_no_leak(value, stderr.as_bytes(), "serve's stderr");
    }
}

/// OpenBao's database engine on `bao_server`, connected to `pg` as its superuser, with a
/// role `readonly` whose users are created `... VALID UNTIL ...{extra}` (10 minute TTL).
fn database_engine(bao_server: &Server, pg: &agentsec_tests::sink_peers::PgCluster, extra: &str) {
    ok(&bao(bao_server, ROOT, &["secrets", "enable", "database"]));
    ok(&bao(
        bao_server,
        ROOT,
        &[
            "write",
            "database/config/pg",
            "plugin_name=postgresql-database-plugin",
            &format!(
                "connection_url=postgresql://{{{{username}}}}@127.0.0.1:{}/audit?sslmode=disable",
                pg.port
            ),
            "username=postgres",
            "allowed_roles=readonly",
        ],
    ));
    ok(&bao(
        bao_server,
        ROOT,
        &[
            "write",
            "database/roles/readonly",
            "db_name=pg",
            &format!(
                "creation_statements=CREATE ROLE \"{{{{name}}}}\" WITH LOGIN PASSWORD '{{{{password}}}}' VALID UNTIL '{{{{expiration}}}}'{extra};"
            ),
            "default_ttl=10m",
        ],
    ));
}

/// The `vault` roles of `pg` that the database engine created (`v-...`).
fn vault_roles(pg: &agentsec_tests::sink_peers::PgCluster) -> Vec<String> {
    pg.psql(
        "postgres",
        "SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%' ORDER BY 1",
    )
    .unwrap()
    .lines()
    .map(str::to_owned)
    .filter(|l| !l.is_empty())
    .collect()
}

/// Dynamic PostgreSQL credentials (OpenBao's database engine against a real PostgreSQL):
/// each run gets its own role, issued at its first read, and the role is gone when the run
/// ends, normally, by a limit or by a trap; audit records carry the lease id.
#[test]
fn each_run_gets_its_own_postgres_role_and_it_is_gone_after_the_run() {
    let _ = (skills_dir(), bin("agentsec-run"));
    let pg = agentsec_tests::sink_peers::PgCluster::start();
    let bao_server = server();
    database_engine(&bao_server, &pg, "");
    let s = Scratch::new();
    let creds = Creds::new();
    let cfg = config(
        &s,
        "vault-config.yaml",
        &bao_server.addr,
        &token_auth(&creds, ROOT),
        "  databases.postgres: secret/data/agents/postgres\n  vaultdb.analytics: database/creds/readonly\n",
    );
    let cfg_arg = cfg.display().to_string();
    let input = |ops: Value| {
        let input = s.write("work/input.json", &json!({ "ops": ops }).to_string());
        format!("@{}", input.display())
    };
    let spawn = |ops: Value, extra: &[&str]| {
        let policy = s.write("work/policy.yaml", POLICY);
        let mut cmd = s.command(&bin("agentsec-run"));
        cmd.arg(skill("probe"))
            .arg("--skills")
            .arg(skills_dir())
            .args(["--agent", "ops/release-manager", "--policy"])
            .arg(&policy)
            .arg("--audit-log")
            .arg(s.audit_log())
            .args(["--vault-config", &cfg_arg, "--input", &input(ops)])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    assert!(vault_roles(&pg).is_empty());

    // A run that reads both fields and then waits: its role exists while it runs.
    let child = spawn(
        json!([
            {"get": "vaultdb.analytics.username"},
            {"get": "vaultdb.analytics.password"},
            {"sleep_ms": 4000},
        ]),
        &[],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let during = loop {
        let roles = vault_roles(&pg);
        if !roles.is_empty() {
            break roles;
        }
        assert!(std::time::Instant::now() < deadline, "no role was issued");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(during.len(), 1, "one lease per run: {during:?}");
    let run = Run::from(child.wait_with_output().unwrap());
    let out = results(&run);
    assert_eq!(out[0]["ok"], json!(true), "{out:?}");
    assert_eq!(out[1]["ok"], json!(true), "{out:?}");
    assert!(vault_roles(&pg).is_empty(), "the role outlived the run");
    // The username is the role's name: redacted from the output like any secret.
    assert_no_leak(&during[0], run.stdout.as_bytes(), "the run's output");
    let reads: Vec<Value> = s
        .audit_records()
        .into_iter()
        .filter(|r| r["secret_path"] == "vaultdb.analytics.password")
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    let detail = reads[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("lease database/creds/readonly/"),
        "{reads:?}"
    );

    // Ended by a limit (the deadline) and by a trap: revoked all the same.
    for (ops, extra) in [
        (
            json!([{"get": "vaultdb.analytics.password"}, {"spin": true}]),
            &["--timeout", "2s"][..],
        ),
        (
            json!([{"get": "vaultdb.analytics.password"}, {"recurse": 100_000_000u64}]),
            &[][..],
        ),
    ] {
        let run = Run::from(spawn(ops, extra).wait_with_output().unwrap());
        assert_ne!(run.code, 0, "{run:?}");
        assert!(vault_roles(&pg).is_empty(), "the role outlived {run:?}");
    }
    // Outside a run (`agentsec exec`, a listing) nothing is issued.
    let list = probe(
        &s,
        &["--vault-config", &cfg_arg],
        &[],
        json!([{"list": "vaultdb"}]),
    );
    let names = results(&list)[0]["names"].clone();
    assert_eq!(
        names,
        json!(["vaultdb.analytics.username", "vaultdb.analytics.password"]),
        "{names}"
    );
    assert!(vault_roles(&pg).is_empty());
    let log = std::fs::read_to_string(s.audit_log()).unwrap();
    assert!(
        !log.contains(&during[0]),
        "the role name is in the audit log"
    );
}

/// The skill logs in with the credential Vault issued for its run: `pg-healthcheck` over
/// TCP egress, against a PostgreSQL that checks the password of every role the engine
/// creates; the role is gone after the run.
#[test]
fn a_skill_logs_in_to_postgres_with_the_credential_issued_for_its_run() {
    let _ = (skills_dir(), bin("agentsec-run"));
    let pg = agentsec_tests::sink_peers::PgCluster::start();
    pg.psql("postgres", "CREATE ROLE dynamic_users NOLOGIN")
        .unwrap();
    pg.psql(
        "postgres",
        "GRANT CONNECT ON DATABASE audit TO dynamic_users",
    )
    .unwrap();
    pg.require_password("+dynamic_users");
    let bao_server = server();
    database_engine(&bao_server, &pg, " IN ROLE dynamic_users");
    let s = Scratch::new();
    let creds = Creds::new();
    let cfg = config(
        &s,
        "vault-config.yaml",
        &bao_server.addr,
        &token_auth(&creds, ROOT),
        "  databases.postgres.dyn: database/creds/readonly\n",
    );
    let policy = s.write(
        "work/policy.yaml",
        &format!(
            "access_control:\n  secrets:\n    databases.postgres.dyn:\n      allowed_agents: [ops/deploy-validator]\negress:\n  - url: \"tcp://127.0.0.1:{}\"\n    agents: [ops/deploy-validator]\n",
            pg.port
        ),
    );
    let input = json!({"env": "dyn", "host": "127.0.0.1", "port": pg.port, "database": "audit"})
        .to_string();
    let run = Run::from(
        s.command(&bin("agentsec-run"))
            .arg(skill("pg-healthcheck"))
            .arg("--skills")
            .arg(skills_dir())
            .args(["--agent", "ops/deploy-validator", "--policy"])
            .arg(&policy)
            .arg("--audit-log")
            .arg(s.audit_log())
            .arg("--vault-config")
            .arg(&cfg)
            .args(["--input", &input])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    assert_eq!(report["healthy"], true, "{report}");
    assert_eq!(report["select_1"], 1, "{report}");
    assert!(vault_roles(&pg).is_empty(), "the role outlived the run");
    let leased: Vec<Value> = s
        .audit_records()
        .into_iter()
        .filter(|r| {
            r["secret_path"] == "databases.postgres.dyn.password"
                && r["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("lease database/creds/readonly/"))
        })
        .collect();
    assert_eq!(leased.len(), 1, "{:?}", s.audit_records());
}

/// The server dies in the middle of a run: the run's next read is `unavailable` (never
/// `not-found`, never a stale value with the cache off), on the record, and the run ends
/// normally with what it had.
#[test]
fn a_server_killed_mid_run_makes_the_next_read_unavailable() {
    let _ = (skills_dir(), bin("agentsec-run"));
    let mut bao_server = server();
    let s = Scratch::new();
    let creds = Creds::new();
    let cfg = config(
        &s,
        "vault-config.yaml",
        &bao_server.addr,
        &token_auth(&creds, ROOT),
        "  databases.postgres: secret/data/agents/postgres\n",
    );
    let cfg = with_settings(&s, &cfg, "  cache_ttl: 0s\n  timeout: 1s\n");
    let input = s.write(
        "work/input.json",
        &json!({"ops": [
            {"get": "databases.postgres.password", "expect": PG_V2},
            {"sleep_ms": 3000},
            {"get": "databases.postgres.password"},
        ]})
        .to_string(),
    );
    let policy = s.write("work/policy.yaml", POLICY);
    let child = s
        .command(&bin("agentsec-run"))
        .arg(skill("probe"))
        .arg("--skills")
        .arg(skills_dir())
        .args(["--agent", "ops/release-manager", "--policy"])
        .arg(&policy)
        .arg("--audit-log")
        .arg(s.audit_log())
        .arg("--vault-config")
        .arg(&cfg)
        .arg("--input")
        .arg(format!("@{}", input.display()))
        .args(["--timeout", "20s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the server once the first read is on the record.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !s
        .audit_records()
        .iter()
        .any(|r| r["secret_path"] == "databases.postgres.password")
    {
        assert!(std::time::Instant::now() < deadline, "no first read");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    bao_server.kill();
    let run = Run::from(child.wait_with_output().unwrap());
    let out = results(&run);
    assert_eq!(out[0]["matches"], json!(true), "{out:?}");
    assert_eq!(out[2]["err"], "unavailable", "{out:?}");
    let reads: Vec<Value> = s
        .audit_records()
        .into_iter()
        .filter(|r| r["secret_path"] == "databases.postgres.password")
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert_eq!(reads[1]["detail"], "unavailable", "{reads:?}");
    assert_nowhere(&s, &run, PG_V2, "a server killed mid-run");
}

/// A token that cannot be renewed expires: agentsec logs in again, reading `token_file`
/// again, so a token rotated into the file (as `vault agent` does) takes over.
#[test]
fn an_expired_token_is_replaced_from_the_token_file() {
    let _ = (skills_dir(), bin("agentsec"));
    let bao_server = server();
    let s = Scratch::new();
    let creds = Creds::new();
    agentsec_policy(&bao_server, &creds);
    let token = |ttl: &str| {
        bao_out(
            &bao_server,
            &[
                "token",
                "create",
                &format!("-ttl={ttl}"),
                "-renewable=false",
                "-policy=agentsec",
                "-field=token",
            ],
        )
    };
    let first = token("6s");
    let cfg = config(
        &s,
        "vault-config.yaml",
        &bao_server.addr,
        &token_auth(&creds, &first),
        "  databases.postgres: secret/data/agents/postgres\n",
    );
    let cfg = with_settings(&s, &cfg, "  cache_ttl: 0s\n");
    let policy = operator_policy(&s);
    let (daemon, socket) = serve_vault(&s, &cfg, &policy);
    let read = || {
        let run = connect_probe(
            &s,
            &socket,
            json!([{"get": "databases.postgres.password", "expect": PG_V2}]),
        );
        results(&run)[0].clone()
    };
    assert_eq!(read()["matches"], json!(true));
    // The operator's tooling rotates the token; the old one runs out.
    let second = token("1h");
    creds.write("token", &format!("{second}\n"));
    std::thread::sleep(std::time::Duration::from_secs(8));
    let after = read();
    assert_eq!(after["matches"], json!(true), "{after}");
    let stderr = daemon.stop();
    for value in [first.as_str(), second.as_str(), PG_V2] {
        assert_no_leak(value, stderr.as_bytes(), "serve's stderr");
    }
}

/// An AppRole secret id kept in a SOPS file (`secret_id_file: sops:FILE#path`): decrypted
/// in memory with agentsec's own SOPS key at login, and in no output, log or file.
#[test]
fn an_approle_secret_id_can_live_in_a_sops_file() {
    let bao_server = server();
    agentsec_policy(&bao_server, &Creds::new());
    bao_out(&bao_server, &["auth", "enable", "approle"]);
    bao_out(
        &bao_server,
        &[
            "write",
            "auth/approle/role/agent-role",
            "token_policies=agentsec",
            "token_ttl=60s",
        ],
    );
    let role_id = bao_out(
        &bao_server,
        &[
            "read",
            "-field=role_id",
            "auth/approle/role/agent-role/role-id",
        ],
    );
    let secret_id = bao_out(
        &bao_server,
        &[
            "write",
            "-f",
            "-field=secret_id",
            "auth/approle/role/agent-role/secret-id",
        ],
    );
    let s = Scratch::new();
    let creds = Creds::new();
    let sops_file = s.sops_encrypt(
        "work/vault-creds.yaml",
        &format!("vault:\n  secret_id: \"{secret_id}\"\n"),
    );
    let auth = format!(
        "    method: approle\n    role_id_file: {}\n    secret_id_file: \"sops:{}#vault.secret_id\"\n",
        creds.write("role_id", &role_id).display(),
        sops_file.display()
    );
    let cfg = config(
        &s,
        "vault-config.yaml",
        &bao_server.addr,
        &auth,
        "  databases.postgres: secret/data/agents/postgres\n",
    );
    let cfg_arg = cfg.display().to_string();
    let key = demo_key().display().to_string();
    let run = probe(
        &s,
        &["--vault-config", &cfg_arg],
        &[("SOPS_AGE_KEY_FILE", &key)],
        json!([{"get": "databases.postgres.password", "expect": PG_V2}]),
    );
    let out = results(&run);
    assert_eq!(out[0]["matches"], json!(true), "{out:?}");
    assert_nowhere(&s, &run, &secret_id, "a SOPS-held secret id");
    // Without the key, the login fails, naming the source and not the value.
    let run = probe(
        &s,
        &["--vault-config", &cfg_arg],
        &[],
        json!([{"get": "databases.postgres.password"}]),
    );
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("vault.auth.secret_id_file"), "{run:?}");
    assert_nowhere(&s, &run, &secret_id, "a failed SOPS source");
}

/// Several addresses of a server without HA storage (a dev server, or a load balancer in
/// front of one): it answers everything itself, so reads go to it, past an address that
/// is down; and an address list where nothing answers is `unavailable`.
#[test]
fn several_addresses_of_a_server_without_ha_are_read_past_a_dead_one() {
    let bao_server = server();
    let s = Scratch::new();
    let creds = Creds::new();
    let token_file = creds.write("token", &format!("{ROOT}\n"));
    let dead = format!("http://127.0.0.1:{}", agentsec_tests::peers::free_port());
    let write = |addresses: &str| {
        s.write(
            "work/vault-config.yaml",
            &format!(
                "vault:\n  address: [{addresses}]\n  timeout: 1s\n  auth:\n    method: token\n    token_file: {}\nsecrets:\n  databases.postgres: secret/data/agents/postgres\n",
                token_file.display()
            ),
        )
    };
    let cfg = write(&format!("{dead}, {}", bao_server.addr));
    let cfg_arg = cfg.display().to_string();
    let run = probe(
        &s,
        &["--vault-config", &cfg_arg],
        &[],
        json!([{"get": "databases.postgres.password", "expect": PG_V2}]),
    );
    let out = results(&run);
    assert_eq!(out[0]["matches"], json!(true), "{out:?}");
    assert_nowhere(&s, &run, PG_V2, "a non-HA server behind several addresses");

    let other_dead = format!("http://127.0.0.1:{}", agentsec_tests::peers::free_port());
    write(&format!("{dead}, {other_dead}"));
    let run = probe(
        &s,
        &["--vault-config", &cfg_arg],
        &[],
        json!([{"get": "databases.postgres.password"}]),
    );
    let out = results(&run);
    assert_eq!(out[0]["err"], "unavailable", "{out:?}");
}
