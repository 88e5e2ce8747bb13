//! Hostile tar streams, built header by header so that they can say what `tar::Builder`
//! refuses to write (`..` and absolute names, links to anywhere, odd types, huge ids), with
//! valid checksums so that the parser gets past the headers; then maybe corrupted,
//! truncated and compressed.

use std::io::Write;
use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// Where a link points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A path as written in the archive (relative, absolute, with `..`).
    Named(String),
    /// A path below the test's sentinel directory outside the unpack target, written as an
    /// absolute path: following it means leaving the layer. (Absolute symlink targets are
    /// written below it too: see [`Target::bytes`].)
    Outside(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(Target),
    Hardlink(Target),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
    /// A header of another type byte (pax global header, GNU sparse, vendor types...).
    Other(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Sent as `SCHILY.xattr.*` records of a pax header before the entry.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// Whether the name goes through a GNU long-name entry even when it fits the header.
    pub long_name: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// A layer: entries, then damage to the tar bytes, then compression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub entries: Vec<Entry>,
    /// (offset modulo the length, byte XORed in).
    pub corruption: Vec<(usize, u8)>,
    /// Cut the tar to this many bytes (modulo its length).
    pub truncate: Option<usize>,
    pub compression: Compression,
}

impl Layer {
    /// Whether the tar reaches the parser as written.
    pub fn intact(&self) -> bool {
        self.corruption.is_empty() && self.truncate.is_none()
    }

    /// The uncompressed tar (the bytes whose digest is the DiffID), `outside` standing for
    /// [`Target::Outside`] paths.
    pub fn tar(&self, outside: &Path) -> Vec<u8> {
        let mut bytes = archive(&self.entries, outside);
        let len = bytes.len();
        for (at, xor) in &self.corruption {
            bytes[at % len] ^= xor.max(&1);
        }
        if let Some(cut) = self.truncate {
            bytes.truncate(cut % len);
        }
        bytes
    }

    /// The layer as stored: the tar, compressed.
    pub fn stream(&self, outside: &Path) -> Vec<u8> {
        compress(&self.tar(outside), self.compression)
    }
}

pub fn compress(bytes: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => bytes.to_vec(),
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            // Writing into a Vec cannot fail.
            let _ = gz.write_all(bytes);
            gz.finish().unwrap_or_default()
        }
        Compression::Zstd => zstd::encode_all(bytes, 1).unwrap_or_default(),
    }
}

fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    let text = &text.as_bytes()[text.len().saturating_sub(width)..];
    field[..width].copy_from_slice(text);
    field[width] = 0;
}

fn block(name: &[u8], typeflag: u8, size: u64, e: Option<&Entry>, link: &[u8]) -> [u8; 512] {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        let n = name.len().min(100);
        old.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        old.linkname[..l].copy_from_slice(&link[..l]);
    }
    h.set_entry_type(tar::EntryType::new(typeflag));
    h.set_size(size);
    let (mode, uid, gid, mtime) = e.map_or((0o644, 0, 0, 0), |e| (e.mode, e.uid, e.gid, e.mtime));
    // Above the octal field's range tar-rs switches to GNU's binary form by itself.
    octal(&mut h.as_old_mut().mode, u64::from(mode) & 0o7777777);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(mtime);
    if let Some(Kind::Char(major, minor) | Kind::Block(major, minor)) = e.map(|e| &e.kind) {
        let _ = h.set_device_major(*major);
        let _ = h.set_device_minor(*minor);
    }
    h.set_cksum();
    let mut out = [0u8; 512];
    out.copy_from_slice(h.as_bytes());
    out
}

