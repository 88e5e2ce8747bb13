//! Layer unpacking with crafted archives: metadata kept, whiteouts converted, and hostile
//! entries refused without writing outside the snapshot. Runs as root (ownership, devices,
//! trusted.* xattrs).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_image::unpack::unpack;

/// A header with `name` written raw (the tar crate refuses ".." in set_path).
fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let bytes = name.as_bytes();
    h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }
    fn file(mut self, name: &str, body: &[u8], mode: u32, owner: (u64, u64)) -> Layer {
        let mut h = header(name, tar::EntryType::Regular, body.len() as u64);
        h.set_mode(mode);
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_cksum();
        self.0.append(&h, body).expect("append");
        self
    }
    fn dir(mut self, name: &str, mode: u32) -> Layer {
        let mut h = header(name, tar::EntryType::Directory, 0);
        h.set_mode(mode);
        h.set_cksum();
        self.0.append(&h, &[][..]).expect("append");
        self
    }
    fn link(mut self, kind: tar::EntryType, name: &str, target: &str) -> Layer {
        let mut h = header(name, kind, 0);
        let t = target.as_bytes();
        h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
        h.set_cksum();
        self.0.append(&h, &[][..]).expect("append");
        self
    }
    fn node(mut self, name: &str, kind: tar::EntryType, major: u32, minor: u32) -> Layer {
        let mut h = header(name, kind, 0);
        h.set_device_major(major).expect("major");
        h.set_device_minor(minor).expect("minor");
        h.set_cksum();
        self.0.append(&h, &[][..]).expect("append");
        self
    }
    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().expect("finish")
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let n = std::ffi::CString::new(name).expect("name");
    let mut buf = [0u8; 64];
    // SAFETY: both strings are NUL-terminated; buf is writable for its length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

