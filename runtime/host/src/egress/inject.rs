//! Host-side credential injection: the `agentsec-inject` request header names the
//! secrets (comma-separated paths) the host should put into the request, as the granting
//! rule's `inject:` entry says. The skill never holds them.
//!
//! For each path, before anything is fetched: the policy must grant the agent and skill
//! `Inject { method, destination }` (the access level decides the method: `readonly`
//! GET/HEAD, `post` POST, `read-write` any), the granting rule must have an `inject:`
//! entry whose url matches the request, and the skill must not have set that header
//! itself. Any failure refuses the whole request (`HttpRequestDenied`): it is never sent
//! without the credential. The broker then releases the value (recorded as `access_type:
//! inject` with the method and `scheme://host:port`), the header is set (marked
//! sensitive), and the value is added to the response's redactor.

use agentsec_audit::{AccessType, Decision as AuditDecision, Record};
use agentsec_policy::{Decision, InjectEntry, Operation, SecretPath, Target};
use agentsec_redact::Redactor;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::secrets::SecretsCtx;

/// The request header that names the secrets to inject.
pub(crate) const INJECT_HEADER: &str = "agentsec-inject";

/// Most secrets one request may ask for. Reason: a request carries one or two
/// credentials; each costs a policy decision, a fetch and a record.
const MAX_INJECTED: usize = 4;

/// Applies the injections `request` asks for; returns the redactor for its response
/// (`None` when nothing was injected).
pub(crate) fn apply(
    ctx: &mut SecretsCtx,
    request: &mut http::Request<WasiBody>,
    target: &Target<'_>,
    method: &str,
) -> Result<Option<Redactor>, HttpError> {
    let mut paths: Vec<String> = Vec::new();
    for value in request.headers().get_all(INJECT_HEADER) {
        let text = value.to_str().map_err(|_| HttpError::HttpRequestDenied)?;
        paths.extend(
            text.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
        );
    }
    request.headers_mut().remove(INJECT_HEADER);
    if paths.is_empty() {
        return Ok(None);
    }
    let destination = format!("{}://{}:{}", target.scheme, target.host, target.port);
    let run = ctx.caller().run().clone();
    let deny = |ctx: &SecretsCtx, path: &str, rule: Option<&str>, why: &str| {
        let detail = format!("{method} {destination}; {why}");
        let _ = ctx.broker().record_now(
            &Record::new(&run, path, AccessType::Inject, AuditDecision::Deny)
                .rule(rule)
                .detail(detail.as_str()),
        );
        HttpError::HttpRequestDenied
    };
    if paths.len() > MAX_INJECTED {
        return Err(deny(
            ctx,
            "",
            None,
            &format!("limit: more than {MAX_INJECTED} secrets in one request"),
        ));
    }
    let mut redactor = Redactor::default();
    for raw in &paths {
        let operation = Operation::Inject {
            method,
            destination: &destination,
        };
        // Which entry of the granting rule applies, decided before anything is fetched.
        let entry = match SecretPath::parse(raw) {
            Ok(path) => {
                let policy = ctx.broker().policy();
                match policy.evaluate(ctx.caller().agent(), ctx.caller().skill(), &path, operation)
                {
                    Decision::Allow(grant) => {
                        let rule = grant.rule();
                        let label = rule.pattern().to_string();
                        let found = rule.inject().iter().find(|e| match e {
                            InjectEntry::Header { url, .. } => url.matches(target),
                            _ => false,
                        });
                        match found {
                            Some(InjectEntry::Header {
                                name,
                                prefix,
                                suffix,
                                ..
                            }) => {
                                if request.headers().contains_key(name.as_str()) {
                                    return Err(deny(
                                        ctx,
                                        raw,
                                        Some(&label),
                                        &format!(
                                            "the skill set the `{name}` header this rule injects"
                                        ),
                                    ));
                                }
                                Some((name.clone(), prefix.clone(), suffix.clone()))
                            }
                            _ => {
                                return Err(deny(
                                    ctx,
                                    raw,
                                    Some(&label),
                                    "no inject entry of the rule matches the request's url",
                                ));
                            }
                        }
                    }
                    Decision::Deny(_) => None,
                }
            }
            Err(_) => None,
        };
        // The broker decides again, records, fetches and releases (or refuses, on the
        // record: a denial, an unknown path, an invalid one).
        let (broker, caller) = ctx.broker_and_caller();
        let released = match broker.request(caller, operation, raw) {
            Ok(released) => released,
            Err(refusal) => {
                tracing::info!(%refusal, "injection refused");
                return Err(HttpError::HttpRequestDenied);
            }
        };
        let Some((name, prefix, suffix)) = entry else {
            return Err(HttpError::HttpRequestDenied);
        };
        let mut value = zeroize::Zeroizing::new(Vec::with_capacity(
            prefix.len() + released.value.expose_secret().len() + suffix.len(),
        ));
        value.extend_from_slice(prefix.as_bytes());
        value.extend_from_slice(released.value.expose_secret());
        value.extend_from_slice(suffix.as_bytes());
        let mut header =
            http::HeaderValue::from_bytes(&value).map_err(|_| HttpError::HttpRequestDenied)?;
        header.set_sensitive(true);
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HttpError::HttpRequestDenied)?;
        request.headers_mut().insert(name, header);
        redactor
            .add(&released.path, released.value.expose_secret())
            .map_err(|_| HttpError::HttpRequestDenied)?;
    }
    Ok(Some(redactor))
}
