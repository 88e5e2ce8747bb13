//! Reading /etc/passwd directly, as runc does: no NSS, so a statically linked runtime
//! behaves the same, and inside a container it reads the image's file.

use std::path::Path;

/// One /etc/passwd entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub uid: u32,
    pub home: String,
}

/// The entry for `uid` in the passwd file at `path`, if any.
pub fn by_uid(path: &Path, uid: u32) -> Option<Entry> {
    let text = std::fs::read_to_string(path).ok()?;
    let found = parse(&text).find(|e| e.uid == uid);
    found
}

fn parse(text: &str) -> impl Iterator<Item = Entry> + '_ {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6).then_some(())?;
        Some(Entry {
            name: f[0].to_string(),
            uid: f[2].parse().ok()?,
            home: f[5].to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_skips_junk() {
        let text = "root:x:0:0:root:/root:/bin/sh\n# comment\nbad:line\nweb:x:33:33::/var/www:/bin/false\n";
        let all: Vec<Entry> = parse(text).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[1],
            Entry {
                name: "web".into(),
                uid: 33,
                home: "/var/www".into()
            }
        );
    }
}