fn push_data(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

/// A pax extended header's record: "<len> <key>=<value>\n", len counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

impl Target {
    /// The link name written in the archive. A symlink to an absolute path points below
    /// `outside` too: written through by a broken unpacker, it changes the test's sentinel,
    /// not the host's files (a hardlink cannot reach them: the test unpacks on a tmpfs).
    pub fn bytes(&self, symlink: bool, outside: &Path) -> Vec<u8> {
        let below = |rel: &str| {
            let mut p = outside.as_os_str().as_encoded_bytes().to_vec();
            let rel = rel.trim_start_matches('/');
            if !rel.is_empty() {
                p.push(b'/');
                p.extend_from_slice(rel.as_bytes());
            }
            p
        };
        match self {
            Target::Named(p) if symlink && p.starts_with('/') => below(p),
            Target::Named(p) => p.clone().into_bytes(),
            Target::Outside(rel) => below(rel),
        }
    }
}

/// The tar stream of `entries`, with the two zero blocks that end it.
pub fn archive(entries: &[Entry], outside: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let link = match &e.kind {
            Kind::Symlink(t) => t.bytes(true, outside),
            Kind::Hardlink(t) => t.bytes(false, outside),
            _ => Vec::new(),
        };
        if !e.xattrs.is_empty() {
            let mut data = Vec::new();
            for (k, v) in &e.xattrs {
                data.extend(pax_record(&format!("SCHILY.xattr.{k}"), v));
            }
            out.extend_from_slice(&block(
                b"././@PaxHeader",
                b'x',
                data.len() as u64,
                None,
                b"",
            ));
            push_data(&mut out, &data);
        }
        let name = e.path.as_bytes();
        if e.long_name || name.len() > 100 {
            let mut data = name.to_vec();
            data.push(0);
            out.extend_from_slice(&block(b"././@LongLink", b'L', data.len() as u64, None, b""));
            push_data(&mut out, &data);
        }
        if link.len() > 100 {
            let mut data = link.clone();
            data.push(0);
            out.extend_from_slice(&block(b"././@LongLink", b'K', data.len() as u64, None, b""));
            push_data(&mut out, &data);
        }
        let (typeflag, data): (u8, &[u8]) = match &e.kind {
            Kind::File(d) => (b'0', d),
            Kind::Dir => (b'5', b""),
            Kind::Symlink(_) => (b'2', b""),
            Kind::Hardlink(_) => (b'1', b""),
            Kind::Char(..) => (b'3', b""),
            Kind::Block(..) => (b'4', b""),
            Kind::Fifo => (b'6', b""),
            Kind::Other(t) => (*t, b""),
        };
        out.extend_from_slice(&block(name, typeflag, data.len() as u64, Some(e), &link));
        push_data(&mut out, data);
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// One name in a layer: the tricky ones (`..`, whiteouts, the opaque marker, long) often.
pub fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        14 => select(vec!["a", "b", "c", "etc", "usr"]).prop_map(String::from),
        1 => select(vec!["..", "."]).prop_map(String::from),
        2 => select(vec![".wh.a", ".wh.b", ".wh.etc", ".wh..wh..opq", ".wh.", ".wh..", ".wh.c"])
            .prop_map(String::from),
        1 => select(vec!["d e", "\u{fc}", "x\\y", "-"]).prop_map(String::from),
        1 => (1usize..3).prop_map(|n| "L".repeat(60 * n)),
    ]
}

/// A path in a layer: 1-3 names, maybe absolute or `./`-prefixed, maybe with a slash at
/// the end.
pub fn entry_path() -> impl Strategy<Value = String> {
    (
        select(vec!["", "", "", "/", "./", "//"]),
        vec(component(), 1..=3),
        select(vec!["", "", "", "/"]),
    )
        .prop_map(|(pre, parts, post)| format!("{pre}{}{post}", parts.join("/")))
}

pub fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        4 => entry_path().prop_map(Target::Named),
        1 => select(vec!["", "/", "..", "../..", "../outside", "../outside/victim", "/etc/..", "a/../.."])
            .prop_map(|s| Target::Named(s.to_string())),
        2 => select(vec!["", "victim", "sub", "sub/x", "new"]).prop_map(|s| Target::Outside(s.to_string())),
    ]
}

pub fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        5 => prop_oneof![
            4 => vec(any::<u8>(), 0..48),
            1 => vec(any::<u8>(), 0..2048),
        ].prop_map(Kind::File),
        3 => Just(Kind::Dir),
        2 => target().prop_map(Kind::Symlink),
        2 => target().prop_map(Kind::Hardlink),
        1 => (0u32..300, 0u32..300).prop_map(|(a, b)| Kind::Char(a, b)),
        1 => (0u32..300, 0u32..300).prop_map(|(a, b)| Kind::Block(a, b)),
        1 => Just(Kind::Fifo),
        1 => select(vec![b'g', b'x', b'S', b'V', b'M', b'N', b'7', b'D', b'Z', 0]).prop_map(Kind::Other),
    ]
}

fn mode() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => select(vec![0o644, 0o755, 0o600, 0o700, 0o444]),
        1 => select(vec![0o4755, 0o2755, 0o1777, 0o6777, 0o7777, 0, 0o170755]),
        1 => any::<u32>(),
    ]
}

fn id() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => Just(0u64),
        2 => select(vec![1u64, 1000, 65534]),
        1 => select(vec![u64::from(u32::MAX), u64::from(u32::MAX) + 1, 1 << 40]),
    ]
}

fn xattrs() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop_oneof![
        8 => Just(Vec::new()),
        1 => vec(
            (
                select(vec!["user.a", "trusted.t", "trusted.overlay.opaque", "security.capability", "bogus", "user."]),
                // No 0x0a: tar 0.4.46 splits pax records on newlines and drops such values
                // (crates/image/tests/unpack.rs, xattr_values_with_a_newline_are_kept).
                vec(any::<u8>().prop_filter_map("newline", |b| (b != b'\n').then_some(b)), 0..8),
            )
                .prop_map(|(k, v)| (k.to_string(), v)),
            1..3,
        ),
    ]
}

pub fn entry() -> impl Strategy<Value = Entry> {
    (
        entry_path(),
        kind(),
        mode(),
        id(),
        id(),
        select(vec![0u64, 1_700_000_000, 1 << 40]),
        xattrs(),
        prop::bool::weighted(0.05),
    )
        .prop_map(
            |(path, kind, mode, uid, gid, mtime, xattrs, long_name)| Entry {
                path,
                kind,
                mode,
                uid,
                gid,
                mtime,
                xattrs,
                long_name,
            },
        )
}

