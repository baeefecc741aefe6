//! How `agentsec secrets` treats the files it reads and writes, through the real CLI with
//! files written by the real sops: YAML comment placement (byte-identical `decrypt`), the edit
//! buffer (a real path on a private tmpfs), atomic replacement under `kill -9`, symlinks, hard
//! links, owner and group, stale temporary files, and the `SOPS_AGE_KEY_CMD` deadline.
#![expect(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentsec_tests::{Run, Scratch, assert_no_leak, bin, root, skill, sops};

/// A fresh age identity made by the real `age-keygen`: (key file, recipient).
fn age_key(s: &Scratch, name: &str) -> (PathBuf, String) {
    let path = s.path(&format!("home/{name}.txt"));
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .expect("age-keygen is installed");
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned();
    (path, recipient)
}

fn run(cmd: &mut Command) -> Run {
    Run::from(cmd.output().unwrap())
}

/// `agentsec ARGS` with the key in `SOPS_AGE_KEY_FILE`.
fn agentsec(s: &Scratch, key: &Path) -> Command {
    let mut c = s.command(&bin("agentsec"));
    c.env("SOPS_AGE_KEY_FILE", key);
    c
}

/// The real `sops` with the key.
fn real_sops(s: &Scratch, key: &Path) -> Command {
    let mut c = s.command(&sops());
    c.env("SOPS_AGE_KEY_FILE", key);
    c
}

/// Encrypts `plain` (YAML text) with the real sops into `work/NAME`.
fn sops_encrypt(s: &Scratch, key: &Path, recipient: &str, name: &str, plain: &str) -> PathBuf {
    let file = s.write(&format!("work/{name}"), plain);
    let r = run(real_sops(s, key)
        .args(["encrypt", "--in-place", "--age", recipient])
        .arg(&file));
    assert_eq!(r.code, 0, "{r:?}");
    file
}

fn decrypt_with(cmd: &mut Command, file: &Path) -> Run {
    let r = run(cmd.arg("decrypt").arg(file));
    assert!(!r.stderr.contains("possibly unencrypted comment"), "{r:?}");
    r
}

/// The cases of comment placement: around block sequences in mappings, nested mappings,
/// sequences of mappings, and the end of the document.
const COMMENT_CASES: &[(&str, &str)] = &[
    (
        "after a sequence, before the next key",
        "a:\n    list:\n        - x\n        - z\n    # after the list\n    b: 1\n",
    ),
    (
        "after a top-level sequence",
        "list:\n    - x\n# after the list\nb: 1\n",
    ),
    (
        "after the last item, dedented",
        "a:\n    list:\n        - x\n    # after the list, last in a\nb: 1\n",
    ),
    (
        "after the last item, at the item's parent",
        "a:\n    - 1\n    - 2\n  # x\nd: 1\n",
    ),
    (
        "inside a sequence",
        "list:\n    # first\n    - x\n    # between\n    - z\n    # last in list\nb: 1\n",
    ),
    (
        "ends of nested mappings",
        "a:\n    b:\n        c: 1\n        # end of b\n    # end of a\n# top\nd: 2\n",
    ),
    (
        "dedented after a nested mapping",
        "a:\n    b:\n        c: 1\n  # x\n    # y\n# z\nd: 1\n",
    ),
    (
        "heads of nested mappings",
        "# head\na:\n    # head of b\n    b:\n        # head of c\n        c: 1\n    e: 2\n",
    ),
    (
        "sequence of mappings",
        "c:\n    - k: 1\n      # inside item\n      j: 2\n    # between items\n    - k: 3\n# after seq\nd: 2\n",
    ),
    (
        "list inside a sequence item",
        "c:\n    - k: 3\n      l:\n        - z\n        - - q\n          - r\n      # after inner list\n      m:\n        n: |\n            lit\n    - |\n      block\nd: 2\n",
    ),
    ("end of document", "a: 1\nlist:\n    - x\n# end of doc\n"),
    (
        "end of document after nesting",
        "a:\n    b:\n        - x\n# end of doc one\n# end of doc two\n",
    ),
    (
        "line comments",
        "a: 1 # inline a\nlist:\n    - x # inline x\nb: 2\n",
    ),
    (
        "several documents",
        "a:\n    - 1\n# after a\nb: 2\n---\nc:\n    - 3\n# end\n",
    ),
];

