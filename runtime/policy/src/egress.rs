//! Outgoing network access for skills: the top-level `egress:` rules.
//!
//! ```yaml
//! egress:
//!   - url: "https://api.github.com/repos/**"   # scheme, host, optional port, path glob
//!     methods: [GET, POST]                     # default: [GET, HEAD]
//!     agents: ["ops/*"]                        # required
//!     skills: [github-release]                 # optional: every skill when absent
//!     allow_private: false                     # default false
//!   - url: "tcp://127.0.0.1:5432"              # TCP (wasi:sockets), no methods
//!     agents: [ops/deploy-validator]
//! ```
//!
//! Deny by default: a request is allowed only when some rule matches its agent, skill,
//! method, scheme, host, port and path ([`Policy::egress`](crate::Policy::egress)). Hosts
//! are matched exactly (ASCII case-insensitively), never as suffixes. A path glob has `*`
//! for one whole segment and `**` for any number of segments; a URL without a path allows
//! every path. Request paths with dot segments or encoded `.` `/` `\` are refused before
//! matching, so that `/repos/../admin` cannot pass for `/repos/**`.
//!
//! Whether a *resolved address* may be used is the host's check (this crate does no I/O):
//! [`EgressGrant::permits_address`] says whether a rule lets a loopback, private,
//! link-local or metadata address through (only when the rule names that address
//! literally or sets `allow_private: true`).

use std::fmt;
use std::net::IpAddr;

use crate::agent::{AgentGlob, AgentId};
use crate::error::Location;
use crate::rule::GlobList;
use crate::skill::{SkillRef, SkillSelector};

/// Most entries in `egress:` (all files together). Reason: far beyond a hand-written
/// policy; every request is matched against each rule in order.
pub const MAX_EGRESS_RULES: usize = 1000;

/// Longest accepted egress `url`, in bytes. Reason: real API prefixes are tens of bytes;
/// the bound keeps matching and error messages short.
pub const MAX_EGRESS_URL_LEN: usize = 2048;

/// The scheme of an egress rule or request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scheme {
    /// `http` (port 80 by default).
    Http,
    /// `https` (port 443 by default).
    Https,
    /// `tcp` (a port is required): wasi:sockets TCP connections.
    Tcp,
}

impl Scheme {
    /// The scheme as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Tcp => "tcp",
        }
    }

    /// Parses a scheme (lowercase, as URLs write it).
    pub fn parse(text: &str) -> Option<Scheme> {
        match text.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            "tcp" => Some(Scheme::Tcp),
            _ => None,
        }
    }

    /// The port used when a URL gives none (`None` for `tcp`).
    pub fn default_port(self) -> Option<u16> {
        match self {
            Scheme::Http => Some(80),
            Scheme::Https => Some(443),
            Scheme::Tcp => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host as a rule or a request names it: a DNS name (lowercase) or an IP literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// A DNS name, lowercased.
    Name(String),
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
}

impl Host {
    /// Parses a host: `[v6]`, a v4 literal, or a DNS name (`a-z 0-9 . -`, case-folded).
    ///
    /// # Errors
    /// Why it is not a host, in words.
    pub fn parse(text: &str) -> Result<Host, String> {
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or("an IPv6 host must be written `[...]`")?;
            return inner
                .parse::<std::net::Ipv6Addr>()
                .map(|ip| Host::Ip(IpAddr::V6(ip)))
                .map_err(|_| format!("`[{inner}]` is not an IPv6 address"));
        }
        if let Ok(ip) = text.parse::<std::net::Ipv4Addr>() {
            return Ok(Host::Ip(IpAddr::V4(ip)));
        }
        if text.is_empty() {
            return Err("the host is empty".to_owned());
        }
        if text.len() > 253 {
            return Err(format!("the host is {} bytes; at most 253", text.len()));
        }
        if let Some((pos, ch)) = text
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
        {
            return Err(format!(
                "the host has {ch:?} at byte {pos}; a host is a DNS name (letters, digits, `.`, `-`) or an IP address"
            ));
        }
        if text.starts_with('.') || text.ends_with('.') || text.contains("..") {
            return Err("the host has an empty label".to_owned());
        }
        // A name made only of digits and dots that did not parse as IPv4 (`127.1`,
        // `0x7f.1` is refused above): resolvers read such names as addresses.
        if text.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(format!(
                "`{text}` looks like a shortened IPv4 address; write the address in full (a.b.c.d)"
            ));
        }
        Ok(Host::Name(text.to_ascii_lowercase()))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// One segment of a path glob.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PathSegment {
    Literal(String),
    /// `*`: one whole segment.
    One,
    /// `**`: any number of segments (zero included).
    Any,
}

