//! `docker builder prune`: which cache records go, as BuildKit's prune picks its records
//! (moby hands the filters and space limits to BuildKit): the records no build holds that
//! match every filter and were last used before `until`, oldest first, until the cache fits
//! the space it may keep. The records are the steps' cache entries and the directories of
//! `RUN --mount=type=cache`.

use std::time::SystemTime;

use regex::Regex;

use super::cache::Entry;

/// One record of the build cache, as `system df -v` lists it and the filters see it.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    /// BuildKit's record type: `regular` (a step), `exec.cachemount`.
    pub kind: &'static str,
    pub description: String,
    pub parent: Option<String>,
    pub size: u64,
    /// When it was last used.
    pub created: Option<SystemTime>,
    /// A running build holds it: never pruned.
    pub in_use: bool,
}

impl Record {
    /// A RUN --mount=type=cache directory.
    pub const CACHE_MOUNT: &'static str = "exec.cachemount";

    /// A step's cache entry.
    pub fn of_step(e: &Entry) -> Record {
        Record {
            id: e.key.clone(),
            kind: Entry::KIND,
            description: e.description(),
            parent: e.parent.as_ref().map(ToString::to_string),
            size: e.size,
            created: e.created,
            in_use: false,
        }
    }
}

/// What `POST /build/prune` asks.
#[derive(Debug, Default)]
pub struct PruneOptions {
    /// Only entries last used before this (`until`, `unused-for`).
    pub before: Option<SystemTime>,
    /// The cache record fields (`id` is a regular expression, the others equal).
    pub id: Option<Regex>,
    pub parent: Option<String>,
    pub kind: Option<String>,
    pub description: Option<String>,
    pub in_use: Option<bool>,
    pub shared: Option<bool>,
    pub private: Option<bool>,
    /// Bytes the cache keeps whatever the other limits say (`reserved-space`, formerly
    /// `keep-storage`).
    pub reserved_space: u64,
    /// The most the cache may use (`max-used-space`).
    pub max_used_space: u64,
    /// Free space to leave on the disk (`min-free-space`).
    pub min_free_space: u64,
}

impl PruneOptions {
    /// Nothing narrows the prune: every entry goes, and the cache's files with them.
    pub fn takes_everything(&self) -> bool {
        self.before.is_none()
            && self.id.is_none()
            && self.parent.is_none()
            && self.kind.is_none()
            && self.description.is_none()
            && self.in_use.is_none()
            && self.shared.is_none()
            && self.private.is_none()
            && self.reserved_space == 0
            && self.max_used_space == 0
            && self.min_free_space == 0
    }

    /// Whether a record passes the filters (no record is shared: each is private).
    fn matches(&self, r: &Record) -> bool {
        let equal = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        let flag = |want: Option<bool>, have: bool| want.is_none_or(|w| w == have);
        self.id.as_ref().is_none_or(|re| re.is_match(&r.id))
            && equal(&self.parent, r.parent.as_deref())
            && equal(&self.kind, Some(r.kind))
            && equal(&self.description, Some(&r.description))
            && flag(self.in_use, r.in_use)
            && flag(self.shared, false)
            && flag(self.private, true)
            && self.before.is_none_or(|b| r.created.is_some_and(|c| c < b))
    }

    /// The bytes the cache may keep (BuildKit's rule: the most it may use, lowered so the
    /// disk keeps `min_free_space` free, never below `reserved_space`; with neither limit,
    /// the reserved space alone). `used`: the cache's bytes; `free`: the disk's free bytes.
    fn keep_bytes(&self, used: u64, free: u64) -> u64 {
        if self.max_used_space == 0 && self.min_free_space == 0 {
            return self.reserved_space;
        }
        let mut keep = match self.max_used_space {
            0 => u64::MAX,
            max => max,
        };
        if self.min_free_space > 0 {
            keep = keep.min((used + free).saturating_sub(self.min_free_space));
        }
        keep.max(self.reserved_space)
    }