/// For each case: the real sops encrypts it; `agentsec secrets decrypt` prints exactly what
/// `sops decrypt` prints; a file that agentsec encrypts decrypts (with sops and with agentsec)
/// to the same bytes; and the comment after the sequence stays below the sequence's key.
#[test]
fn yaml_comments_are_placed_as_sops_places_them() {
    let s = Scratch::new();
    let (key, recipient) = age_key(&s, "comments");
    for (i, (what, plain)) in COMMENT_CASES.iter().enumerate() {
        let theirs = sops_encrypt(&s, &key, &recipient, &format!("c{i}.yaml"), plain);
        let want = decrypt_with(&mut real_sops(&s, &key), &theirs);
        assert_eq!(want.code, 0, "{what}: {want:?}");
        let got = decrypt_with(agentsec(&s, &key).arg("secrets"), &theirs);
        assert_eq!(got.code, 0, "{what}: {got:?}");
        assert_eq!(
            got.stdout, want.stdout,
            "{what}: agentsec decrypt differs from sops decrypt"
        );
        // agentsec encrypts the same plaintext: both tools read it back the same way.
        let ours = s.write(&format!("work/a{i}.yaml"), plain);
        let r = run(agentsec(&s, &key)
            .args(["secrets", "encrypt", "--in-place", "--age", &recipient])
            .arg(&ours));
        assert_eq!(r.code, 0, "{what}: {r:?}");
        let by_sops = decrypt_with(&mut real_sops(&s, &key), &ours);
        assert_eq!(
            by_sops.stdout, want.stdout,
            "{what}: sops reads ours differently"
        );
        let by_us = decrypt_with(agentsec(&s, &key).arg("secrets"), &ours);
        assert_eq!(
            by_us.stdout, want.stdout,
            "{what}: round trip through agentsec"
        );
    }
    // The reported case, spelled out: the comment stays between the list and `b`.
    let out = decrypt_with(agentsec(&s, &key).arg("secrets"), &s.path("work/c0.yaml"));
    let lines: Vec<&str> = out.stdout.lines().collect();
    let list = lines.iter().position(|l| *l == "    list:").unwrap();
    let comment = lines
        .iter()
        .position(|l| *l == "    # after the list")
        .unwrap();
    let b = lines.iter().position(|l| *l == "    b: 1").unwrap();
    assert!(list < comment && comment < b, "{}", out.stdout);
}

/// `set` on a file with comments around a sequence keeps them where sops has them.
#[test]
fn set_keeps_comments_around_sequences() {
    let s = Scratch::new();
    let (key, recipient) = age_key(&s, "set");
    let plain =
        "app:\n    hosts:\n        - a\n        - b\n    # the password below\n    password: old\n";
    let file = sops_encrypt(&s, &key, &recipient, "s.yaml", plain);
    let mut set = agentsec(&s, &key);
    set.args(["secrets", "set"])
        .arg(&file)
        .arg("[\"app\"][\"password\"]")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let r = with_stdin(set, b"\"new\"\n");
    assert_eq!(r.code, 0, "{r:?}");
    let d = decrypt_with(&mut real_sops(&s, &key), &file);
    assert_eq!(
        d.stdout,
        "app:\n    hosts:\n        - a\n        - b\n    # the password below\n    password: new\n"
    );
}

fn with_stdin(mut cmd: Command, input: &[u8]) -> Run {
    use std::io::Write as _;
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    Run::from(child.wait_with_output().unwrap())
}

fn set_value(s: &Scratch, key: &Path, file: &Path, path: &str, value: &str) -> Run {
    let mut cmd = agentsec(s, key);
    cmd.args(["secrets", "set"])
        .arg(file)
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The value is JSON (a string here).
    with_stdin(cmd, format!("\"{value}\"\n").as_bytes())
}