/// The URL pattern of an egress rule: `scheme://host[:port][/path/glob]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UrlPattern {
    scheme: Scheme,
    host: Host,
    port: u16,
    /// `None`: every path.
    path: Option<Vec<PathSegment>>,
    text: String,
}

impl UrlPattern {
    /// Parses an egress `url`.
    ///
    /// # Errors
    /// What is wrong with it and how to write it, in words.
    pub fn parse(text: &str) -> Result<UrlPattern, String> {
        if text.len() > MAX_EGRESS_URL_LEN {
            return Err(format!(
                "the url is {} bytes; at most {MAX_EGRESS_URL_LEN}",
                text.len()
            ));
        }
        let (scheme, rest) = text.split_once("://").ok_or(
            "write a URL with its scheme: `https://api.example.com/v1/**` or `tcp://db.example.com:5432`",
        )?;
        let scheme = Scheme::parse(scheme)
            .ok_or_else(|| format!("unknown scheme `{scheme}`; use http, https or tcp"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        if authority.contains('@') {
            return Err("a url may not hold user information (`user@`)".to_owned());
        }
        if rest.contains(['?', '#']) {
            return Err("a url pattern has no query or fragment; match on the path".to_owned());
        }
        let (host, port) = split_port(authority)?;
        let host = Host::parse(host)?;
        let port = match (port, scheme.default_port()) {
            (Some(p), _) => p,
            (None, Some(p)) => p,
            (None, None) => return Err("a tcp url needs a port: `tcp://HOST:PORT`".to_owned()),
        };
        let path = match path {
            None => None,
            Some(_) if scheme == Scheme::Tcp => {
                return Err("a tcp url has no path: `tcp://HOST:PORT`".to_owned());
            }
            Some(p) => Some(parse_path_glob(p)?),
        };
        Ok(UrlPattern {
            scheme,
            host,
            port,
            path,
            text: text.to_owned(),
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port (the scheme's default when the url gives none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `scheme://host:port`, as audit records name destinations.
    pub fn destination(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    /// Whether a request to `target` matches (scheme, host, port, path).
    pub fn matches(&self, target: &Target<'_>) -> bool {
        self.scheme == target.scheme
            && self.host == *target.host
            && self.port == target.port
            && match &self.path {
                None => true,
                Some(glob) => path_matches(glob, target.path),
            }
    }

    /// Whether every request this pattern matches, `other` matches too.
    pub fn is_within(&self, other: &UrlPattern) -> bool {
        if self.scheme != other.scheme || self.host != other.host || self.port != other.port {
            return false;
        }
        match (&self.path, &other.path) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => glob_within(a, b),
        }
    }
}

impl fmt::Display for UrlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `host[:port]` → host text and port.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if authority.starts_with('[') {
        match authority.rfind("]:") {
            Some(i) => (&authority[..=i], Some(&authority[i + 2..])),
            None => (authority, None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("`{p}` is not a port (1-65535)")),
        },
    };
    Ok((host, port))
}

/// A path glob: `/` then segments; `*` is one segment, `**` any number.
fn parse_path_glob(path: &str) -> Result<Vec<PathSegment>, String> {
    check_path(path).map_err(|e| format!("the url's path {e}"))?;
    let mut out = Vec::new();
    for seg in path[1..].split('/') {
        out.push(match seg {
            "**" => PathSegment::Any,
            "*" => PathSegment::One,
            s if s.contains('*') => {
                return Err(format!(
                    "path segment `{s}`: `*` stands for a whole segment (`/v1/*/items`) and `**` for any number of them"
                ));
            }
            s => PathSegment::Literal(s.to_owned()),
        });
    }
    // `/` alone: the root path only.
    if out == [PathSegment::Literal(String::new())] {
        out.clear();
        out.push(PathSegment::Literal(String::new()));
    }
    Ok(out)
}

/// Refuses paths whose meaning a server may change after we matched them: dot segments
/// and encoded `.`, `/`, `\`, or a backslash.
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must start with `/`".to_owned());
    }
    if path.contains('\\') {
        return Err("holds a backslash".to_owned());
    }
    let lower = path.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%00"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return Err("holds an encoded `.`, `/`, `\\` or NUL".to_owned());
    }
    if path[1..].split('/').any(|s| s == "." || s == "..") {
        return Err("holds a `.` or `..` segment".to_owned());
    }
    if path.chars().any(char::is_control) {
        return Err("holds a control character".to_owned());
    }
    Ok(())
}

/// Whether `path` (checked, without its query) matches `glob`.
fn path_matches(glob: &[PathSegment], path: &str) -> bool {
    let segs: Vec<&str> = path.get(1..).unwrap_or("").split('/').collect();
    match_segments(glob, &segs)
}

fn match_segments(glob: &[PathSegment], segs: &[&str]) -> bool {
    match glob.split_first() {
        None => segs.is_empty(),
        Some((PathSegment::Any, rest)) => {
            (0..=segs.len()).any(|i| match_segments(rest, &segs[i..]))
        }
        Some((PathSegment::One, rest)) => {
            segs.first().is_some_and(|s| !s.is_empty()) && match_segments(rest, &segs[1..])
        }
        Some((PathSegment::Literal(l), rest)) => {
            segs.first().is_some_and(|s| s == l) && match_segments(rest, &segs[1..])
        }
    }
}

/// Whether every path `a` matches, `b` matches (conservative: false when unsure).
fn glob_within(a: &[PathSegment], b: &[PathSegment]) -> bool {
    match (a.split_first(), b.split_first()) {
        (None, None) => true,
        (_, Some((PathSegment::Any, b_rest))) => {
            (0..=a.len()).any(|i| glob_within(&a[i..], b_rest))
        }
        (Some((PathSegment::Literal(x), a_rest)), Some((PathSegment::Literal(y), b_rest))) => {
            x == y && glob_within(a_rest, b_rest)
        }
        (Some((PathSegment::Literal(x), a_rest)), Some((PathSegment::One, b_rest))) => {
            !x.is_empty() && glob_within(a_rest, b_rest)
        }
        (Some((PathSegment::One, a_rest)), Some((PathSegment::One, b_rest))) => {
            glob_within(a_rest, b_rest)
        }
        _ => false,
    }
}

/// Where a request goes, as the host parsed it from the skill's request.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The scheme.
    pub scheme: Scheme,
    /// The host.
    pub host: &'a Host,
    /// The port (the scheme's default when the request gives none).
    pub port: u16,
    /// The path, without its query; must have passed [`check_path`].
    pub path: &'a str,
}

/// A parsed `egress:` entry, before compilation.
#[derive(Debug)]
pub(crate) struct EgressDef {
    pub(crate) url: UrlPattern,
    pub(crate) methods: Vec<String>,
    pub(crate) agents: Vec<AgentGlob>,
    pub(crate) skills: Vec<SkillSelector>,
    pub(crate) allow_private: bool,
    pub(crate) at: Location,
}

/// A compiled `egress:` entry.
#[derive(Debug)]
pub(crate) struct EgressRule {
    pub(crate) url: UrlPattern,
    pub(crate) methods: Vec<String>,
    pub(crate) agents: GlobList,
    pub(crate) skills: Vec<SkillSelector>,
    pub(crate) allow_private: bool,
    pub(crate) at: Location,
}

impl EgressRule {
    pub(crate) fn compile(def: EgressDef) -> Result<Self, crate::error::GlobError> {
        Ok(EgressRule {
            url: def.url,
            methods: def.methods,
            agents: GlobList::new(def.agents)?,
            skills: def.skills,
            allow_private: def.allow_private,
            at: def.at,
        })
    }