#[test]
fn keeps_metadata_and_converts_whiteouts() {
    let tar = Layer::new()
        .dir("etc/", 0o755)
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644, (0, 0))
        .file("bin/suid", b"#!/bin/sh\n", 0o4755, (0, 0))
        .file("home/user/notes", b"hi", 0o600, (1000, 1001))
        .link(tar::EntryType::Symlink, "etc/link", "/etc/passwd")
        .link(tar::EntryType::Link, "etc/hard", "etc/passwd")
        .node("dev/null", tar::EntryType::Char, 1, 3)
        .node("run/fifo", tar::EntryType::Fifo, 0, 0)
        .file("var/.wh.gone", b"", 0o644, (0, 0))
        .file("opt/.wh..wh..opq", b"", 0o644, (0, 0))
        .dir("private/", 0o700)
        .bytes();
    let dest = tempfile::tempdir().expect("tmp");
    let plain = unpack(&tar[..], dest.path()).expect("unpack");
    let d = dest.path();
    assert_eq!(
        std::fs::read(d.join("etc/passwd")).expect("passwd"),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!(
        std::fs::metadata(d.join("bin/suid")).expect("suid").mode() & 0o7777,
        0o4755
    );
    let notes = std::fs::metadata(d.join("home/user/notes")).expect("notes");
    assert_eq!(
        (notes.uid(), notes.gid(), notes.mode() & 0o777),
        (1000, 1001, 0o600)
    );
    assert_eq!(
        std::fs::read_link(d.join("etc/link")).expect("link"),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        std::fs::metadata(d.join("etc/hard")).expect("hard").ino(),
        std::fs::metadata(d.join("etc/passwd")).expect("p").ino()
    );
    let null = std::fs::metadata(d.join("dev/null")).expect("null");
    assert!(null.file_type().is_char_device() && null.rdev() == nix::sys::stat::makedev(1, 3));
    assert!(std::fs::metadata(d.join("run/fifo"))
        .expect("fifo")
        .file_type()
        .is_fifo());
    let gone = std::fs::symlink_metadata(d.join("var/gone")).expect("whiteout");
    assert!(
        gone.file_type().is_char_device() && gone.rdev() == 0,
        "overlay whiteout"
    );
    assert!(!d.join("var/.wh.gone").exists());
    assert_eq!(
        xattr(&d.join("opt"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        std::fs::metadata(d.join("private")).expect("dir").mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(d.join("etc/passwd")).expect("p").mtime(),
        1_600_000_000
    );
    assert_eq!(plain.size, 26 + 10 + 2);

    // The same layer gzip'd unpacks to the same DiffID (the digest of the plain tar).
    let dest2 = tempfile::tempdir().expect("tmp");
    let zipped = unpack(&gzip(&tar)[..], dest2.path()).expect("unpack gz");
    assert_eq!(zipped.diff_id, plain.diff_id);
    assert_eq!(plain.diff_id, berth_image::Digest::of(&tar));
}

/// Modes are exact whether the umask would have kept them (0644 is created as is), stripped
/// them (0777, 0666), or they deny the writer (0444, 0000); owners other than the creator's
/// are set; contents larger than one copy buffer arrive whole; directories get their modes
/// and times after their children, even read-only and set-group-id ones.
#[test]
fn modes_owners_and_large_files_are_exact() {
    let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let tar = Layer::new()
        .dir("ro/", 0o555)
        .file("ro/plain", b"plain", 0o644, (0, 0))
        .file("ro/open", b"open", 0o777, (0, 0))
        .file("ro/shared", b"shared", 0o666, (0, 0))
        .file("ro/readonly", b"readonly", 0o444, (0, 0))
        .file("ro/none", b"none", 0o000, (0, 0))
        .file("ro/group", b"group", 0o640, (0, 42))
        .file("ro/big", &big, 0o644, (7, 7))
        .file("ro/sgid", b"x", 0o2755, (0, 42))
        .dir("shared/", 0o2775)
        .file("shared/inner", b"inner", 0o644, (0, 0))
        .bytes();
    let dest = tempfile::tempdir().expect("tmp");
    unpack(&tar[..], dest.path()).expect("unpack");
    let d = dest.path();
    let meta = |p: &str| std::fs::symlink_metadata(d.join(p)).expect(p);
    for (path, mode, owner) in [
        ("ro/plain", 0o644, (0, 0)),
        ("ro/open", 0o777, (0, 0)),
        ("ro/shared", 0o666, (0, 0)),
        ("ro/readonly", 0o444, (0, 0)),
        ("ro/none", 0o000, (0, 0)),
        ("ro/group", 0o640, (0, 42)),
        ("ro/big", 0o644, (7, 7)),
        ("ro/sgid", 0o2755, (0, 42)),
        ("shared/inner", 0o644, (0, 0)),
    ] {
        let m = meta(path);
        assert_eq!(
            (m.mode() & 0o7777, (m.uid(), m.gid())),
            (mode, owner),
            "{path}"
        );
        assert_eq!(m.mtime(), 1_600_000_000, "{path}");
    }
    assert_eq!(std::fs::read(d.join("ro/big")).expect("big"), big);
    assert_eq!(
        std::fs::read(d.join("ro/readonly")).expect("ro"),
        b"readonly"
    );
    assert_eq!(meta("ro").mode() & 0o7777, 0o555);
    assert_eq!(meta("shared").mode() & 0o7777, 0o2775);
    assert_eq!(meta("ro").mtime(), 1_600_000_000);
}

#[test]
fn hostile_entries_are_refused_and_nothing_escapes() {
    let outside = tempfile::tempdir().expect("outside");
    let target = outside.path().to_str().expect("utf8").to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dot-dot",
            Layer::new().file("../escape", b"x", 0o644, (0, 0)).bytes(),
        ),
        (
            "nested dot-dot",
            Layer::new()
                .file("a/../../escape", b"x", 0o644, (0, 0))
                .bytes(),
        ),
        (
            "write through a symlink",
            Layer::new()
                .link(tar::EntryType::Symlink, "link", &target)
                .file("link/escape", b"x", 0o644, (0, 0))
                .bytes(),
        ),
        (
            "symlink to a parent",
            Layer::new()
                .link(tar::EntryType::Symlink, "up", "..")
                .file("up/escape", b"x", 0o644, (0, 0))
                .bytes(),
        ),
        (
            "hardlink out",
            Layer::new()
                .link(tar::EntryType::Link, "h", "../../etc/passwd")
                .bytes(),
        ),
        (
            "hardlink through a symlink",
            Layer::new()
                .link(tar::EntryType::Symlink, "etc", "/etc")
                .link(tar::EntryType::Link, "h", "etc/passwd")
                .bytes(),
        ),
        (
            // The directory the previous entries went into is replaced by a symlink: the
            // next entry must not be written through the directory opened before.
            "a directory replaced by a symlink between entries",
            Layer::new()
                .dir("a", 0o755)
                .dir("a/b", 0o755)
                .file("a/c", b"x", 0o644, (0, 0))
                .link(tar::EntryType::Symlink, "a/b", &target)
                .file("a/b/escape", b"x", 0o644, (0, 0))
                .bytes(),
        ),
        (
            "whiteout through a symlink",
            Layer::new()
                .link(tar::EntryType::Symlink, "d", &target)
                .file("d/.wh.victim", b"", 0o644, (0, 0))
                .bytes(),
        ),
    ];
    std::fs::write(outside.path().join("victim"), b"keep").expect("victim");
    for (name, tar) in cases {
        let dest = tempfile::tempdir().expect("tmp");
        let snapshot = dest.path().join("snap");
        std::fs::create_dir(&snapshot).expect("snap");
        let err = unpack(&tar[..], &snapshot).expect_err(name);
        assert!(
            matches!(err, berth_image::Error::UnsafeEntry { .. }),
            "{name}: {err}"
        );
        assert!(!dest.path().join("escape").exists(), "{name} escaped");
        assert!(!outside.path().join("escape").exists(), "{name} escaped");
    }
    assert_eq!(
        std::fs::read(outside.path().join("victim")).expect("victim"),
        b"keep"
    );
    let links: Vec<_> = std::fs::read_dir(outside.path())
        .expect("outside")
        .collect();
    assert_eq!(links.len(), 1);

    // An absolute path lands inside the snapshot.
    let dest = tempfile::tempdir().expect("tmp");
    unpack(
        &Layer::new().file("/abs/file", b"x", 0o644, (0, 0)).bytes()[..],
        dest.path(),
    )
    .expect("absolute");
    assert!(dest.path().join("abs/file").is_file());
}