fn editor(s: &Scratch, name: &str, body: &str) -> PathBuf {
    let p = s.write(&format!("bin/{name}"), &format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A private runtime directory on /dev/shm (a tmpfs) for one test, used as XDG_RUNTIME_DIR.
fn runtime_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("agentsec-test-run-")
        .tempdir_in("/dev/shm")
        .unwrap()
}

fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

/// An editor that saves by writing a new file and renaming it (`sed -i`) works; the buffer was
/// a real path on a tmpfs, in a 0700 directory, 0600, and is gone afterwards.
#[test]
fn edit_with_a_renaming_editor_on_a_private_tmpfs() {
    let s = Scratch::new();
    let (key, recipient) = age_key(&s, "edit");
    let file = sops_encrypt(
        &s,
        &key,
        &recipient,
        "secrets.yaml",
        "db:\n    password: old-pw-31c7\n",
    );
    let rt = runtime_dir();
    // Records where and how it was given the buffer (no secret in that), then `sed -i`.
    let ed = editor(
        &s,
        "sed-i.sh",
        &format!(
            "stat -f -c %T \"$1\" > {info}\nstat -c '%a %n' \"$(dirname \"$1\")\" \"$1\" >> {info}\n\
             sed -i \"s/$OLDVAL/$NEWVAL/\" \"$1\"",
            info = s.path("work/editor-info").display()
        ),
    );
    let r = run(agentsec(&s, &key)
        .args(["secrets", "edit"])
        .arg(&file)
        .env("EDITOR", &ed)
        .env("OLDVAL", "old-pw-31c7")
        .env("NEWVAL", "new-pw-9a0e")
        .env("XDG_RUNTIME_DIR", rt.path()));
    assert_eq!(r.code, 0, "{r:?}");
    let info = std::fs::read_to_string(s.path("work/editor-info")).unwrap();
    let mut lines = info.lines();
    assert_eq!(lines.next(), Some("tmpfs"), "{info}");
    let dir_line = lines.next().unwrap();
    let file_line = lines.next().unwrap();
    assert!(dir_line.starts_with("700 "), "{info}");
    assert!(file_line.starts_with("600 "), "{info}");
    let given = PathBuf::from(file_line.split_once(' ').unwrap().1);
    assert!(given.starts_with(rt.path()), "{info}");
    assert!(!given.starts_with("/proc"), "{info}");
    assert_eq!(
        given.file_name().unwrap(),
        "secrets.yaml",
        "named like FILE"
    );
    assert!(
        dir_is_empty(rt.path()),
        "the buffer directory was not removed"
    );
    let d = decrypt_with(&mut real_sops(&s, &key), &file);
    assert_eq!(d.stdout, "db:\n    password: new-pw-9a0e\n");
    for (path, bytes) in s.all_file_bytes() {
        for v in ["old-pw-31c7", "new-pw-9a0e"] {
            assert_no_leak(v, &bytes, &path.display().to_string());
        }
    }
}

/// A disk-backed XDG_RUNTIME_DIR is not used; /dev/shm (a tmpfs) is used instead.
#[test]
fn edit_never_uses_a_disk_backed_runtime_dir() {
    let s = Scratch::new();
    let (key, recipient) = age_key(&s, "disk");
    let file = sops_encrypt(&s, &key, &recipient, "x.yaml", "k: old-v-77e1\n");
    let disk = s.path("work/not-tmpfs");
    std::fs::create_dir_all(&disk).unwrap();
    let ed = editor(
        &s,
        "where.sh",
        &format!(
            "echo \"$1\" > {}\nsed -i \"s/$OLDVAL/$NEWVAL/\" \"$1\"",
            s.path("work/where").display()
        ),
    );
    let r = run(agentsec(&s, &key)
        .args(["secrets", "edit"])
        .arg(&file)
        .env("EDITOR", &ed)
        .env("OLDVAL", "old-v-77e1")
        .env("NEWVAL", "new-v-1d2c")
        .env("XDG_RUNTIME_DIR", &disk));
    assert_eq!(r.code, 0, "{r:?}");
    let where_ = std::fs::read_to_string(s.path("work/where")).unwrap();
    assert!(where_.starts_with("/dev/shm/agentsec-edit-"), "{where_}");
    assert!(dir_is_empty(&disk));
    let d = decrypt_with(&mut real_sops(&s, &key), &file);
    assert_eq!(d.stdout, "k: new-v-1d2c\n");
}

/// A symlinked secrets file: the target changes, the link stays a link (as with sops).
#[test]
fn writes_go_through_a_symlink() {
    let s = Scratch::new();
    let (key, recipient) = age_key(&s, "link");
    let real = sops_encrypt(&s, &key, &recipient, "real/secrets.yaml", "a: one\n");
    let link = s.path("work/linked.yaml");
    std::os::unix::fs::symlink("real/secrets.yaml", &link).unwrap();
    let chain = s.path("work/chain.yaml");
    std::os::unix::fs::symlink(&link, &chain).unwrap();
    for (via, value) in [(&link, "two"), (&chain, "three")] {
        let r = set_value(&s, &key, via, "[\"a\"]", value);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(via.symlink_metadata().unwrap().file_type().is_symlink());
        let d = decrypt_with(&mut real_sops(&s, &key), &real);
        assert_eq!(d.stdout, format!("a: {value}\n"));
    }
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    // No temporary file beside the link or the target.
    for dir in [s.path("work"), s.path("work/real")] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            assert!(!n.contains("agentsec"), "left behind: {n}");
        }
    }
}