/// An entry an ordinary image has: a file or directory of plain names.
pub fn plain_entry() -> impl Strategy<Value = Entry> {
    (
        vec(select(vec!["a", "b", "etc", "bin"]), 1..3),
        prop_oneof![
            3 => vec(any::<u8>(), 0..32).prop_map(Kind::File),
            1 => Just(Kind::Dir),
        ],
    )
        .prop_map(|(parts, kind)| Entry {
            path: parts.join("/"),
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
            xattrs: Vec::new(),
            long_name: false,
        })
}

pub fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        6 => Just(Compression::None),
        2 => Just(Compression::Gzip),
        2 => Just(Compression::Zstd),
    ]
}

/// Damage: mostly none.
fn damage() -> impl Strategy<Value = (Vec<(usize, u8)>, Option<usize>)> {
    prop_oneof![
        8 => Just((Vec::new(), None)),
        1 => (vec((any::<usize>(), any::<u8>()), 1..4), Just(None)),
        1 => (Just(Vec::new()), any::<usize>().prop_map(Some)),
    ]
}

/// One entry; or a link and then an entry below it (what a layer that tries to write
/// through a link looks like); or an entry and then a hardlink to it (rare by chance, both,
/// so made on purpose).
fn entry_group() -> impl Strategy<Value = Vec<Entry>> {
    prop_oneof![
        8 => entry().prop_map(|e| vec![e]),
        1 => (entry(), entry(), select(vec!["", "/", "./"])).prop_map(|(first, mut link, prefix)| {
            link.kind = Kind::Hardlink(Target::Named(format!("{prefix}{}", first.path)));
            vec![first, link]
        }),
        2 => (entry(), prop_oneof![3 => target().prop_map(Kind::Symlink), 1 => target().prop_map(Kind::Hardlink)], entry(), component())
            .prop_map(|(mut link, kind, mut below, name)| {
                link.kind = kind;
                below.path = format!("{}/{name}", link.path.trim_end_matches('/'));
                vec![link, below]
            }),
    ]
}

/// A layer of up to `max_entries` entries (groups of them).
pub fn layer(max_entries: usize) -> impl Strategy<Value = Layer> {
    (vec(entry_group(), 0..=max_entries), damage(), compression()).prop_map(
        |(groups, (corruption, truncate), compression)| Layer {
            entries: groups.into_iter().flatten().collect(),
            corruption,
            truncate,
            compression,
        },
    )
}

/// The root filesystem of the images the API targets import: an /etc/passwd and /etc/group
/// with a user `fuzz` (1000) for `User` fields, and an /bin/sh to exec.
pub fn image_rootfs() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in [
        (
            "etc/passwd",
            &b"root:x:0:0::/root:/bin/sh\nfuzz:x:1000:1000::/home:/bin/sh\n"[..],
        ),
        ("etc/group", &b"root:x:0:\nfuzz:x:1000:\n"[..]),
        ("bin/sh", &b"#!"[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        let _ = b.append_data(&mut h, path, data);
    }
    b.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pax record's length counts its own digits: 9 + 1 digit is 10, which has 2.
    #[test]
    fn pax_records_count_their_own_length() {
        for value_len in 0..200 {
            let r = pax_record("k", &vec![b'v'; value_len]);
            let text = String::from_utf8(r.clone()).expect("utf8");
            let (len, _) = text.split_once(' ').expect("space");
            assert_eq!(len.parse::<usize>().expect("len"), r.len(), "{text:?}");
        }
    }

    /// What the generator writes, the tar crate reads back: names, kinds, contents.
    #[test]
    fn archives_read_back() {
        let entries = vec![
            Entry {
                path: "a/b".into(),
                kind: Kind::File(b"hi".to_vec()),
                mode: 0o644,
                uid: 1 << 40,
                gid: 0,
                mtime: 0,
                xattrs: vec![("user.x".into(), b"1".to_vec())],
                long_name: true,
            },
            Entry {
                path: "L".repeat(150),
                kind: Kind::Symlink(Target::Named("T".repeat(150))),
                mode: 0o777,
                uid: 0,
                gid: 0,
                mtime: 0,
                xattrs: Vec::new(),
                long_name: false,
            },
        ];
        let bytes = archive(&entries, Path::new("/x"));
        let mut a = tar::Archive::new(bytes.as_slice());
        let mut read = Vec::new();
        for e in a.entries().expect("entries") {
            let mut e = e.expect("entry");
            let path = e.path().expect("path").display().to_string();
            let link = e
                .link_name()
                .expect("link")
                .map(|l| l.display().to_string());
            let uid = e.header().uid().expect("uid");
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).expect("data");
            read.push((path, link, uid, data));
        }
        assert_eq!(
            read,
            vec![
                ("a/b".to_string(), None, 1 << 40, b"hi".to_vec()),
                ("L".repeat(150), Some("T".repeat(150)), 0, Vec::new()),
            ]
        );
    }
}
