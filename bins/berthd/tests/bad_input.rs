//! Hostile and broken input: a clear error with the right status, and nothing partial left
//! in the store.

mod common;

use common::*;

/// The store holds nothing: no image, no blob, no snapshot, no scratch file.
fn assert_empty(d: &Daemon) {
    assert_eq!(d.docker(&["images", "-q"]).stdout.trim(), "");
    assert!(
        d.stored_blobs().is_empty(),
        "blobs left: {:?}",
        d.stored_blobs()
    );
    assert!(
        d.stored_snapshots().is_empty(),
        "snapshots left: {:?}",
        d.stored_snapshots()
    );
    let scratch = d.data_root().join("image/tmp");
    let left = std::fs::read_dir(&scratch).map(|r| r.count()).unwrap_or(0);
    assert_eq!(left, 0, "scratch files left in {}", scratch.display());
}

/// A load that fails is a 200 stream whose last message is the error, as dockerd's
/// (postImagesLoad writes every failure into the stream); SDKs raise it from there.
fn load_answer(d: &Daemon, bytes: &[u8]) -> (u16, String) {
    let (status, body) = d.http("POST", "/v1.45/images/load", bytes);
    let last = body
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_default()
        .to_string();
    let message: serde_json::Value = serde_json::from_str(&last).unwrap_or_default();
    let error = message["errorDetail"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(message["error"].as_str(), Some(error.as_str()), "{body}");
    (status, error)
}

fn load_fails(d: &Daemon, archive: &std::path::Path, needle: &str) {
    let bytes = std::fs::read(archive).expect("archive");
    let (status, error) = load_answer(d, &bytes);
    assert_eq!(status, 200, "{error}");
    assert!(error.contains(needle), "expected {needle:?} in {error}");
    // The docker CLI prints the stream's error as it is (no "Error response from
    // daemon"), and exits 1, as with dockerd.
    let out = d.docker(&["load", "-i", archive.to_str().expect("utf8")]);
    out.failed_with(needle);
    assert_eq!(out.code, 1);
    assert!(
        !out.stderr.contains("Error response from daemon"),
        "{}",
        out.stderr
    );
    assert_empty(d);
}

#[test]
fn broken_archives_are_refused_and_leave_nothing() {
    let d = Daemon::start();
    let dir = d.dir.path();
    let good = dir.join("good.tar");
    classic_archive(
        &good,
        "ok/img:1",
        &[layer(&[("a", &[1u8; 20000])])],
        serde_json::json!({}),
    );
    let bytes = std::fs::read(&good).expect("read");

    let truncated = dir.join("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).expect("write");
    load_fails(&d, &truncated, "archive");

    let garbage = dir.join("garbage.tar");
    std::fs::write(&garbage, b"this is not a tar archive at all, just text").expect("write");
    load_fails(&d, &garbage, "invalid archive");

    let corrupt_gz = dir.join("corrupt.tar.gz");
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gz.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef].repeat(100));
    std::fs::write(&corrupt_gz, gz).expect("write");
    load_fails(&d, &corrupt_gz, "archive");

    // A layer whose bytes do not match the DiffID the config promises.
    let mismatch = dir.join("mismatch.tar");
    classic_archive(
        &mismatch,
        "bad/img:1",
        &[layer(&[("a", b"one")])],
        serde_json::json!({}),
    );
    let text = std::fs::read(&mismatch).expect("read");
    let swapped = replace_layer(&text, &layer(&[("a", b"two")]));
    std::fs::write(&mismatch, swapped).expect("write");
    load_fails(&d, &mismatch, "digest mismatch");

    // Archive paths that climb out, and layers that try to.
    let escape = dir.join("escape.tar");
    raw_tar(&escape, &[("../../evil", b"x".as_slice())]);
    load_fails(&d, &escape, "escapes the archive");
    assert!(!dir.join("evil").exists());

    let hostile = dir.join("hostile.tar");
    let mut l = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_path("link").expect("path");
    h.set_link_name(dir.to_str().expect("utf8"))
        .expect("target");
    h.set_size(0);
    h.set_mode(0o777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    l.append(&h, std::io::empty()).expect("append");
    let mut f = tar::Header::new_gnu();
    f.set_path("link/owned").expect("path");
    f.set_size(1);
    f.set_mode(0o644);
    f.set_uid(0);
    f.set_gid(0);
    f.set_mtime(0);
    f.set_cksum();
    l.append(&f, &b"x"[..]).expect("append");
    classic_archive(
        &hostile,
        "evil/img:1",
        &[l.into_inner().expect("layer")],
        serde_json::json!({}),
    );
    load_fails(&d, &hostile, "unsafe layer entry");
    assert!(
        !dir.join("owned").exists(),
        "a layer wrote outside its snapshot"
    );

    // The store still works after all that.
    d.docker(&["load", "-i", good.to_str().expect("utf8")]).ok();
}

/// Swap the (only) layer.tar of a classic archive for `new`.
fn replace_layer(archive: &[u8], new: &[u8]) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    let mut a = tar::Archive::new(archive);
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = e.path().expect("path").into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).expect("read");
        if path.ends_with("layer.tar") {
            data = new.to_vec();
        }
        let mut h = tar::Header::new_ustar();
        h.set_path(&path).expect("path");
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.append(&h, &data[..]).expect("append");
    }
    out.into_inner().expect("finish")
}

