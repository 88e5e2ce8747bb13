//! A directory tree's size as moby's directory.Size counts it: the bytes of every entry that
//! is not a directory (symlinks by their own length), a file with several links once. Used
//! for writable layers, volumes and the builder's cache mounts.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes under `dir` (0 for one that cannot be read; unreadable entries are skipped).
pub fn bytes_under(dir: &Path) -> u64 {
    fn walk(dir: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut total = 0;
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                total += walk(&entry.path(), seen);
            } else if meta.nlink() < 2 || seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
        total
    }
    walk(dir, &mut HashSet::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_count_once_and_links_by_their_length() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("v");
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::fs::write(root.join("a/b/f"), b"1234").expect("write");
        std::fs::hard_link(root.join("a/b/f"), root.join("g")).expect("link");
        std::os::unix::fs::symlink("/etc", root.join("a/etc")).expect("symlink");
        assert_eq!(bytes_under(&root), 4 + "/etc".len() as u64);
        assert_eq!(bytes_under(&dir.path().join("missing")), 0);
    }
}
