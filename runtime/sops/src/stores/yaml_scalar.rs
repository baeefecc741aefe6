//! Typing of YAML scalars the way `go.yaml.in/yaml/v3` (which sops uses) resolves them when
//! decoding into `interface{}`: `resolve.go` and `decode.go`.

use std::sync::LazyLock;

use base64::Engine as _;
use yaml_rust2::parser::Tag;
use yaml_rust2::scanner::TScalarStyle;

use crate::doc::Scalar;
use crate::gofmt;

/// A resolved scalar: a value, or `null`.
#[derive(Debug, PartialEq)]
pub(crate) enum Resolved {
    Null,
    Value(Scalar),
}

impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Scalar::Str(a), Scalar::Str(b)) | (Scalar::Time(a), Scalar::Time(b)) => a == b,
            (Scalar::Int(a), Scalar::Int(b)) => a == b,
            (Scalar::Float(a), Scalar::Float(b)) => a.to_bits() == b.to_bits(),
            (Scalar::Bool(a), Scalar::Bool(b)) => a == b,
            _ => false,
        }
    }
}

/// The short form of a tag: `!!str` for `tag:yaml.org,2002:str`, `!foo` for a local tag.
fn short_tag(tag: &Tag) -> String {
    if tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!" {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

/// Kinds yaml.v3 reports in its "cannot decode" errors.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str,
    Timestamp,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Null => "!!null",
            Kind::Bool => "!!bool",
            Kind::Int => "!!int",
            Kind::Float => "!!float",
            Kind::Str => "!!str",
            Kind::Timestamp => "!!timestamp",
        }
    }
}

/// Resolves one scalar event. The error names the problem, never the value.
pub(crate) fn resolve(
    value: &str,
    style: TScalarStyle,
    tag: Option<&Tag>,
) -> Result<Resolved, String> {
    let tag = tag.map(short_tag);
    match tag.as_deref() {
        None if style != TScalarStyle::Plain => Ok(Resolved::Value(Scalar::Str(value.to_owned()))),
        None => resolve_plain(value, None).map(|(_, r)| r),
        Some("!!str") => Ok(Resolved::Value(Scalar::Str(value.to_owned()))),
        Some("!!binary") => {
            let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .map_err(|_| "a !!binary scalar that is not valid base64".to_owned())?;
            String::from_utf8(bytes)
                .map(|s| Resolved::Value(Scalar::Str(s)))
                .map_err(|_| "a !!binary scalar that is not UTF-8 (unsupported)".to_owned())
        }
        Some("!!null") => Ok(Resolved::Null),
        Some(t @ ("!!bool" | "!!int" | "!!float" | "!!timestamp")) => {
            let want = match t {
                "!!bool" => Kind::Bool,
                "!!int" => Kind::Int,
                "!!float" => Kind::Float,
                _ => Kind::Timestamp,
            };
            let (got, r) = resolve_plain(value, Some(want))?;
            match (want, got, r) {
                (w, g, r) if w == g => Ok(r),
                (Kind::Float, Kind::Int, Resolved::Value(Scalar::Int(i))) => {
                    Ok(Resolved::Value(Scalar::Float(i as f64)))
                }
                (w, g, _) => Err(format!("a {} scalar tagged {}", g.tag(), w.tag())),
            }
        }
        Some(t @ ("!!map" | "!!seq" | "!!omap" | "!!set")) => Err(format!("a scalar tagged {t}")),
        // Tags yaml.v3 cannot resolve leave the text as a string.
        Some(_) => Ok(Resolved::Value(Scalar::Str(value.to_owned()))),
    }
}

/// Whether a plain scalar with this text reads back as a string (yaml.v3 `resolve` gives
/// `!!str`); otherwise the emitter must quote it. `<<` is the merge key.
pub(crate) fn resolves_to_string(s: &str) -> bool {
    s != "<<" && matches!(resolve_plain(s, None), Ok((Kind::Str, _)))
}

static YAML_STYLE_FLOAT: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$").ok()
});

fn is_yaml_style_float(s: &str) -> bool {
    YAML_STYLE_FLOAT.as_ref().is_some_and(|re| re.is_match(s))
}