#[test]
fn corrupt_input_is_a_clear_error() {
    let dest = tempfile::tempdir().expect("tmp");
    let tar = Layer::new().file("a", &[7u8; 5000], 0o644, (0, 0)).bytes();
    let err = unpack(&tar[..1500], dest.path()).expect_err("truncated");
    assert!(err.to_string().contains("layer"), "{err}");
    let gz = gzip(&tar);
    let err = unpack(&gz[..gz.len() / 2], dest.path()).expect_err("truncated gzip");
    assert!(!err.to_string().is_empty());
}

#[test]
fn zstd_layers_and_pax_xattrs() {
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.user.berth", &b"kept"[..])])
        .expect("pax");
    let mut h = header("bin/tool", tar::EntryType::Regular, 3);
    h.set_cksum();
    b.append(&h, &b"abc"[..]).expect("append");
    let tar = b.into_inner().expect("tar");
    let compressed = zstd::encode_all(&tar[..], 3).expect("zstd");
    let dest = tempfile::tempdir().expect("tmp");
    let unpacked = unpack(&compressed[..], dest.path()).expect("unpack zstd");
    assert_eq!(unpacked.diff_id, berth_image::Digest::of(&tar));
    assert_eq!(
        std::fs::read(dest.path().join("bin/tool")).expect("tool"),
        b"abc"
    );
    assert_eq!(
        xattr(&dest.path().join("bin/tool"), "user.berth").as_deref(),
        Some(&b"kept"[..])
    );
}