/// A file with two hard links is refused (a rename would split them) and left as it was.
#[test]
fn hard_linked_file_is_refused() {
    let s = Scratch::new();
    let (key, recipient) = age_key(&s, "hard");
    let file = sops_encrypt(&s, &key, &recipient, "h.yaml", "a: one\n");
    let other = s.path("work/other-name.yaml");
    std::fs::hard_link(&file, &other).unwrap();
    let before = std::fs::read(&file).unwrap();
    let r = set_value(&s, &key, &file, "[\"a\"]", "two");
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("hard links"), "{r:?}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_eq!(std::fs::metadata(&file).unwrap().nlink(), 2);
    std::fs::remove_file(&other).unwrap();
    let r = set_value(&s, &key, &file, "[\"a\"]", "two");
    assert_eq!(r.code, 0, "{r:?}");
}

/// Owner, group and mode survive a write by root (the file belongs to another user).
#[test]
fn owner_group_and_mode_are_kept() {
    let s = Scratch::new();
    let (key, recipient) = age_key(&s, "owner");
    let file = sops_encrypt(&s, &key, &recipient, "o.yaml", "a: one\n");
    let me = std::fs::metadata(s.path("work")).unwrap().uid();
    let (uid, gid) = if me == 0 {
        // A user of our own, as CI runs as root.
        let name = "agentsec-files-test";
        let _ = Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group", name])
            .status();
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").arg(flag).arg(name).output().unwrap();
            assert!(out.status.success(), "useradd {name} failed: {out:?}");
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        (id("-u"), id("-g"))
    } else {
        let m = std::fs::metadata(&file).unwrap();
        (m.uid(), m.gid())
    };
    std::os::unix::fs::chown(&file, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    for op in ["set", "rotate"] {
        let r = if op == "set" {
            set_value(&s, &key, &file, "[\"a\"]", "two")
        } else {
            run(agentsec(&s, &key).args(["secrets", "rotate"]).arg(&file))
        };
        assert_eq!(r.code, 0, "{op}: {r:?}");
        let m = std::fs::metadata(&file).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{op} changed the owner");
        assert_eq!(m.mode() & 0o7777, 0o640, "{op} changed the mode");
    }
    assert_ne!(
        uid, 0,
        "the test needs a file owned by someone else than root"
    );
}

/// A temporary file of ours left by a killed run is removed by the next write; other files
/// that only look similar are not touched.
#[test]
fn stale_temporary_files_are_cleaned_up() {
    let s = Scratch::new();
    let (key, recipient) = age_key(&s, "stale");
    let file = sops_encrypt(&s, &key, &recipient, "t.yaml", "a: one\n");
    let stale = s.write("work/.t.yaml.agentsec-tmp-Ab12Cd", "stale ciphertext");
    let not_ours = s.write("work/.u.yaml.agentsec-tmp-Ab12Cd", "another file's");
    let unrelated = s.write("work/.t.yaml.agentsec-tmp-notours-x", "keep");
    let r = set_value(&s, &key, &file, "[\"a\"]", "two");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!stale.exists(), "the stale temporary file is still there");
    assert!(not_ours.exists() && unrelated.exists());
}

