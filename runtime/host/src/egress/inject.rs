//! Host-side credential injection: the `agentsec-inject` request header names the
//! secrets (comma-separated paths) the host should put into the request, as the granting
//! rule's `inject:` entry says. The skill never holds them.
//!
//! For each path, before anything is fetched: the policy must grant the agent and skill
//! `Inject { method, destination }` (the access level decides the method: `readonly`
//! GET/HEAD, `post` POST, `read-write` any), the granting rule must have an `inject:`
//! entry whose url matches the request, and no other path of the request may go into
//! the same header. Any failure refuses the whole request (`HttpRequestDenied`): it is
//! never sent without the credential.
//!
//! Whether or not the request names any: a header that some rule's `inject:` entry puts
//! into requests to this url (whichever agents and skills the rule is for) may not be set
//! by the skill itself. The request is refused (`HttpRequestDenied`, an `inject` record
//! naming the rule and the header), so a credentialed API receives that header only from
//! the host, on the record. The broker then releases the value (recorded as `access_type:
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

/// The destination an `as: url` injection is decided and recorded with before its value
/// is known (the following `egress` record names `scheme://host:port` of the secret's url).
const AS_URL_DESTINATION: &str = "the url held in the secret";

/// Longest URL an `as: url` secret may hold, in bytes. Reason: webhook URLs are about 120
/// bytes; the bound keeps a wrong secret (a key file) from becoming a request line.
const MAX_SECRET_URL: usize = 2048;

/// Shortest path-and-query of an `as: url` secret that is redacted on its own. Reason: a
/// path like `/` or `/api` holds nothing secret and would redact every echo of it.
const MIN_REDACTED_PATH: usize = 8;

/// The paths the `agentsec-inject` headers of `request` name.
fn named_paths(request: &http::Request<WasiBody>) -> Result<Vec<String>, HttpError> {
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
    Ok(paths)
}

/// The `as: url` injection, applied before the egress checks: when a path the request
/// names is granted to the agent and skill for `Inject` with this method (the access
/// level decides) by a rule with an `as: url` entry, the broker releases the value, it
/// replaces the request's whole URL (and its Host header), and the path is taken off the
/// `agentsec-inject` header. The value (and its URL's path and query) go into `redactor`,
/// the run's response redactor; `true` when a named path is an `as: url` secret. The value
/// is never put into a message or record; a value that is not an `http(s)://` URL refuses
/// the request.
pub(crate) fn apply_as_url(
    ctx: &mut SecretsCtx,
    request: &mut http::Request<WasiBody>,
    method: &str,
    redactor: &mut Redactor,
) -> Result<bool, HttpError> {
    let paths = named_paths(request)?;
    if paths.len() > MAX_INJECTED {
        // `apply` records and refuses it.
        return Ok(false);
    }
    let operation = Operation::Inject {
        method,
        destination: AS_URL_DESTINATION,
    };
    let mut found: Vec<&String> = Vec::new();
    for raw in &paths {
        let Ok(path) = SecretPath::parse(raw) else {
            continue;
        };
        let policy = ctx.broker().policy();
        let as_url =
            |op| match policy.evaluate(ctx.caller().agent(), ctx.caller().skill(), &path, op) {
                Decision::Allow(grant) => grant
                    .rule()
                    .inject()
                    .iter()
                    .any(|e| matches!(e, InjectEntry::AsUrl)),
                Decision::Deny(_) => false,
            };
        if as_url(operation) {
            found.push(raw);
        } else if as_url(Operation::List) {
            // An `as: url` secret this request may not use (the method against the
            // access level): the broker decides again and puts the refusal on the record.
            let (broker, caller) = ctx.broker_and_caller();
            if let Err(refusal) = broker.request(caller, operation, raw) {
                tracing::info!(%refusal, "injection refused");
            }
            return Err(HttpError::HttpRequestDenied);
        }
    }
    let run = ctx.caller().run().clone();
    let deny = |ctx: &SecretsCtx, path: &str, why: &str| {
        let detail = format!("{method} {AS_URL_DESTINATION}; {why}");
        let _ = ctx.broker().record_now(
            &Record::new(&run, path, AccessType::Inject, AuditDecision::Deny)
                .detail(detail.as_str()),
        );
        HttpError::HttpRequestDenied
    };
    let raw = match found.as_slice() {
        [] => return Ok(false),
        [one] => (*one).clone(),
        [first, ..] => {
            return Err(deny(
                ctx,
                first,
                "a request may name one `as: url` secret (it is the whole url)",
            ));
        }
    };
    let (broker, caller) = ctx.broker_and_caller();
    let released = match broker.request(caller, operation, &raw) {
        Ok(released) => released,
        Err(refusal) => {
            tracing::info!(%refusal, "injection refused");
            return Err(HttpError::HttpRequestDenied);
        }
    };
    let value = released.value.expose_secret();
    let text = std::str::from_utf8(value)
        .ok()
        .map(str::trim)
        .filter(|t| t.len() <= MAX_SECRET_URL);
    let uri = text
        .and_then(|t| t.parse::<http::Uri>().ok())
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some());
    let Some(uri) = uri else {
        return Err(deny(
            ctx,
            &raw,
            "the secret is not an http(s) url of at most 2048 bytes (its value is not shown)",
        ));
    };
    redactor
        .add(&released.path, value)
        .map_err(|_| HttpError::HttpRequestDenied)?;
    if let Some(t) = text
        && t.len() != value.len()
    {
        redactor
            .add(&released.path, t.as_bytes())
            .map_err(|_| HttpError::HttpRequestDenied)?;
    }
    // A server that echoes the request line shows the path and query, not the whole URL:
    // they are redacted too (they hold the webhook's token).
    if let Some(pq) = uri.path_and_query().map(http::uri::PathAndQuery::as_str)
        && pq.len() >= MIN_REDACTED_PATH
    {
        redactor
            .add(&released.path, pq.as_bytes())
            .map_err(|_| HttpError::HttpRequestDenied)?;
    }
    let host = uri
        .authority()
        .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
        .ok_or(HttpError::HttpRequestDenied)?;
    *request.uri_mut() = uri;
    request.headers_mut().insert(http::header::HOST, host);
    let rest: Vec<&str> = paths
        .iter()
        .filter(|p| **p != raw)
        .map(String::as_str)
        .collect();
    request.headers_mut().remove(INJECT_HEADER);
    if !rest.is_empty() {
        let joined = http::HeaderValue::from_str(&rest.join(","))
            .map_err(|_| HttpError::HttpRequestDenied)?;
        request.headers_mut().insert(INJECT_HEADER, joined);
    }
    Ok(true)
}

