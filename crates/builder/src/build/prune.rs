//! `docker builder prune`: which cache entries go, as BuildKit's prune picks its records
//! (moby hands the filters and space limits to BuildKit): the entries that match every
//! filter and were last used before `until`, oldest first, until the cache fits the space
//! it may keep.

use std::time::SystemTime;

use regex::Regex;

use super::cache::Entry;

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

    /// Whether an entry passes the filters (a step's entry is in use by no build, shared
    /// with nothing, private).
    fn matches(&self, e: &Entry) -> bool {
        let equal = |want: &Option<String>, have: Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        let flag = |want: Option<bool>, have: bool| want.is_none_or(|w| w == have);
        self.id.as_ref().is_none_or(|re| re.is_match(&e.key))
            && equal(&self.parent, e.parent.as_ref().map(ToString::to_string))
            && equal(&self.kind, Some(Entry::KIND.to_string()))
            && equal(&self.description, Some(e.description()))
            && flag(self.in_use, false)
            && flag(self.shared, false)
            && flag(self.private, true)
            && self.before.is_none_or(|b| e.created.is_some_and(|c| c < b))
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

    /// The keys of the entries to drop, oldest first. `free`: the disk's free bytes.
    pub fn select(&self, entries: &[Entry], free: u64) -> Vec<String> {
        let mut candidates: Vec<&Entry> = entries.iter().filter(|e| self.matches(e)).collect();
        candidates.sort_by_key(|e| e.created);
        let limited = self.reserved_space > 0 || self.max_used_space > 0 || self.min_free_space > 0;
        if !limited {
            return candidates.into_iter().map(|e| e.key.clone()).collect();
        }
        let mut used: u64 = entries.iter().map(|e| e.size).sum();
        let keep = self.keep_bytes(used, free);
        let mut out = Vec::new();
        for e in candidates {
            if used <= keep {
                break;
            }
            used = used.saturating_sub(e.size);
            out.push(e.key.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::Digest;
    use std::time::Duration;

    fn entry(key: &str, size: u64, age_secs: u64) -> Entry {
        Entry {
            key: key.into(),
            image: Digest::of(key.as_bytes()),
            parent: None,
            size,
            created: Some(SystemTime::now() - Duration::from_secs(age_secs)),
        }
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