/// What a file decrypts to (with agentsec; the MAC must verify), or the failure.
fn content(s: &Scratch, key: &Path, file: &Path) -> Result<String, Run> {
    let r = run(agentsec(s, key).args(["secrets", "decrypt"]).arg(file));
    if r.code == 0 { Ok(r.stdout) } else { Err(r) }
}

/// Starts `cmd`, kills it with SIGKILL after `delay` (if it still runs), waits for it.
fn kill_after(mut cmd: Command, stdin: Option<&[u8]>, delay: Duration) -> bool {
    use std::io::Write as _;
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        let _ = child.stdin.take().unwrap().write_all(input);
    }
    let start = Instant::now();
    while start.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    killed
}

/// `kill -9` at many moments of `set`, `unset`, `edit`, `rotate` and `updatekeys`: the file
/// always decrypts (MAC verified) to the old or the new content, and no file on the disk-backed
/// scratch directory holds a value in clear; buffers a killed edit left on the tmpfs are wiped
/// by the next edit.
#[test]
fn kill_9_leaves_the_old_or_the_new_file() {
    let s = Scratch::new();
    let (key, recipient) = age_key(&s, "kill");
    let (key2, recipient2) = age_key(&s, "kill2");
    // One identity file that opens both recipient sets (for updatekeys).
    let both = s.path("home/both.txt");
    std::fs::write(
        &both,
        format!(
            "{}{}",
            std::fs::read_to_string(&key).unwrap(),
            std::fs::read_to_string(&key2).unwrap()
        ),
    )
    .unwrap();
    let file = sops_encrypt(
        &s,
        &key,
        &recipient,
        "k.yaml",
        "keep: kept-v-5e1a\nlist:\n    - x\n# comment\nval: v-000\n",
    );
    let rt = runtime_dir();
    let values: Vec<String> = (0..200).map(|i| format!("v-{i:03}")).collect();
    let mut known: Vec<String> = vec![content(&s, &both, &file).unwrap()];
    let check = |known: &mut Vec<String>, what: &str| {
        let now = content(&s, &both, &file)
            .unwrap_or_else(|r| panic!("{what}: the file does not decrypt: {r:?}"));
        assert!(
            known.contains(&now),
            "{what}: neither the old nor the new content:\n{now}"
        );
        for e in std::fs::read_dir(s.path("work")).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.contains("agentsec-tmp") {
                let bytes = std::fs::read(e.path()).unwrap();
                assert!(!bytes.windows(6).any(|w| w.starts_with(b"kept-v")), "{n}");
            }
        }
    };
    // How long each command takes when not killed, to spread the kills over it.
    let time_it = |mut c: Command, stdin: Option<&[u8]>| {
        let t = Instant::now();
        c.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        if let Some(i) = stdin {
            use std::io::Write as _;
            let _ = child.stdin.take().unwrap().write_all(i);
        }
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
        t.elapsed()
    };
    let rules = |r: &str| format!("creation_rules:\n    - age: {r}\n");
    let ed = editor(
        &s,
        "slow-sed.sh",
        "sleep 0.05\nsed -i \"s/^val: .*/val: $NEWVAL/\" \"$1\"\nsleep 0.05",
    );
    let mut n = 0;
    for op in ["set", "unset", "edit", "rotate", "updatekeys"] {
        let make = |n: usize| -> (Command, Option<Vec<u8>>) {
            let mut c = agentsec(&s, &both);
            c.env("XDG_RUNTIME_DIR", rt.path());
            match op {
                "set" => {
                    c.args(["secrets", "set"]).arg(&file).arg("[\"val\"]");
                    (c, Some(format!("\"{}\"\n", values[n % 200]).into_bytes()))
                }
                "unset" => {
                    c.args(["secrets", "unset"]).arg(&file).arg("[\"val\"]");
                    (c, None)
                }
                "edit" => {
                    c.args(["secrets", "edit"])
                        .arg(&file)
                        .env("EDITOR", &ed)
                        .env("NEWVAL", &values[n % 200]);
                    (c, None)
                }
                "rotate" => {
                    c.args(["secrets", "rotate"]).arg(&file);
                    (c, None)
                }
                _ => {
                    let r = if n.is_multiple_of(2) {
                        &recipient2
                    } else {
                        &recipient
                    };
                    std::fs::write(s.path("work/.sops.yaml"), rules(r)).unwrap();
                    c.args(["secrets", "updatekeys", "--yes"]).arg(&file);
                    (c, None)
                }
            }
        };
        // Expected contents after this op (plus the current one).
        let expect = |n: usize, cur: &str| -> String {
            let mut out: Vec<String> = cur.lines().map(str::to_owned).collect();
            out.retain(|l| !l.starts_with("val:"));
            match op {
                "set" | "edit" => {
                    if cur.contains("val:") {
                        return cur
                            .lines()
                            .map(|l| {
                                if l.starts_with("val:") {
                                    format!("val: {}", values[n % 200])
                                } else {
                                    l.to_owned()
                                }
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                            + "\n";
                    }
                    out.push(format!("val: {}", values[n % 200]));
                    out.join("\n") + "\n"
                }
                "unset" => out.join("\n") + "\n",
                _ => cur.to_owned(),
            }
        };
        // Every op starts from a file with `val`.
        let r = set_value(&s, &both, &file, "[\"val\"]", "back");
        assert_eq!(r.code, 0, "{r:?}");
        known.push(content(&s, &both, &file).unwrap());
        let (c, stdin) = make(n);
        let cur = content(&s, &both, &file).unwrap();
        known.push(expect(n, &cur));
        let full = time_it(c, stdin.as_deref());
        n += 1;
        check(&mut known, &format!("{op} (not killed)"));
        const ROUNDS: u32 = 16;
        for i in 0..ROUNDS {
            if op == "unset" {
                let r = set_value(&s, &both, &file, "[\"val\"]", "back");
                assert_eq!(r.code, 0, "{r:?}");
            }
            let cur = content(&s, &both, &file).unwrap();
            known.push(cur.clone());
            known.push(expect(n, &cur));
            let (c, stdin) = make(n);
            // From right at the start to a little past the usual duration.
            let delay = full.mul_f64(f64::from(i) / f64::from(ROUNDS) * 1.2);
            kill_after(c, stdin.as_deref(), delay);
            n += 1;
            check(&mut known, &format!("{op} killed after {delay:?}"));
        }
    }
    // Killed edits may have left buffers on the tmpfs (their editor ran on): once the editors
    // are done, the next edit wipes them.
    std::thread::sleep(Duration::from_millis(300));
    let r = run(agentsec(&s, &both)
        .env("XDG_RUNTIME_DIR", rt.path())
        .args(["secrets", "edit"])
        .arg(&file)
        .env("EDITOR", &ed)
        .env("NEWVAL", "v-final"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        dir_is_empty(rt.path()),
        "stale edit buffers were not removed"
    );
    // Nothing in clear on the disk-backed scratch directory (HOME, TMPDIR, work).
    for (path, bytes) in s.all_file_bytes() {
        if path.starts_with(s.path("home")) {
            continue; // the key files
        }
        for v in ["kept-v-5e1a", "v-final", "v-001", "v-002", "v-050"] {
            assert_no_leak(v, &bytes, &path.display().to_string());
        }
    }
}

/// True if process `pid` still exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(')').map(|(_, r)| r.trim_start());
            !matches!(state.and_then(|r| r.chars().next()), Some('Z') | Some('X'))
        }
        Err(_) => false,
    }
}

