//! Go's renderings of numbers and times, which the SOPS MAC and `sops decrypt` output depend on.

/// `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits, never an exponent; the
/// bytes sops hashes into the MAC for a float (`2.0` → `2`, `1e-7` → `0.0000001`).
pub(crate) fn float_mac_bytes(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        // Rust's Display is shortest round-trip and never uses an exponent, like Go's 'f', -1.
        format!("{v}")
    }
}

/// Shortest round-trip digits of a finite, non-zero `v`: (negative, digits, exponent) with
/// `v = ±d.ddd × 10^exponent`.
fn shortest_digits(v: f64) -> (bool, String, i32) {
    let s = format!("{:e}", v.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (v.is_sign_negative(), digits, exp.parse().unwrap_or(0))
}

/// Go's `%e`-style rendering with shortest digits: `1.2345e+06`, `1e-07`.
fn fmt_e(neg: bool, digits: &str, exp: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let mut chars = digits.chars();
    out.push(chars.next().unwrap_or('0'));
    let rest: String = chars.collect();
    if !rest.is_empty() {
        out.push('.');
        out.push_str(&rest);
    }
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
    out
}

/// How yaml.v3 marshals a float64 (`strconv.FormatFloat(v, 'g', -1, 64)` plus `.inf`/`.nan`):
/// what `sops decrypt --extract` prints for a float in a YAML file.
pub(crate) fn float_yaml_text(v: f64) -> String {
    if v.is_nan() {
        return ".nan".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    if v == 0.0 {
        return format!("{v}");
    }
    // Go ftoa.go, 'g' with shortest precision: `eprec = 6`; %e when exp < -4 || exp >= eprec.
    let (neg, digits, exp) = shortest_digits(v);
    if !(-4..6).contains(&exp) {
        return fmt_e(neg, &digits, exp);
    }
    format!("{v}")
}

/// How Go's `encoding/json` marshals a float64: what `sops decrypt --extract` prints for a
/// number in a JSON file (`42`, `3.14`, `1e-7`, `1e+21`). Non-finite values (which JSON cannot
/// hold) use Go's `FormatFloat` names.
pub(crate) fn float_json_text(v: f64) -> String {
    if !v.is_finite() {
        return float_mac_bytes(v);
    }
    let a = v.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let (neg, digits, exp) = shortest_digits(v);
        let s = fmt_e(neg, &digits, exp);
        // Go cleans up e-07 to e-7.
        return s.replacen("e-0", "e-", 1);
    }
    format!("{v}")
}

/// A point in time as Go's `time.Time` keeps it for rendering: civil fields plus the zone
/// offset (`None` = UTC, rendered `Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GoTime {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    nanos: u32,
    /// Offset east of UTC in minutes; 0 is rendered `Z`.
    offset_min: i32,
}

impl GoTime {
    /// `time.Format(time.RFC3339Nano)` (= `MarshalText`): fraction only when non-zero, trailing
    /// zeros trimmed.
    pub(crate) fn rfc3339_nano(&self) -> String {
        let mut s = self.base();
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        s.push_str(&self.zone());
        s
    }

    /// `time.Format(time.RFC3339)`: no fraction.
    pub(crate) fn rfc3339(&self) -> String {
        let mut s = self.base();
        s.push_str(&self.zone());
        s
    }