    /// The ids of the records to drop, oldest first (never one in use). `free`: the disk's
    /// free bytes.
    pub fn select(&self, records: &[Record], free: u64) -> Vec<String> {
        let mut candidates: Vec<&Record> = records
            .iter()
            .filter(|r| !r.in_use && self.matches(r))
            .collect();
        candidates.sort_by_key(|r| r.created);
        let limited = self.reserved_space > 0 || self.max_used_space > 0 || self.min_free_space > 0;
        if !limited {
            return candidates.into_iter().map(|r| r.id.clone()).collect();
        }
        let mut used: u64 = records.iter().map(|r| r.size).sum();
        let keep = self.keep_bytes(used, free);
        let mut out = Vec::new();
        for r in candidates {
            if used <= keep {
                break;
            }
            used = used.saturating_sub(r.size);
            out.push(r.id.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::Digest;
    use std::time::Duration;

    fn entry(key: &str, size: u64, age_secs: u64) -> Record {
        Record::of_step(&Entry {
            key: key.into(),
            image: Digest::of(key.as_bytes()),
            parent: None,
            size,
            created: Some(SystemTime::now() - Duration::from_secs(age_secs)),
        })
    }

    #[test]
    fn filters_and_until_pick_the_entries() {
        let entries = [entry("aa1", 10, 7200), entry("bb2", 20, 60)];
        let all = PruneOptions::default();
        assert!(all.takes_everything());
        assert_eq!(all.select(&entries, 0), ["aa1", "bb2"]);
        let old = PruneOptions {
            before: Some(SystemTime::now() - Duration::from_secs(3600)),
            ..PruneOptions::default()
        };
        assert_eq!(old.select(&entries, 0), ["aa1"]);
        let by_id = PruneOptions {
            id: Regex::new("^bb").ok(),
            ..PruneOptions::default()
        };
        assert_eq!(by_id.select(&entries, 0), ["bb2"]);
        let shared = PruneOptions {
            shared: Some(true),
            ..PruneOptions::default()
        };
        assert!(shared.select(&entries, 0).is_empty());
        let kind = PruneOptions {
            kind: Some("regular".into()),
            private: Some(true),
            ..PruneOptions::default()
        };
        assert_eq!(kind.select(&entries, 0).len(), 2);
        // A cache mount a running build holds is never taken.
        let mut mounts = entries.to_vec();
        mounts[0].kind = Record::CACHE_MOUNT;
        mounts[1].kind = Record::CACHE_MOUNT;
        mounts[1].in_use = true;
        let of_mounts = PruneOptions {
            kind: Some(Record::CACHE_MOUNT.into()),
            ..PruneOptions::default()
        };
        assert_eq!(of_mounts.select(&mounts, 0), ["aa1"]);
    }

    #[test]
    fn space_limits_drop_the_oldest_until_the_cache_fits() {
        let entries = [
            entry("old", 10, 300),
            entry("mid", 20, 200),
            entry("new", 30, 100),
        ];
        let reserved = |n| PruneOptions {
            reserved_space: n,
            ..PruneOptions::default()
        };
        assert_eq!(reserved(50).select(&entries, 0), ["old"]);
        assert_eq!(reserved(30).select(&entries, 0), ["old", "mid"]);
        assert!(reserved(60).select(&entries, 0).is_empty());
        let max_used = PruneOptions {
            max_used_space: 35,
            reserved_space: 25,
            ..PruneOptions::default()
        };
        assert_eq!(max_used.select(&entries, 0), ["old", "mid"]);
        // 60 used + 40 free; 70 must stay free: the cache may keep 30.
        let min_free = PruneOptions {
            min_free_space: 70,
            ..PruneOptions::default()
        };
        assert_eq!(min_free.select(&entries, 40), ["old", "mid"]);
    }
}