/// A tar with raw names (the tar crate refuses "..").
fn raw_tar(path: &std::path::Path, files: &[(&str, &[u8])]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).expect("create"));
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, *data).expect("append");
    }
    b.finish().expect("finish");
}

#[test]
fn unknown_names_invalid_references_and_bad_requests() {
    let d = Daemon::start();
    let tar = busybox_rootfs_tar(d.dir.path());
    d.docker(&["import", tar.to_str().expect("utf8"), "real:1"])
        .ok();
    for args in [
        vec!["image", "inspect", "missing:1"],
        vec!["rmi", "missing:1"],
        vec!["tag", "missing:1", "x:1"],
        vec!["history", "missing"],
        vec!["save", "-o", "out.tar", "missing:1"],
    ] {
        let out = d.docker(&args);
        out.failed();
        assert!(
            out.stderr.contains("No such image"),
            "{args:?}: {}",
            out.stderr
        );
    }
    for (path, status) in [
        ("/v1.45/images/missing:1/json", 404),
        ("/v1.45/images/real:1/tag?repo=UPPER&tag=case", 400),
        ("/v1.45/images/real:1/tag?repo=a&tag=:b", 400),
        ("/v1.45/images/json?filters=%7Bnot-json", 400),
        (
            "/v1.45/images/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
            400,
        ),
        ("/v1.45/images/create?fromImage=a::b", 400),
        ("/v1.45/images/create?fromImage=x&platform=linux", 400),
    ] {
        let method = if path.contains("/tag") || path.contains("/create") {
            "POST"
        } else {
            "GET"
        };
        let (got, body) = d.http(method, path, b"");
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.contains("\"message\""), "{path}: {body}");
    }
    for bad in ["UPPER:case", "a::b", "-x", "x:"] {
        let out = d.docker(&["tag", "real:1", bad]);
        out.failed();
    }
    let changes = d.docker(&[
        "import",
        "--change",
        "RUN make",
        tar.to_str().expect("utf8"),
        "c:1",
    ]);
    changes.failed_with("RUN is not supported");
    assert_eq!(d.docker(&["images", "-q"]).stdout.lines().count(), 1);
}

/// (type, name, link name) of a raw tar entry.
type RawEntry<'a> = (tar::EntryType, &'a str, &'a str);

/// A layer of raw entries: `name` and `link` bytes written into the header as they are
/// (GNU long-name records when they do not fit), so the tar crate's own checks do not
/// stop the test from making what an attacker can.
fn raw_layer(entries: &[RawEntry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (kind, name, link) in entries {
        if name.len() >= 100 || link.len() >= 100 {
            for (code, text) in [(b'L', name), (b'K', link)] {
                if text.len() >= 100 {
                    let mut long = tar::Header::new_gnu();
                    long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
                    long.set_entry_type(tar::EntryType::new(code));
                    long.set_size(text.len() as u64 + 1);
                    long.set_mode(0o644);
                    long.set_cksum();
                    let mut data = text.as_bytes().to_vec();
                    data.push(0);
                    b.append(&long, &data[..]).expect("long name");
                }
            }
        }
        let mut h = tar::Header::new_gnu();
        let short = |s: &str| s.as_bytes()[..s.len().min(99)].to_vec();
        let n = short(name);
        h.as_old_mut().name[..n.len()].copy_from_slice(&n);
        let l = short(link);
        h.as_old_mut().linkname[..l.len()].copy_from_slice(&l);
        h.set_entry_type(*kind);
        h.set_size(0);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_cksum();
        b.append(&h, std::io::empty()).expect("append");
    }
    b.into_inner().expect("layer")
}

/// Issue 20, item 7: hostile layer entries are a 400 whose short message names the entry
/// (they were 500s with kilobytes of text), and nothing is left in the store.
#[test]
fn hostile_layer_entries_get_a_short_error_naming_the_entry() {
    use tar::EntryType as T;
    let d = Daemon::start();
    let dir = d.dir.path();
    let deep = vec!["d"; 10_000].join("/");
    let long_name = "n".repeat(300);
    let cases: Vec<(&str, Vec<RawEntry>, &str)> = vec![
        (
            "absolute hard link",
            vec![(T::Link, "copy", "/etc/passwd")],
            "copy",
        ),
        ("whiteout of .", vec![(T::Regular, "a/.wh..", "")], ".wh.."),
        (
            "whiteout of ..",
            vec![(T::Regular, "a/.wh...", "")],
            ".wh...",
        ),
        (
            "a 300-byte name",
            vec![(T::Regular, &long_name, "")],
            "nnnnnnnn",
        ),
        (
            "a 10,000-deep tree",
            vec![(T::Directory, &deep, "")],
            "d/d/d",
        ),
    ];
    for (what, entries, needle) in cases {
        let archive = dir.join("hostile.tar");
        classic_archive(
            &archive,
            "evil/img:1",
            &[raw_layer(&entries)],
            serde_json::json!({}),
        );
        let bytes = std::fs::read(&archive).expect("archive");
        let (status, error) = load_answer(&d, &bytes);
        assert_eq!(status, 200, "{what}: {}", &error[..error.len().min(300)]);
        assert!(error.len() < 1024, "{what}: a {}-byte error", error.len());
        assert!(error.contains(needle), "{what}: {error}");
        assert_empty(&d);
    }
    assert!(!dir.join("etc").exists());
}
