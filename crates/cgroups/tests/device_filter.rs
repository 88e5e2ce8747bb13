//! The cgroup v2 device filter, attached to a real cgroup2 directory (this host's unified
//! hierarchy holds no controllers, but device programs need none). Runs as root.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_cgroups::devices::{attach_filter, attached_filters, Access, DeviceKind, DeviceRule};
use berth_cgroups::Layout;

/// A fresh cgroup2 directory, removed on drop.
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn new(tag: &str) -> TestCgroup {
        let layout = Layout::detect().expect("layout");
        let v2 = layout.v2().expect("a cgroup2 mount");
        let dir = v2
            .mountpoint
            .join(format!("berth-test-{tag}-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("create cgroup");
        TestCgroup(dir)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn rule(allow: bool, kind: DeviceKind, major: Option<u32>, minor: Option<u32>) -> DeviceRule {
    DeviceRule {
        allow,
        kind,
        major,
        minor,
        access: Access::ALL,
    }
}

/// Run a shell that first moves itself into `cgroup`; its stdout.
fn probe_in(cgroup: &Path) -> String {
    let script = format!(
        "echo $$ > {}/cgroup.procs && head -c3 /dev/zero | wc -c; cat /dev/null 2>/dev/full && echo null-ok || echo null-denied",
        cgroup.display()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("sh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn denies_what_the_rules_deny_and_a_new_filter_replaces_the_old() {
    let cg = TestCgroup::new("devfilter");
    attach_filter(
        &cg.0,
        &[
            rule(false, DeviceKind::All, None, None),
            rule(true, DeviceKind::Char, Some(1), Some(5)),
            rule(true, DeviceKind::Char, Some(1), Some(7)),
        ],
    )
    .expect("attach");
    assert_eq!(attached_filters(&cg.0).expect("query"), 1);
    let out = probe_in(&cg.0);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["3", "null-denied"],
        "{out}"
    );

    attach_filter(&cg.0, &[rule(false, DeviceKind::Char, Some(1), Some(5))]).expect("replace");
    assert_eq!(
        attached_filters(&cg.0).expect("query"),
        1,
        "the old program was detached"
    );
    let out = probe_in(&cg.0);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "null-ok"],
        "{out}"
    );
}
