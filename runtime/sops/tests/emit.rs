//! `sops decrypt` output, byte for byte: every vector with an `expected/` file.

mod common;

use agentsec_sops::{DecryptOptions, EmitOptions, ExtractPath, Format, SopsFile};
use common::{ids, vectors};

fn decrypted(file: &str, key: &str) -> SopsFile {
    let path = vectors().join(file);
    let bytes = std::fs::read(&path).expect("vector readable");
    let mut format = Format::from_path(&path).expect("format");
    if file.ends_with("flux/files_file.txt") {
        // Its expected/ file is `sops decrypt --input-type json` output (the JSON envelope
        // read as a JSON document); as a binary file it decrypts to `value` (checked below).
        format = Format::Json;
    }
    SopsFile::decrypt(&bytes, format, file, &ids(key), DecryptOptions::default())
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Vectors from other projects: (encrypted file, key file, name of the expected output in
/// `expected/`, without `.decrypted`).
const EXTERNAL: &[(&str, &str, &str)] = &[
    (
        "external/flux/algorithms_age.yaml",
        "external/flux/keys_age.txt",
        "flux_algorithms_age.yaml",
    ),
    (
        "external/flux/component_env.env",
        "external/flux/keys_age.txt",
        "flux_component_env.env",
    ),
    (
        "external/flux/envs_env.env",
        "external/flux/keys_age.txt",
        "flux_envs_env.env",
    ),
    (
        "external/flux/files_file.txt",
        "external/flux/keys_age.txt",
        "flux_files_file.txt",
    ),
    (
        "external/flux/global_secret.yaml",
        "external/flux/keys_age-global.txt",
        "flux_global_secret.yaml",
    ),
    (
        "external/flux/patches_merge1.yaml",
        "external/flux/keys_age.txt",
        "flux_patches_merge1.yaml",
    ),
    (
        "external/flux/patches_merge2.yaml",
        "external/flux/keys_age.txt",
        "flux_patches_merge2.yaml",
    ),
    (
        "external/flux/remote_env.env",
        "external/flux/keys_age.txt",
        "flux_remote_env.env",
    ),
    (
        "external/helm-secrets/secrets.age.yaml",
        "external/helm-secrets/key.txt",
        "helm-secrets_secrets.age.yaml",
    ),
    (
        "external/sops-age/secret.enc.env",
        "external/sops-age/key.txt",
        "sops-age_secret.enc.env",
    ),
    (
        "external/sops-age/secret.enc.json",
        "external/sops-age/key.txt",
        "sops-age_secret.enc.json",
    ),
    (
        "external/sops-age/secret.enc.yaml",
        "external/sops-age/key.txt",
        "sops-age_secret.enc.yaml",
    ),
];

/// (encrypted file, key file, expected output).
fn cases() -> Vec<(String, &'static str, String)> {
    let mut out = generated_cases();
    for (enc, key, exp) in EXTERNAL {
        out.push(((*enc).to_owned(), key, format!("expected/{exp}.decrypted")));
    }
    out
}

/// Every `generated/expected/*.decrypted` with its encrypted file and key file.
fn generated_cases() -> Vec<(String, &'static str, String)> {
    let mut out = Vec::new();
    let generated = vectors().join("generated/expected");
    let mut names: Vec<String> = std::fs::read_dir(&generated)
        .expect("expected dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let Some(enc) = n.strip_suffix(".decrypted") else {
            continue;
        };
        let key = if enc == "shamir_2groups.yaml" || enc == "rotated_multidoc.yaml" {
            "generated/keys_all.txt"
        } else {
            "generated/key_mockIdentity.txt"
        };
        out.push((
            format!("generated/enc/{enc}"),
            key,
            format!("generated/expected/{n}"),
        ));
    }
    out
}

#[test]
fn decrypt_output_is_byte_identical_to_sops() {
    let mut failures = Vec::new();
    for (enc, key, expected) in cases() {
        let want = std::fs::read(vectors().join(&expected)).expect("expected readable");
        let file = decrypted(&enc, key);
        // `sops decrypt` ignores the indent a file was written with: defaults apply.
        let got = file
            .emit(file.format(), EmitOptions::default())
            .expect("emits");
        if got.as_slice() != want.as_slice() {
            failures.push(format!(
                "{enc}\n--- got\n{}\n--- want\n{}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn extract_matches_the_transcript() {
    let yaml = decrypted("generated/enc/basic.yaml", "generated/key_mockIdentity.txt");
    let json = decrypted("generated/enc/basic.json", "generated/key_mockIdentity.txt");
    let ini = decrypted("generated/enc/basic.ini", "generated/key_mockIdentity.txt");
    let env = decrypted("generated/enc/basic.env", "generated/key_mockIdentity.txt");
    let x = |f: &SopsFile, p: &str| -> String {
        let path = ExtractPath::parse(p).expect("path");
        let out = f
            .extract(&path, f.format(), EmitOptions::default())
            .unwrap_or_else(|e| panic!("{p}: {e}"));
        String::from_utf8(out.to_vec()).expect("utf8")
    };
    assert_eq!(x(&yaml, r#"["nested"]["inner_key"]"#), "inner value");
    assert_eq!(x(&yaml, r#"["nested"]["deeper"]["leaf"]"#), "3\n");
    assert_eq!(x(&yaml, r#"["number_float"]"#), "1234.56789\n");
    assert_eq!(x(&yaml, r#"["bool_true"]"#), "true\n");
    assert_eq!(x(&yaml, r#"["null_value"]"#), "null\n");
    assert_eq!(
        x(&yaml, r#"["nested"]"#),
        "# comment inside nested map\ninner_key: inner value\ninner_unencrypted: still visible\ndeeper:\n    leaf: 3\n"
    );
    assert_eq!(
        x(&yaml, r#"["list_of_scalars"]"#),
        "- a\n# comment inside list\n- 2\n- 3.5\n- false\n"
    );
    // List indices do not count comment elements (sops' do): the path names what
    // `get-secret` names.
    assert_eq!(x(&yaml, r#"["list_of_scalars"][1]"#), "2\n");
    assert_eq!(x(&yaml, "list_of_scalars.1"), "2\n");
    assert_eq!(x(&yaml, "nested.deeper.leaf"), "3\n");
    assert_eq!(
        x(&yaml, r#"["list_of_maps"][1]"#),
        "name: second\nvalue: two\n"
    );
    assert_eq!(x(&yaml, "['hello']"), "Welcome to SOPS!");
    assert_eq!(x(&json, r#"["int"]"#), "42");
    assert_eq!(
        x(&json, r#"["nested"]["arr"]"#),
        "[\n\t1,\n\t\"two\",\n\t[\n\t\t3,\n\t\t4\n\t],\n\t{\n\t\t\"k\": \"v\"\n\t}\n]"
    );
    assert_eq!(x(&ini, r#"["section1"]["key2"]"#), "42");
    assert_eq!(x(&env, r#"["FOO"]"#), "bar");
    let missing = yaml.extract(
        &ExtractPath::parse(r#"["nope"]"#).expect("path"),
        Format::Yaml,
        EmitOptions::default(),
    );
    assert_eq!(
        missing.err().map(|e| (e.exit_code(), e.to_string())),
        Some((
            1,
            "error truncating tree: component ['nope'] not found".to_owned()
        ))
    );
    let bad = ExtractPath::parse(r#"["hello""#).err();
    assert_eq!(
        bad.map(|e| (e.exit_code(), e.to_string())),
        Some((
            91,
            "error parsing --extract path: secret path ends early; expected `]`".to_owned()
        ))
    );
    for bad in ["", "a..b", "list.00", "[x]"] {
        assert_eq!(
            ExtractPath::parse(bad).err().map(|e| e.exit_code()),
            Some(91),
            "{bad:?}"
        );
    }
}

#[test]
fn output_type_conversions_match_the_transcript() {
    let yaml = decrypted("generated/enc/basic.yaml", "generated/key_mockIdentity.txt");
    let e = yaml.emit(Format::Dotenv, EmitOptions::default()).err();
    assert_eq!(
        e.map(|e| (e.exit_code(), e.to_string())),
        Some((
            4,
            "Error dumping file: cannot use complex value in dotenv file; offending key nested"
                .to_owned()
        ))
    );
    let multi = decrypted(
        "generated/enc/multidoc.yaml",
        "generated/key_mockIdentity.txt",
    );
    let out = multi
        .emit(Format::Json, EmitOptions::default())
        .expect("json");
    assert_eq!(
        out.as_slice(),
        b"{\n\t\"doc\": \"one\",\n\t\"secret\": \"s1\"\n}\n"
    );
    let json = decrypted("generated/enc/basic.json", "generated/key_mockIdentity.txt");
    let out = json
        .emit(Format::Yaml, EmitOptions::default())
        .expect("yaml");
    let text = String::from_utf8(out.to_vec()).expect("utf8");
    assert!(text.contains("big_int: 9.007199254740992e+15\n"), "{text}");
    assert!(
        text.contains("        - - 3\n          - 4\n        - k: v\n"),
        "{text}"
    );
    let ini = decrypted("generated/enc/basic.ini", "generated/key_mockIdentity.txt");
    let out = ini
        .emit(Format::Json, EmitOptions::default())
        .expect("json");
    assert_eq!(
        String::from_utf8(out.to_vec()).expect("utf8"),
        "{\n\t\"DEFAULT\": {},\n\t\"section1\": {\n\t\t\"key1\": \"value1\",\n\t\t\"key2\": \"42\"\n\t},\n\t\"section2\": {\n\t\t\"password\": \"secret pass\",\n\t\t\"key_unencrypted\": \"shown\"\n\t}\n}\n"
    );
}

#[test]
fn binary_files_decrypt_to_their_bytes() {
    for (enc, key, want) in [
        (
            "generated/enc/blob.bin",
            "generated/key_mockIdentity.txt",
            "generated/expected/blob.bin.decrypted",
        ),
        (
            "generated/enc/text.txt",
            "generated/key_mockIdentity.txt",
            "generated/expected/text.txt.decrypted",
        ),
    ] {
        let f = decrypted(enc, key);
        assert_eq!(f.format(), Format::Binary);
        let got = f
            .emit(Format::Binary, EmitOptions::default())
            .expect("emits");
        let want = std::fs::read(vectors().join(want)).expect("expected");
        assert_eq!(got.as_slice(), want.as_slice(), "{enc}");
    }
    let path = vectors().join("external/flux/files_file.txt");
    let bytes = std::fs::read(&path).expect("vector");
    let f = SopsFile::decrypt(
        &bytes,
        Format::Binary,
        "files_file.txt",
        &ids("external/flux/keys_age.txt"),
        DecryptOptions::default(),
    )
    .expect("decrypts");
    let got = f
        .emit(Format::Binary, EmitOptions::default())
        .expect("emits");
    assert_eq!(got.as_slice(), b"value");
}
