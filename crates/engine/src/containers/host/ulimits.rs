//! `--ulimit`: process.rlimits, with go-units' names and checks.

use serde_json::{json, Value};

use super::invalid;
use crate::containers::request::Ulimit;
use crate::error::Result;

/// The names go-units (and so the docker CLI and dockerd) know.
const NAMES: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// A limit as the kernel takes it: -1 is unlimited (RLIM_INFINITY), as in Docker.
fn limit(u: &Ulimit, value: i64) -> Result<u64> {
    match value {
        -1 => Ok(u64::MAX),
        v => u64::try_from(v).map_err(|_| {
            invalid(format!(
                "invalid ulimit {}: {v} is not a limit (-1 means unlimited)",
                u.name
            ))
        }),
    }
}

/// The OCI rlimits for `ulimits`.
pub fn rlimits(ulimits: &[Ulimit]) -> Result<Vec<Value>> {
    ulimits
        .iter()
        .map(|u| {
            if !NAMES.contains(&u.name.as_str()) {
                return Err(invalid(format!("invalid ulimit type: {}", u.name)));
            }
            let (soft, hard) = (limit(u, u.soft)?, limit(u, u.hard)?);
            if soft > hard {
                return Err(invalid(format!(
                    "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                    u.soft, u.hard
                )));
            }
            Ok(json!({
                "type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()),
                "soft": soft,
                "hard": hard,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulimit(name: &str, soft: i64, hard: i64) -> Ulimit {
        Ulimit {
            name: name.into(),
            soft,
            hard,
        }
    }

    #[test]
    fn names_limits_and_unlimited() {
        let r = rlimits(&[ulimit("nofile", 512, 1024), ulimit("core", -1, -1)]).expect("ok");
        assert_eq!(
            r[0],
            json!({"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024})
        );
        assert_eq!(r[1]["soft"], json!(u64::MAX));
        for bad in [
            ulimit("NOFILE", 1, 1),
            ulimit("bogus", 1, 1),
            ulimit("nofile", 10, 5),
            ulimit("nofile", -2, 5),
            ulimit("nofile", -1, 5),
        ] {
            assert!(rlimits(&[bad]).is_err());
        }
    }
}