fn pids(file: &Path) -> Vec<u32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Key commands that never finish: one that blocks, one whose forked child blocks while
/// holding the output pipe (and the shell waits for it), one that exits but leaves a child
/// holding the pipe.
fn blocking_key_commands(s: &Scratch) -> Vec<(String, PathBuf)> {
    (0..3)
        .map(|i| {
            let pidfile = s.path(&format!("work/pids-{i}"));
            let p = pidfile.display();
            let cmd = match i {
                0 => format!("echo $$ > {p}; exec sleep 1000"),
                1 => format!("sleep 1000 & echo $$ $! > {p}; wait"),
                _ => format!("sh -c 'echo $$ >> {p}; sleep 1000' & echo $$ >> {p}; exit 0"),
            };
            (cmd, pidfile)
        })
        .collect()
}

/// Runs `cmd`, killing it (and failing) if it is not done within `limit`.
fn run_bounded(cmd: &mut Command, limit: Duration) -> (Run, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (
        Run::from(child.wait_with_output().unwrap()),
        start.elapsed(),
    )
}

fn assert_gone(pidfile: &Path, what: &str) {
    // The pids were written before the command blocked.
    let pids = pids(pidfile);
    assert!(!pids.is_empty(), "{what}: the key command did not start");
    std::thread::sleep(Duration::from_millis(100));
    for pid in pids {
        assert!(
            !alive(pid),
            "{what}: process {pid} of the key command is still running"
        );
    }
}