    fn base(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    fn zone(&self) -> String {
        if self.offset_min == 0 {
            return "Z".to_owned();
        }
        let sign = if self.offset_min < 0 { '-' } else { '+' };
        let a = self.offset_min.unsigned_abs();
        format!("{sign}{:02}:{:02}", a / 60, a % 60)
    }
}

/// A tiny cursor for the fixed grammars below.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// Exactly `n` digits.
    fn fixed(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = self.peek().filter(u8::is_ascii_digit)?;
            v = v * 10 + u32::from(d - b'0');
            self.i += 1;
        }
        Some(v)
    }
    /// One or two digits (Go's non-fixed `getnum`).
    fn one_or_two(&mut self) -> Option<u32> {
        let a = self.fixed(1)?;
        match self.peek() {
            Some(d) if d.is_ascii_digit() => {
                self.i += 1;
                Some(a * 10 + u32::from(d - b'0'))
            }
            _ => Some(a),
        }
    }
    /// `.ddd` fractional seconds (any number of digits, at most 9 significant kept).
    fn fraction(&mut self) -> Option<u32> {
        if !(self.peek() == Some(b'.') && self.s.get(self.i + 1).is_some_and(u8::is_ascii_digit)) {
            return Some(0);
        }
        self.i += 1;
        let mut nanos = 0u32;
        let mut n = 0;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            if n < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
            n += 1;
            self.i += 1;
        }
        if n > 9 {
            return None;
        }
        for _ in n..9 {
            nanos *= 10;
        }
        Some(nanos)
    }
    /// `Z` or `±hh:mm`, as minutes east of UTC.
    fn zone(&mut self) -> Option<i32> {
        if self.eat(b'Z') {
            return Some(0);
        }
        let neg = match self.peek() {
            Some(b'+') => false,
            Some(b'-') => true,
            _ => return None,
        };
        self.i += 1;
        let h = self.fixed(2)?;
        if !self.eat(b':') {
            return None;
        }
        let m = self.fixed(2)?;
        if h >= 24 || m >= 60 {
            return None;
        }
        let off = i32::try_from(h * 60 + m).ok()?;
        Some(if neg { -off } else { off })
    }
    fn done(&self) -> bool {
        self.i == self.s.len()
    }
}

fn valid(t: GoTime) -> Option<GoTime> {
    let month = time::Month::try_from(t.month).ok()?;
    time::Date::from_calendar_date(t.year, month, t.day).ok()?;
    (t.hour < 24 && t.minute < 60 && t.second < 60).then_some(t)
}

fn u8_of(v: u32) -> Option<u8> {
    u8::try_from(v).ok()
}

/// Go `time.Parse(time.RFC3339, s)` (also what `Time.UnmarshalText` accepts).
pub(crate) fn parse_rfc3339(s: &str) -> Option<GoTime> {
    let mut c = Cursor {
        s: s.as_bytes(),
        i: 0,
    };
    let year = i32::try_from(c.fixed(4)?).ok()?;
    c.eat(b'-').then_some(())?;
    let month = u8_of(c.fixed(2)?)?;
    c.eat(b'-').then_some(())?;
    let day = u8_of(c.fixed(2)?)?;
    c.eat(b'T').then_some(())?;
    let hour = u8_of(c.fixed(2)?)?;
    c.eat(b':').then_some(())?;
    let minute = u8_of(c.fixed(2)?)?;
    c.eat(b':').then_some(())?;
    let second = u8_of(c.fixed(2)?)?;
    let nanos = c.fraction()?;
    let offset_min = c.zone()?;
    c.done().then_some(())?;
    valid(GoTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
        offset_min,
    })
}

/// yaml.v3 `parseTimestamp`: an unquoted scalar that starts with exactly four digits and `-`
/// and matches one of `2006-1-2T15:4:5.999999999Z07:00` (also with `t`),
/// `2006-1-2 15:4:5.999999999` (UTC) or `2006-1-2` (UTC midnight).
pub(crate) fn parse_yaml_timestamp(s: &str) -> Option<GoTime> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let mut c = Cursor { s: b, i: 0 };
    let year = i32::try_from(c.fixed(4)?).ok()?;
    c.eat(b'-').then_some(())?;
    let month = u8_of(c.one_or_two()?)?;
    c.eat(b'-').then_some(())?;
    let day = u8_of(c.one_or_two()?)?;
    let mut t = GoTime {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        offset_min: 0,
    };
    if c.done() {
        return valid(t);
    }
    let zoned = match c.peek() {
        Some(b'T' | b't') => true,
        Some(b' ') => false,
        _ => return None,
    };
    c.i += 1;
    t.hour = u8_of(c.one_or_two()?)?;
    c.eat(b':').then_some(())?;
    t.minute = u8_of(c.one_or_two()?)?;
    c.eat(b':').then_some(())?;
    t.second = u8_of(c.one_or_two()?)?;
    t.nanos = c.fraction()?;
    if zoned {
        t.offset_min = c.zone()?;
    }
    c.done().then_some(())?;
    valid(t)
}