/// Applies the injections `request` asks for, adding each value to `redactor` (the run's
/// response redactor: built once per run, so a skill that injects the same secret into
/// every request pays for its forms once); `true` when a value was injected.
pub(crate) fn apply(
    ctx: &mut SecretsCtx,
    request: &mut http::Request<WasiBody>,
    target: &Target<'_>,
    method: &str,
    redactor: &mut Redactor,
) -> Result<bool, HttpError> {
    let paths = named_paths(request)?;
    request.headers_mut().remove(INJECT_HEADER);
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
    // A header some rule injects at this destination comes from the host only, whether
    // or not this request asks for an injection (and whoever the rule is for): the
    // skill's own `Authorization` to a credentialed API is refused, not sent.
    let policy = ctx.broker().policy();
    if let Some((rule, name)) =
        policy.injected_header(target, |name| request.headers().contains_key(name))
    {
        let label = rule.pattern().to_string();
        let why = format!(
            "denied: the skill set the `{name}` header, which rule {rule} injects at this url"
        );
        return Err(deny(ctx, "", Some(&label), &why));
    }
    if paths.is_empty() {
        return Ok(false);
    }
    if paths.len() > MAX_INJECTED {
        return Err(deny(
            ctx,
            "",
            None,
            &format!("limit: more than {MAX_INJECTED} secrets in one request"),
        ));
    }
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
                            // The skill did not set `name` itself (checked above), so
                            // an earlier path of this request put it there.
                            Some(InjectEntry::Header { name, .. })
                                if request.headers().contains_key(name.as_str()) =>
                            {
                                return Err(deny(
                                    ctx,
                                    raw,
                                    Some(&label),
                                    &format!(
                                        "another secret of this request is injected into the `{name}` header"
                                    ),
                                ));
                            }
                            Some(InjectEntry::Header {
                                name,
                                prefix,
                                suffix,
                                ..
                            }) => Some((name.clone(), prefix.clone(), suffix.clone())),
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
    Ok(true)
}