/// Found by fuzzing (fuzz/tests/fuzz_unpack.rs): uid or gid 4294967295 is (uid_t)-1, which chown
/// takes as "leave it", so the entry silently kept the unpacker's owner (root). Refused like
/// larger ids.
#[test]
fn owner_minus_one_is_refused() {
    for owner in [(u64::from(u32::MAX), 0), (0, u64::from(u32::MAX))] {
        let dest = tempfile::tempdir().expect("tmp");
        let tar = Layer::new().file("a", b"x", 0o644, owner).bytes();
        let err = unpack(&tar[..], dest.path()).expect_err("owner -1");
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}

/// Found by fuzzing: a directory listed twice took the first entry's owner when the last
/// one asked for the unpacker's own (root): the owner is only set when it differs from
/// the creator's, and the first entry had already changed it. The last entry wins, as
/// for its mode.
#[test]
fn a_directory_listed_twice_gets_the_last_owner() {
    let mut b = tar::Builder::new(Vec::new());
    for (uid, mode) in [(1000, 0o700), (0, 0o755)] {
        let mut h = header("c/", tar::EntryType::Directory, 0);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mode(mode);
        h.set_cksum();
        b.append(&h, &[][..]).expect("append");
    }
    let tar = b.into_inner().expect("tar");
    let dest = tempfile::tempdir().expect("tmp");
    unpack(&tar[..], dest.path()).expect("unpack");
    let c = std::fs::metadata(dest.path().join("c")).expect("c");
    assert_eq!((c.uid(), c.gid(), c.mode() & 0o7777), (0, 0, 0o755));
}

/// A `docker cp` archive extracted into an existing tree: `.wh.` names stay plain files,
/// the owner asked for replaces the archive's, existing directories keep their content,
/// and with noOverwriteDirNonDir a file over a directory (or the reverse) is refused.
#[test]
fn extract_for_cp_follows_dockers_copy_rules() {
    use berth_image::unpack::{extract, CopyOptions};
    use std::os::fd::OwnedFd;
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path();
    std::fs::create_dir_all(dest.join("keep/old")).expect("mkdir");
    std::fs::write(dest.join("afile"), b"x").expect("write");
    let root: OwnedFd = std::fs::File::open(dest).expect("open").into();
    let archive = Layer::new()
        .dir("keep", 0o755)
        .file("keep/new", b"new", 0o640, (0, 0))
        .file(".wh.plain", b"", 0o600, (0, 0))
        .bytes();
    let opts = CopyOptions {
        no_overwrite_dir_non_dir: true,
        owner: Some((1234, 5678)),
    };
    extract(&archive[..], &root, &opts).expect("extract");
    assert!(
        dest.join("keep/old").is_dir(),
        "an existing directory keeps its content"
    );
    let new = std::fs::metadata(dest.join("keep/new")).expect("new");
    assert_eq!(
        (new.uid(), new.gid(), new.mode() & 0o777),
        (1234, 5678, 0o640)
    );
    assert!(dest.join(".wh.plain").is_file(), "no whiteout in a copy");

    let file_over_dir = Layer::new().file("keep", b"f", 0o644, (0, 0)).bytes();
    let err = extract(&file_over_dir[..], &root, &opts).expect_err("file over dir");
    assert!(
        err.to_string().contains("cannot overwrite a directory"),
        "{err}"
    );
    let dir_over_file = Layer::new().dir("afile", 0o755).bytes();
    let err = extract(&dir_over_file[..], &root, &opts).expect_err("dir over file");
    assert!(
        err.to_string().contains("cannot overwrite a non-directory"),
        "{err}"
    );
    // Without the rule, the file is replaced.
    extract(&dir_over_file[..], &root, &CopyOptions::default()).expect("replace");
    assert!(dest.join("afile").is_dir());
}