/// The current UTC time as Go's `time.Now().UTC().Format(time.RFC3339)` (`lastmodified`).
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_bytes_match_go_format_f() {
        assert_eq!(float_mac_bytes(2.0), "2");
        assert_eq!(float_mac_bytes(1e25), "10000000000000000000000000");
        assert_eq!(float_mac_bytes(1e-7), "0.0000001");
        assert_eq!(float_mac_bytes(1234.56789), "1234.56789");
        assert_eq!(float_mac_bytes(f64::INFINITY), "+Inf");
        assert_eq!(float_mac_bytes(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float_mac_bytes(f64::NAN), "NaN");
    }

    #[test]
    fn yaml_text_matches_yaml_v3() {
        assert_eq!(float_yaml_text(1234.56789), "1234.56789");
        assert_eq!(float_yaml_text(1e25), "1e+25");
        assert_eq!(float_yaml_text(1e-7), "1e-07");
        assert_eq!(float_yaml_text(1000.0), "1000");
        assert_eq!(float_yaml_text(2.0), "2");
        assert_eq!(float_yaml_text(3.5), "3.5");
        assert_eq!(float_yaml_text(0.0001), "0.0001");
        assert_eq!(float_yaml_text(0.00001), "1e-05");
        assert_eq!(float_yaml_text(123456.0), "123456");
        assert_eq!(float_yaml_text(1234567.0), "1.234567e+06");
        assert_eq!(float_yaml_text(9007199254740992.0), "9.007199254740992e+15");
        assert_eq!(float_yaml_text(-1.5e300), "-1.5e+300");
        assert_eq!(float_yaml_text(f64::INFINITY), ".inf");
        assert_eq!(float_yaml_text(f64::NEG_INFINITY), "-.inf");
        assert_eq!(float_yaml_text(f64::NAN), ".nan");
        assert_eq!(float_yaml_text(0.0), "0");
    }

    #[test]
    fn json_text_matches_encoding_json() {
        assert_eq!(float_json_text(42.0), "42");
        assert_eq!(float_json_text(1e-7), "1e-7");
        assert_eq!(float_json_text(1e21), "1e+21");
        assert_eq!(
            float_json_text(1.2345678901234568e29),
            "1.2345678901234568e+29"
        );
        assert_eq!(float_json_text(9007199254740992.0), "9007199254740992");
        assert_eq!(float_json_text(2.5), "2.5");
    }

    #[test]
    fn times() {
        let t = parse_yaml_timestamp("2024-01-01").map(|t| t.rfc3339_nano());
        assert_eq!(t.as_deref(), Some("2024-01-01T00:00:00Z"));
        let t = parse_yaml_timestamp("2006-01-02T15:04:05+07:00").map(|t| t.rfc3339_nano());
        assert_eq!(t.as_deref(), Some("2006-01-02T15:04:05+07:00"));
        let t = parse_yaml_timestamp("2001-12-14 21:59:43.10").map(|t| t.rfc3339_nano());
        assert_eq!(t.as_deref(), Some("2001-12-14T21:59:43.1Z"));
        let t = parse_yaml_timestamp("2024-1-2t3:4:5Z").map(|t| t.rfc3339_nano());
        assert_eq!(t.as_deref(), Some("2024-01-02T03:04:05Z"));
        assert!(parse_yaml_timestamp("2024-02-30").is_none());
        assert!(parse_yaml_timestamp("2024-01-01T10:00:00").is_none());
        assert!(parse_yaml_timestamp("12024-01-01").is_none());
        let t = parse_rfc3339("2026-11-28T10:03:59.123+00:00").map(|t| t.rfc3339());
        assert_eq!(t.as_deref(), Some("2026-11-28T10:03:59Z"));
        assert!(parse_rfc3339("2026-11-28 10:03:59Z").is_none());
    }
}