    pub(crate) fn applies_to(&self, agent: &AgentId, skill: &SkillRef) -> bool {
        self.agents
            .is_match(&globset::Candidate::new(agent.as_str()))
            && (self.skills.is_empty() || self.skills.iter().any(|s| s.matches(skill)))
    }
}

/// The methods an egress rule allows when it lists none.
pub const DEFAULT_EGRESS_METHODS: [&str; 2] = ["GET", "HEAD"];

/// A read-only view of one `egress:` entry.
#[derive(Clone, Copy)]
pub struct EgressRuleRef<'p> {
    pub(crate) rule: &'p EgressRule,
}

impl<'p> EgressRuleRef<'p> {
    /// The url pattern.
    pub fn url(&self) -> &'p UrlPattern {
        &self.rule.url
    }

    /// The methods it allows (empty for a `tcp` rule).
    pub fn methods(&self) -> &'p [String] {
        &self.rule.methods
    }

    /// `agents`, as written.
    pub fn agents(&self) -> &'p [AgentGlob] {
        &self.rule.agents.globs
    }

    /// `skills`; empty means every skill.
    pub fn skills(&self) -> &'p [SkillSelector] {
        &self.rule.skills
    }

    /// `allow_private`.
    pub fn allow_private(&self) -> bool {
        self.rule.allow_private
    }

    /// Whether the entry applies to `agent` running `skill` (its `agents` and `skills`).
    pub fn applies_to(&self, agent: &AgentId, skill: &SkillRef) -> bool {
        self.rule.applies_to(agent, skill)
    }

    /// Where the entry is written.
    pub fn location(&self) -> &'p Location {
        &self.rule.at
    }

    /// `egress[url] (file:line)`, as audit records and denials name the rule.
    pub fn label(&self) -> String {
        format!(
            "egress {} ({}:{})",
            self.rule.url,
            self.rule.at.origin(),
            self.rule.at.line()
        )
    }

    /// Whether a resolved `address` may be connected to under this rule: any public
    /// address; a loopback, private, link-local, metadata or otherwise special one only
    /// when the rule names that very address or sets `allow_private: true`.
    pub fn permits_address(&self, address: IpAddr) -> bool {
        self.rule.allow_private
            || is_public(address)
            || self.rule.url.host == Host::Ip(canonical_ip(address))
            || self.rule.url.host == Host::Ip(address)
    }
}

