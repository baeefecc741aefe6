//! Paths and patterns: both forms, the canonical spelling, every error with
//! its position, and round trips (proptest).

use super::*;
use crate::error::PathError;
use proptest::prelude::*;

fn p(s: &str) -> SecretPath {
    SecretPath::parse(s).unwrap()
}

fn segs(s: &str) -> Vec<String> {
    p(s).segments().map(String::from).collect()
}

#[test]
fn dotted_and_bracket_forms() {
    assert_eq!(
        segs("databases.postgres.production.password"),
        ["databases", "postgres", "production", "password"]
    );
    assert_eq!(segs(r#"["a.b"]["c"]"#), ["a.b", "c"]);
    assert_eq!(segs("['x'][0]"), ["x", "0"]);
    assert_eq!(
        segs(r#"communication["odd.key"].x"#),
        ["communication", "odd.key", "x"]
    );
    assert_eq!(segs(r#"["q\"uote"]"#), ["q\"uote"]);
    assert_eq!(segs(r"['it\'s']"), ["it's"]);
    assert_eq!(p("a.0.b"), p("a[0].b"));
    assert_eq!(p("a.0.b"), p(r#"["a"]["0"]["b"]"#));
}

#[test]
fn canonical_display() {
    assert_eq!(p(r#"["a"]["b"]"#).to_string(), "a.b");
    assert_eq!(p(r#"a["b.c"]"#).to_string(), r#"["a"]["b.c"]"#);
    assert_eq!(p(r#"a["b.c"][0]"#).to_string(), r#"["a"]["b.c"][0]"#);
    assert_eq!(p(r#"["say \"hi\\\""]"#).to_string(), r#"["say \"hi\\\""]"#);
    assert_eq!(p("a.0").to_string(), "a.0");
    assert_eq!(SecretPath::root().to_string(), "");
}

#[test]
fn empty_segments_name_their_position() {
    assert_eq!(SecretPath::parse(""), Err(PathError::Empty));
    assert_eq!(SecretPath::parse_prefix(""), Ok(SecretPath::root()));
    assert_eq!(
        SecretPath::parse("a..b"),
        Err(PathError::EmptySegment { pos: 2 })
    );
    assert_eq!(
        SecretPath::parse(".a"),
        Err(PathError::EmptySegment { pos: 0 })
    );
    assert_eq!(
        SecretPath::parse("a."),
        Err(PathError::EmptySegment { pos: 2 })
    );
    assert_eq!(
        SecretPath::parse(r#"[""]"#),
        Err(PathError::EmptySegment { pos: 1 })
    );
    assert_eq!(
        SecretPath::parse("a[]"),
        Err(PathError::EmptySegment { pos: 2 })
    );
    assert!(matches!(
        SecretPath::parse("a.[\"b\"]"),
        Err(PathError::EmptySegment { pos: 2 })
    ));
}

#[test]
fn bad_characters_name_their_position() {
    assert_eq!(
        SecretPath::parse("a.b\0c"),
        Err(PathError::ControlChar { ch: '\0', pos: 3 })
    );
    assert_eq!(
        SecretPath::parse("[\"a\nb\"]"),
        Err(PathError::ControlChar { ch: '\n', pos: 3 })
    );
    assert_eq!(
        SecretPath::parse("a.b c"),
        Err(PathError::InvalidChar { ch: ' ', pos: 3 })
    );
    assert_eq!(
        SecretPath::parse("a.*"),
        Err(PathError::Wildcard { pos: 2 })
    );
}

#[test]
fn bracket_errors_name_their_position() {
    assert_eq!(
        SecretPath::parse(r#"["a"]x"#),
        Err(PathError::Unexpected {
            ch: 'x',
            pos: 5,
            expected: "`.` or `[` after `]`"
        })
    );
    assert_eq!(
        SecretPath::parse(r#"["a""#),
        Err(PathError::UnexpectedEnd { expected: "`]`" })
    );
    assert_eq!(
        SecretPath::parse(r#"["a"#),
        Err(PathError::UnexpectedEnd {
            expected: "a closing quote"
        })
    );
    assert_eq!(
        SecretPath::parse(r#"["a\n"]"#),
        Err(PathError::BadEscape { ch: 'n', pos: 3 })
    );
    assert!(matches!(
        SecretPath::parse("[x]"),
        Err(PathError::Unexpected {
            ch: 'x',
            pos: 1,
            ..
        })
    ));
    assert!(matches!(
        SecretPath::parse("[1x]"),
        Err(PathError::Unexpected {
            ch: 'x',
            pos: 2,
            ..
        })
    ));
}

#[test]
fn limits_are_enforced() {
    let long = "a".repeat(MAX_PATH_LEN + 1);
    assert!(matches!(
        SecretPath::parse(&long),
        Err(PathError::TooLong { .. })
    ));
    let many = vec!["a"; MAX_PATH_SEGMENTS + 1].join(".");
    assert_eq!(
        SecretPath::parse(&many),
        Err(PathError::TooManySegments {
            max: MAX_PATH_SEGMENTS
        })
    );
    assert!(SecretPath::parse(&vec!["a"; MAX_PATH_SEGMENTS].join(".")).is_ok());
    // Within the input limit, but the canonical form is longer.
    let k = format!(r#"a['{}']"#, "\"".repeat(600));
    assert!(matches!(
        SecretPath::parse(&k),
        Err(PathError::TooLong { .. })
    ));
}

#[test]
fn one_spelling_per_list_index() {
    for bad in [
        "app.keys.00",
        "app.keys[000]",
        "app.keys.007",
        "app[01]",
        "00",
    ] {
        assert!(
            matches!(SecretPath::parse(bad), Err(PathError::LeadingZero { .. })),
            "{bad}"
        );
        assert!(
            matches!(PathPattern::parse(bad), Err(PathError::LeadingZero { .. })),
            "{bad}"
        );
    }
    assert_eq!(
        SecretPath::parse("app.keys.00"),
        Err(PathError::LeadingZero { pos: 9 })
    );
    assert_eq!(p("app.keys.0"), p("app.keys[0]"));
    assert_eq!(p("app.keys.0"), p(r#"["app"]["keys"]["0"]"#));
    // A mapping key that is padded digits: quoted, and shown quoted.
    let k = p(r#"codes["007"]"#);
    assert_eq!(k.segments().collect::<Vec<_>>(), ["codes", "007"]);
    assert_eq!(k.to_string(), r#"["codes"]["007"]"#);
    assert_eq!(SecretPath::parse(&k.to_string()), Ok(k));
    let from_store = SecretPath::from_segments(["list", "007", "x.y", "3"]).unwrap();
    assert_eq!(from_store.to_string(), r#"["list"]["007"]["x.y"][3]"#);
    assert_eq!(list_index("0"), Some(0));
    assert_eq!(list_index("12"), Some(12));
    for no in [
        "",
        "00",
        "007",
        "+1",
        " 1",
        "1 ",
        "-1",
        "a",
        "99999999999999999999999",
    ] {
        assert_eq!(list_index(no), None, "{no:?}");
    }
}

#[test]
fn child_and_starts_with() {
    let a = p("a.b");
    assert_eq!(a.child("c").unwrap(), p("a.b.c"));
    assert_eq!(a.child("c.d").unwrap().to_string(), r#"["a"]["b"]["c.d"]"#);
    assert_eq!(a.child(""), Err(PathError::EmptySegment { pos: 4 }));
    assert!(matches!(a.child("x\0"), Err(PathError::ControlChar { .. })));
    assert!(p("a.b.c").starts_with(&a));
    assert!(a.starts_with(&a));
    assert!(!p("a.bc").starts_with(&a));
    assert!(!p("a").starts_with(&a));
    assert!(a.starts_with(&SecretPath::root()));
}

#[test]
fn patterns() {
    let pat = PathPattern::parse("databases.*.staging").unwrap();
    assert_eq!(pat.literal_count(), 2);
    assert!(pat.covers(&p("databases.postgres.staging")));
    assert!(pat.covers(&p("databases.redis.staging.password")));
    assert!(!pat.covers(&p("databases.redis.production")));
    assert!(!pat.covers(&p("databases.redis")));
    assert_eq!(pat.to_string(), "databases.*.staging");
    assert_eq!(
        PathPattern::parse(r#"["a.b"][*]"#).unwrap().to_string(),
        r#"["a.b"][*]"#
    );
    assert_eq!(
        PathPattern::parse(r#"a["*"]"#).unwrap().to_string(),
        r#"["a"]["*"]"#
    );
    assert!(!PathPattern::parse(r#"a["*"]"#).unwrap().covers(&p("a.b")));
    assert_eq!(
        PathPattern::parse("data*"),
        Err(PathError::PartialWildcard { pos: 4 })
    );
    assert_eq!(
        PathPattern::parse("a.*b"),
        Err(PathError::PartialWildcard { pos: 2 })
    );
    assert_eq!(
        PathPattern::parse("a.**"),
        Err(PathError::PartialWildcard { pos: 2 })
    );
    let ab = PathPattern::parse("a.b").unwrap();
    assert!(!ab.covers(&p("a.bc")));
    assert!(!ab.covers(&p("a")));
    assert!(ab.covers(&p("a.b")));
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{1,8}",
        "[0-9]{1,3}",
        "0[0-9]{1,3}",
        "[^\\p{Cc}]{1,8}",
        "[a.\"'\\\\\\[\\]* ]{1,6}",
    ]
}

proptest! {
    #[test]
    fn display_round_trips(segs in prop::collection::vec(segment(), 1..6)) {
        let path = SecretPath::from_segments(&segs).unwrap();
        let text = path.to_string();
        let back = SecretPath::parse(&text).unwrap();
        prop_assert_eq!(&back, &path);
        prop_assert_eq!(back.segments().collect::<Vec<_>>(), segs.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn parse_never_panics_and_round_trips(s in "\\PC{0,40}|[a.\\[\\]\"'*0-9\\\\]{0,20}") {
        if let Ok(path) = SecretPath::parse(&s) {
            prop_assert_eq!(SecretPath::parse(&path.to_string()), Ok(path));
        }
        if let Ok(pat) = PathPattern::parse(&s) {
            prop_assert_eq!(PathPattern::parse(&pat.to_string()), Ok(pat));
        }
    }
}