/// `agentsec-run --timeout 1s` with a key command that blocks ends promptly with exit 2 (a
/// key error) and leaves no process of the key command behind.
#[test]
fn key_command_deadline_in_agentsec_run() {
    let s = Scratch::new();
    let component = skill("probe");
    for (cmd, pidfile) in blocking_key_commands(&s) {
        let (r, took) = run_bounded(
            s.command(&bin("agentsec-run"))
                .arg(&component)
                .args(["--agent", "ops/release-manager", "--secrets"])
                .arg(root().join("demo/secrets.yaml"))
                .arg("--policy")
                .arg(root().join("tests/testdata/policies/e2e.yaml"))
                .arg("--audit-log")
                .arg(s.audit_log())
                .args(["--timeout", "1s", "--input", "{\"ops\":[]}"])
                .env("SOPS_AGE_KEY_CMD", &cmd),
            Duration::from_secs(30),
        );
        assert_eq!(r.code, 2, "{cmd}: {r:?}");
        assert!(r.stderr.contains("SOPS_AGE_KEY_CMD"), "{r:?}");
        assert!(r.stderr.contains("did not finish"), "{r:?}");
        assert!(took < Duration::from_secs(5), "{cmd}: took {took:?}");
        assert_gone(&pidfile, &cmd);
    }
}

/// `agentsec secrets decrypt` with the same commands and `AGENTSEC_KEY_CMD_TIMEOUT=1`: the key
/// error (sops' "no data key" exit 128), promptly, nothing left running; a key command that
/// answers still works.
#[test]
fn key_command_deadline_in_secrets_decrypt() {
    let s = Scratch::new();
    let (key, recipient) = age_key(&s, "cmd");
    let file = sops_encrypt(&s, &key, &recipient, "d.yaml", "a: secret-v-8d1f\n");
    for (cmd, pidfile) in blocking_key_commands(&s) {
        let (r, took) = run_bounded(
            s.command(&bin("agentsec"))
                .args(["secrets", "decrypt"])
                .arg(&file)
                .env("SOPS_AGE_KEY_CMD", &cmd)
                .env("AGENTSEC_KEY_CMD_TIMEOUT", "1"),
            Duration::from_secs(30),
        );
        assert_eq!(r.code, 128, "{cmd}: {r:?}");
        assert!(r.stderr.contains("did not finish within 1s"), "{r:?}");
        assert!(took < Duration::from_secs(4), "{cmd}: took {took:?}");
        assert_gone(&pidfile, &cmd);
        assert!(r.stdout.is_empty());
    }
    let r = run(s
        .command(&bin("agentsec"))
        .args(["secrets", "decrypt"])
        .arg(&file)
        .env("SOPS_AGE_KEY_CMD", format!("cat {}", key.display()))
        .env("AGENTSEC_KEY_CMD_TIMEOUT", "5"));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "a: secret-v-8d1f\n");
}