impl fmt::Debug for EgressRuleRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// An allowed egress request: the rule that allows it.
#[derive(Debug, Clone, Copy)]
pub struct EgressGrant<'p> {
    /// The matching rule.
    pub rule: EgressRuleRef<'p>,
}

impl EgressGrant<'_> {
    /// See [`EgressRuleRef::permits_address`].
    pub fn permits_address(&self, address: IpAddr) -> bool {
        self.rule.permits_address(address)
    }
}

/// Why an egress request was refused, with what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressDenial {
    message: String,
}

impl EgressDenial {
    pub(crate) fn new(message: String) -> Self {
        EgressDenial { message }
    }
}

impl fmt::Display for EgressDenial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EgressDenial {}

/// An IPv4-mapped IPv6 address as its IPv4 address; others unchanged.
pub fn canonical_ip(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Whether `address` is an ordinary public unicast address: not loopback, private
/// (RFC 1918, unique-local), link-local (cloud metadata at 169.254.169.254 included),
/// shared (100.64/10), unspecified, broadcast, multicast, documentation, benchmarking,
/// reserved, or an IPv6 form that embeds one of those (mapped, NAT64, 6to4).
pub fn is_public(address: IpAddr) -> bool {
    match canonical_ip(address) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded_v4 = |a: u16, b: u16| {
                is_public(IpAddr::V4(std::net::Ipv4Addr::new(
                    (a >> 8) as u8,
                    a as u8,
                    (b >> 8) as u8,
                    b as u8,
                )))
            };
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x64 && s[1] == 0xff9b && !embedded_v4(s[6], s[7])) // NAT64
                || (s[0] == 0x2002 && !embedded_v4(s[1], s[2])) // 6to4
                || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(scheme: Scheme, host: &'a Host, port: u16, path: &'a str) -> Target<'a> {
        Target {
            scheme,
            host,
            port,
            path,
        }
    }

    #[test]
    fn url_patterns_parse_and_match() {
        let p = UrlPattern::parse("https://API.github.com/repos/**").unwrap();
        let gh = Host::parse("api.github.com").unwrap();
        assert_eq!(p.destination(), "https://api.github.com:443");
        assert!(p.matches(&target(Scheme::Https, &gh, 443, "/repos/a/b/releases")));
        assert!(p.matches(&target(Scheme::Https, &gh, 443, "/repos")));
        assert!(!p.matches(&target(Scheme::Https, &gh, 443, "/orgs/a")));
        assert!(!p.matches(&target(Scheme::Http, &gh, 80, "/repos/a")));
        assert!(!p.matches(&target(Scheme::Https, &gh, 8443, "/repos/a")));
        let other = Host::parse("api.github.com.evil.example").unwrap();
        assert!(!p.matches(&target(Scheme::Https, &other, 443, "/repos/a")));

        let one = UrlPattern::parse("http://127.0.0.1:8080/v1/*/items").unwrap();
        let lo = Host::parse("127.0.0.1").unwrap();
        assert!(one.matches(&target(Scheme::Http, &lo, 8080, "/v1/x/items")));
        assert!(!one.matches(&target(Scheme::Http, &lo, 8080, "/v1/x/y/items")));
        assert!(!one.matches(&target(Scheme::Http, &lo, 8080, "/v1//items")));

        let all = UrlPattern::parse("http://[::1]:9").unwrap();
        assert!(all.matches(&target(
            Scheme::Http,
            &Host::parse("[::1]").unwrap(),
            9,
            "/x"
        )));
        let tcp = UrlPattern::parse("tcp://db.internal:5432").unwrap();
        assert_eq!(tcp.port(), 5432);

        for bad in [
            "api.github.com/x",
            "ftp://x/",
            "https://user@x/",
            "https://x:0/",
            "https://x:99999/",
            "https://x/a?b",
            "https://x/a*b",
            "https://x/../a",
            "https://x/%2e%2e/a",
            "tcp://x",
            "tcp://x:1/a",
            "https://127.1/",
            "https://a_b/",
            "https:///a",
        ] {
            assert!(UrlPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn within() {
        let p = |s| UrlPattern::parse(s).unwrap();
        assert!(p("https://x/a/b").is_within(&p("https://x/a/**")));
        assert!(p("https://x/a/*").is_within(&p("https://x/**")));
        assert!(p("https://x/a/**").is_within(&p("https://x")));
        assert!(!p("https://x").is_within(&p("https://x/a/**")));
        assert!(!p("https://x/a/**").is_within(&p("https://x/a/*")));
        assert!(!p("https://y/a").is_within(&p("https://x/**")));
    }

    #[test]
    fn paths_that_a_server_would_rewrite_are_refused() {
        for bad in [
            "/a/../b",
            "/a/./b",
            "/a/%2E%2E/b",
            "/a%2fb",
            "a",
            "/a\\b",
            "/a\u{0}",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_path("/a/b.c/..d").is_ok());
    }

    #[test]
    fn special_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "fd00:ec2::254",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in ["140.82.112.6", "2606:4700::1111", "1.1.1.1"] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
    }

    fn load(egress: &str) -> Result<crate::Policy, String> {
        crate::Policy::from_sources(&[(
            "p.yaml",
            format!("access_control:\n  secrets:\n    a:\n      allowed_agents: [ops/x]\n{egress}"),
        )])
        .map_err(|e| e.to_string())
    }

    #[test]
    fn egress_entries_parse_strictly_and_errors_name_the_key() {
        for (yaml, expected) in [
            ("egress: {}\n", "p.yaml:5:9: `egress` must be a list"),
            (
                "egress:\n  - url: \"https://x/\"\n",
                "p.yaml:6:5: missing `agents` in an egress entry",
            ),
            ("egress:\n  - agents: [ops/x]\n", "missing `url`"),
            (
                "egress:\n  - url: \"ftp://x/\"\n    agents: [ops/x]\n",
                "p.yaml:6:10: `egress` `url`: unknown scheme `ftp`",
            ),
            (
                "egress:\n  - url: \"https://x/\"\n    agents: [ops/x]\n    methods: [get]\n",
                "`egress` `methods`: `get` is not an HTTP method",
            ),
            (
                "egress:\n  - url: \"https://x/\"\n    agents: [ops/x]\n    method: [GET]\n",
                "unknown key `method` in an egress entry; expected one of url, methods, agents, skills, allow_private",
            ),
            (
                "egress:\n  - url: \"tcp://x:5432\"\n    agents: [ops/x]\n    methods: [GET]\n",
                "a tcp:// entry has no methods",
            ),
            (
                "egress:\n  - url: \"https://x/\"\n    agents: [ops/x]\n    allow_private: \"yes\"\n",
                "`allow_private` must be a boolean",
            ),
            (
                "egress:\n  - url: \"https://x/\"\n    agents: []\n",
                "allows no one",
            ),
        ] {
            let err = load(yaml)
                .err()
                .unwrap_or_else(|| panic!("accepted: {yaml}"));
            assert!(err.contains(expected), "{yaml}\n{err}");
        }
    }

    #[test]
    fn egress_is_deny_by_default_and_matches_agent_skill_method_and_url() {
        use crate::{AgentId, SkillDigest, SkillName, SkillRef};
        let policy = load(
            "egress:\n  - url: \"https://api.github.com/repos/**\"\n    methods: [GET, POST]\n    agents: [\"ops/*\"]\n    skills: [github-release]\n  - url: \"tcp://127.0.0.1:5432\"\n    agents: [ops/db]\n",
        )
        .unwrap();
        let ops = AgentId::parse("ops/release").unwrap();
        let dev = AgentId::parse("dev/x").unwrap();
        let gh = SkillRef::new(
            SkillName::parse("github-release").unwrap(),
            SkillDigest::from_bytes([0; 32]),
        );
        let other = SkillRef::new(
            SkillName::parse("other").unwrap(),
            SkillDigest::from_bytes([1; 32]),
        );
        let host = Host::parse("api.github.com").unwrap();
        let t = |path| Target {
            scheme: Scheme::Https,
            host: &host,
            port: 443,
            path,
        };
        assert!(policy.grants_egress(&ops, &gh));
        assert!(!policy.grants_egress(&ops, &other));
        assert!(!policy.grants_egress(&dev, &gh));
        let grant = policy
            .egress(&ops, &gh, "POST", &t("/repos/o/r/releases"))
            .unwrap();
        assert!(
            grant
                .rule
                .label()
                .starts_with("egress https://api.github.com/repos/** (p.yaml:6)")
        );
        let denied = policy
            .egress(&ops, &gh, "DELETE", &t("/repos/o/r"))
            .unwrap_err()
            .to_string();
        assert!(
            denied.contains("allows only GET, POST; add DELETE"),
            "{denied}"
        );
        let denied = policy
            .egress(&ops, &gh, "GET", &t("/orgs/o"))
            .unwrap_err()
            .to_string();
        assert!(denied.contains("no egress rule allows it"), "{denied}");
        assert!(policy.egress(&ops, &other, "GET", &t("/repos/o")).is_err());
        assert!(policy.egress(&dev, &gh, "GET", &t("/repos/o")).is_err());
        // Addresses: a public one passes; loopback only for the rule that names it.
        assert!(grant.permits_address("140.82.112.6".parse().unwrap()));
        assert!(!grant.permits_address("127.0.0.1".parse().unwrap()));
        let db = AgentId::parse("ops/db").unwrap();
        let lo = Host::parse("127.0.0.1").unwrap();
        let tcp = policy
            .egress(
                &db,
                &other,
                "",
                &Target {
                    scheme: Scheme::Tcp,
                    host: &lo,
                    port: 5432,
                    path: "/",
                },
            )
            .unwrap();
        assert!(tcp.permits_address("127.0.0.1".parse().unwrap()));
        assert!(!tcp.permits_address("10.0.0.1".parse().unwrap()));
    }
}
