//! Sub-cgroups of a container's cgroup, for runc's `exec --cgroup [<controller>[,...]:]<path>`:
//! the exec'd process goes into an existing sub-cgroup instead of the container's own,
//! in every hierarchy (no controller given: the only argument allowed then) or in the
//! hierarchies of the controllers named.

use std::path::{Component, Path};

use crate::error::{Error, Result};
use crate::layout::{Hierarchy, Version};

/// Parsed `--cgroup` arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubCgroups {
    /// `<path>`: the same sub-cgroup in every hierarchy.
    all: Option<String>,
    /// `<controller>:<path>`, one entry per controller.
    by_controller: Vec<(String, String)>,
}

fn invalid(msg: String) -> Error {
    Error::SubCgroup(msg)
}

/// `path` made relative and lexically clean; None if it climbs above its start.
fn clean_relative(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(parts.join("/"))
}

impl SubCgroups {
    /// runc's rules: at most one ':', controllers separated by ',', and a path without a
    /// controller only as the single argument. A path may not leave the container's cgroup.
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut out = SubCgroups::default();
        for arg in args {
            let parts: Vec<&str> = arg.splitn(3, ':').collect();
            let (controllers, path) = match parts.as_slice() {
                [path] if args.len() == 1 => (None, *path),
                [_] => {
                    return Err(invalid(format!(
                        "invalid --cgroup argument: {arg} (missing <controller>: prefix)"
                    )))
                }
                [controllers, path] => (Some(*controllers), *path),
                _ => return Err(invalid(format!("invalid --cgroup argument: {arg}"))),
            };
            let clean = clean_relative(path)
                .ok_or_else(|| invalid(format!("{path} is not a sub cgroup path")))?;
            match controllers {
                None => out.all = Some(clean),
                Some(list) => {
                    for c in list.split(',') {
                        out.by_controller.push((c.to_string(), clean.clone()));
                    }
                }
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.by_controller.is_empty()
    }

    /// Check that every controller named is one of the container's hierarchies.
    pub(crate) fn check<'a>(&self, hierarchies: impl Iterator<Item = &'a Hierarchy>) -> Result<()> {
        let hierarchies: Vec<&Hierarchy> = hierarchies.collect();
        for (controller, _) in &self.by_controller {
            if !hierarchies.iter().any(|h| names(h, controller)) {
                return Err(invalid(format!(
                    "unknown controller {controller} in --cgroup"
                )));
            }
        }
        Ok(())
    }

    /// The sub-cgroup (relative to the container's cgroup) the process joins in `h`; ""
    /// for the container's own. Controllers sharing a hierarchy must agree.
    pub(crate) fn in_hierarchy(&self, h: &Hierarchy) -> Result<&str> {
        if let Some(all) = &self.all {
            return Ok(all);
        }
        let mut found: Option<&str> = None;
        for (controller, path) in &self.by_controller {
            if !names(h, controller) {
                continue;
            }
            match found {
                Some(other) if other != path => {
                    return Err(invalid(format!(
                        "--cgroup gives controllers of the same hierarchy ({}) different \
                         sub-cgroups: {other} and {path}",
                        h.controllers.join(",")
                    )))
                }
                _ => found = Some(path),
            }
        }
        Ok(found.unwrap_or(""))
    }
}

/// Whether `controller` (as runc names them: "memory", "cpu", "name=systemd"...) is one of
/// `h`'s. The v2 hierarchy has no per-controller paths of its own (runc's "" key), so it is
/// reached only by a path without a controller.
fn names(h: &Hierarchy, controller: &str) -> bool {
    h.version == Version::V1 && h.has(controller)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runcs_argument_rules() {
        let all = SubCgroups::parse(&args(&["sub/dir"])).expect("all");
        assert_eq!(all.all.as_deref(), Some("sub/dir"));
        let per = SubCgroups::parse(&args(&["memory,pids:m", "cpu:c"])).expect("per");
        assert_eq!(
            per.by_controller,
            [
                ("memory".to_string(), "m".to_string()),
                ("pids".to_string(), "m".to_string()),
                ("cpu".to_string(), "c".to_string())
            ]
        );
        for (bad, needle) in [
            (&["a", "b"][..], "missing <controller>: prefix"),
            (&["a:b:c"][..], "invalid --cgroup argument"),
            (&["../up"][..], "not a sub cgroup path"),
            (&["memory:x/../../up"][..], "not a sub cgroup path"),
        ] {
            let err = SubCgroups::parse(&args(bad)).expect_err("refused");
            assert!(err.to_string().contains(needle), "{bad:?}: {err}");
        }
        assert_eq!(
            SubCgroups::parse(&args(&["/a/./b/../c"]))
                .expect("clean")
                .all
                .as_deref(),
            Some("a/c")
        );
    }
}