/// yaml.v3 `resolve()` for a plain scalar (or one with a resolvable tag).
fn resolve_plain(s: &str, tag: Option<Kind>) -> Result<(Kind, Resolved), String> {
    let v = |k, sc| Ok((k, Resolved::Value(sc)));
    match s {
        "true" | "True" | "TRUE" => return v(Kind::Bool, Scalar::Bool(true)),
        "false" | "False" | "FALSE" => return v(Kind::Bool, Scalar::Bool(false)),
        "" | "~" | "null" | "Null" | "NULL" => return Ok((Kind::Null, Resolved::Null)),
        ".nan" | ".NaN" | ".NAN" => return v(Kind::Float, Scalar::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return v(Kind::Float, Scalar::Float(f64::INFINITY));
        }
        "-.inf" | "-.Inf" | "-.INF" => return v(Kind::Float, Scalar::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    let first = s.as_bytes().first().copied().unwrap_or(0);
    match first {
        b'.' => {
            if let Some(f) = go_parse_float(s) {
                return v(Kind::Float, Scalar::Float(f));
            }
        }
        b'0'..=b'9' | b'+' | b'-' => {
            if matches!(tag, None | Some(Kind::Timestamp))
                && let Some(t) = gofmt::parse_yaml_timestamp(s)
            {
                return v(Kind::Timestamp, Scalar::Time(t.rfc3339_nano()));
            }
            let plain = s.replace('_', "");
            match go_parse_int(&plain) {
                IntParse::Int(i) => return v(Kind::Int, Scalar::Int(i)),
                IntParse::Unsigned => {
                    return Err("an integer outside the signed 64-bit range (sops: \
                                `Cannot walk value, unknown type: uint64`)"
                        .to_owned());
                }
                IntParse::Invalid => {}
            }
            if is_yaml_style_float(&plain)
                && let Some(f) = go_parse_float(&plain)
            {
                return v(Kind::Float, Scalar::Float(f));
            }
            for (prefix, neg, radix) in [
                ("0b", false, 2),
                ("-0b", true, 2),
                ("0o", false, 8),
                ("-0o", true, 8),
            ] {
                if let Some(digits) = plain.strip_prefix(prefix) {
                    match parse_radix(digits, radix, neg) {
                        IntParse::Int(i) => return v(Kind::Int, Scalar::Int(i)),
                        IntParse::Unsigned => {
                            return Err("an integer outside the signed 64-bit range".to_owned());
                        }
                        IntParse::Invalid => {}
                    }
                }
            }
        }
        _ => {}
    }
    v(Kind::Str, Scalar::Str(s.to_owned()))
}

enum IntParse {
    Int(i64),
    /// Fits u64 but not i64: yaml.v3 yields a uint64, which sops cannot walk.
    Unsigned,
    Invalid,
}

/// Go `strconv.ParseInt(s, 0, 64)` (underscores already removed), reporting values that
/// `ParseUint(s, 0, 64)` would accept.
fn go_parse_int(s: &str) -> IntParse {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    let r = parse_radix(digits, radix, neg);
    // ParseUint accepts no sign at all.
    if matches!(r, IntParse::Unsigned) && s.starts_with('+') {
        return IntParse::Invalid;
    }
    r
}

fn parse_radix(digits: &str, radix: u32, neg: bool) -> IntParse {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return IntParse::Invalid;
    }
    match u128::from_str_radix(digits, radix) {
        Ok(m) => {
            let signed = if neg { -(m as i128) } else { m as i128 };
            if let Ok(i) = i64::try_from(signed) {
                IntParse::Int(i)
            } else if !neg && m <= u128::from(u64::MAX) {
                IntParse::Unsigned
            } else {
                IntParse::Invalid
            }
        }
        // Longer than u128: certainly out of range; Go reports a range error -> not an int.
        Err(_) => IntParse::Invalid,
    }
}

/// Go `strconv.ParseFloat(s, 64)` for the decimal forms YAML lets through; `None` on syntax
/// errors and on overflow (Go returns an error there, so yaml.v3 keeps the text as a string).
fn go_parse_float(s: &str) -> Option<f64> {
    let f: f64 = s.parse().ok()?;
    let lower = s.to_ascii_lowercase();
    if f.is_infinite() && !lower.contains("inf") {
        return None;
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(s: &str) -> Resolved {
        resolve(s, TScalarStyle::Plain, None)
            .unwrap_or(Resolved::Value(Scalar::Str("<error>".to_owned())))
    }
    fn st(s: &str) -> Resolved {
        Resolved::Value(Scalar::Str(s.to_owned()))
    }
    fn int(i: i64) -> Resolved {
        Resolved::Value(Scalar::Int(i))
    }
    fn float(f: f64) -> Resolved {
        Resolved::Value(Scalar::Float(f))
    }

    #[test]
    fn yaml_v3_resolution_table() {
        let b = |x| Resolved::Value(Scalar::Bool(x));
        for (input, want) in [
            ("true", b(true)),
            ("True", b(true)),
            ("TRUE", b(true)),
            ("false", b(false)),
            ("FALSE", b(false)),
            ("tRue", st("tRue")),
            ("yes", st("yes")),
            ("no", st("no")),
            ("on", st("on")),
            ("y", st("y")),
            ("~", Resolved::Null),
            ("null", Resolved::Null),
            ("Null", Resolved::Null),
            ("NULL", Resolved::Null),
            ("", Resolved::Null),
            ("nULL", st("nULL")),
            ("42", int(42)),
            ("-5", int(-5)),
            ("+12", int(12)),
            ("0x1F", int(31)),
            ("0o17", int(15)),
            ("0777", int(511)),
            ("0b101", int(5)),
            ("1_000", int(1000)),
            ("-0o17", int(-15)),
            ("9223372036854775807", int(i64::MAX)),
            ("-9223372036854775808", int(i64::MIN)),
            ("08", float(8.0)),
            ("1e3", float(1000.0)),
            ("1.5", float(1.5)),
            ("1.", float(1.0)),
            (".5", float(0.5)),
            ("-.5e1", float(-5.0)),
            (".inf", float(f64::INFINITY)),
            ("-.Inf", float(f64::NEG_INFINITY)),
            ("+.INF", float(f64::INFINITY)),
            ("1e400", st("1e400")),
            ("0x", st("0x")),
            ("1.2.3", st("1.2.3")),
            ("12:30", st("12:30")),
            ("<<", st("<<")),
            (
                "2024-01-01",
                Resolved::Value(Scalar::Time("2024-01-01T00:00:00Z".to_owned())),
            ),
            ("2024-13-01", st("2024-13-01")),
        ] {
            assert_eq!(plain(input), want, "input {input:?}");
        }
        assert!(matches!(plain(".nan"), Resolved::Value(Scalar::Float(f)) if f.is_nan()));
        assert!(resolve("18446744073709551615", TScalarStyle::Plain, None).is_err());
    }

    #[test]
    fn quoted_and_tagged() {
        assert_eq!(
            resolve("42", TScalarStyle::DoubleQuoted, None),
            Ok(st("42"))
        );
        assert_eq!(
            resolve("true", TScalarStyle::SingleQuoted, None),
            Ok(st("true"))
        );
        assert_eq!(resolve("~", TScalarStyle::Literal, None), Ok(st("~")));
        let tag = |s: &str| Tag {
            handle: "tag:yaml.org,2002:".to_owned(),
            suffix: s.to_owned(),
        };
        assert_eq!(
            resolve("42", TScalarStyle::Plain, Some(&tag("str"))),
            Ok(st("42"))
        );
        assert_eq!(
            resolve("42", TScalarStyle::Plain, Some(&tag("float"))),
            Ok(float(42.0))
        );
        assert_eq!(
            resolve("42", TScalarStyle::DoubleQuoted, Some(&tag("int"))),
            Ok(int(42))
        );
        assert!(resolve("abc", TScalarStyle::Plain, Some(&tag("int"))).is_err());
        assert_eq!(
            resolve("aGk=", TScalarStyle::Plain, Some(&tag("binary"))),
            Ok(st("hi"))
        );
        let local = Tag {
            handle: "!".to_owned(),
            suffix: "foo".to_owned(),
        };
        assert_eq!(
            resolve("12", TScalarStyle::Plain, Some(&local)),
            Ok(st("12"))
        );
    }
}
