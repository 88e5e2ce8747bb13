//! berthd is a child subreaper: when a shim dies, its container's processes are reparented
//! to berthd (not to PID 1, which need not reap, as on some hosts), and berthd reaps them
//! once the runtime has killed them. The reaper takes only such orphans: zombies among
//! berthd's children that came from a container's pid namespace, or from a dead shim's
//! session. berthd's own children are left to whoever waits for them: the commands it runs
//! stay in its session, and a shim leads its own session from its first instruction.
//!
//! Shims that a restarted berthd adopts were the children of the berthd that started them:
//! when that one died they went to its nearest subreaper (or PID 1), and only that process
//! can reap them; the kernel gives no other a process it did not start.

use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// Orphans are also looked for this often, in case a SIGCHLD found the list changing.
const RESCAN: Duration = Duration::from_secs(10);

/// Become a subreaper and reap orphans on every SIGCHLD. Call inside the async runtime.
pub fn start() -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true).context("become a child subreaper")?;
    let me = Me::current().context("read berthd's own process status")?;
    let mut sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
        .context("install the SIGCHLD handler")?;
    // One task, so two scans never race to reap the same pid.
    tokio::spawn(async move {
        let mut rescan = tokio::time::interval(RESCAN);
        loop {
            tokio::select! {
                got = sigchld.recv() => if got.is_none() { return },
                _ = rescan.tick() => {}
            }
            let _ = tokio::task::spawn_blocking(move || reap_orphans(&me)).await;
        }
    });
    Ok(())
}

/// What tells berthd's own children from orphans.
#[derive(Debug, Clone, Copy)]
struct Me {
    pid: i32,
    session: i32,
    /// How many pid namespaces deep berthd is, as /proc shows it.
    depth: usize,
}

impl Me {
    fn current() -> Option<Me> {
        let pid = std::process::id() as i32;
        let stat = Stat::read(pid)?;
        Some(Me {
            pid,
            session: stat.session,
            depth: ns_depth(pid)?,
        })
    }
}

/// The fields of /proc/PID/stat the reaper needs.
struct Stat {
    state: char,
    session: i32,
}

impl Stat {
    fn read(pid: i32) -> Option<Stat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&text)
    }
}

/// `pid (comm) state ppid pgrp session ...`: the command name may hold spaces and
/// parentheses, so the fields are counted from the last ')'.
fn parse_stat(text: &str) -> Option<Stat> {
    let mut fields = text.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let session = fields.nth(2)?.parse().ok()?;
    Some(Stat { state, session })
}

/// How many pid namespaces `pid` is deep, from the NSpid line of its status.
fn ns_depth(pid: i32) -> Option<usize> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    Some(line.split_whitespace().count())
}

/// The children of berthd's main thread: the kernel gives reparented orphans to the first
/// live thread of their subreaper, its main thread (which only waits for the server).
fn children(me: &Me) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", me.pid))
        .map(|t| {
            t.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether child `pid` is an exited orphan that nobody in berthd waits for.
fn is_orphan_zombie(me: &Me, pid: i32) -> bool {
    let Some(stat) = Stat::read(pid) else {
        return false;
    };
    if stat.state != 'Z' {
        return false;
    }
    // From a container (berthd never starts a process in another pid namespace), or a
    // process of a dead shim (in the shim's session, not leading it).
    ns_depth(pid).is_some_and(|d| d > me.depth)
        || (stat.session != me.session && stat.session != pid)
}

/// Reap every orphan zombie among berthd's children; how many.
fn reap_orphans(me: &Me) -> usize {
    let mut reaped = 0;
    for pid in children(me) {
        if is_orphan_zombie(me, pid)
            && waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)).is_ok()
        {
            tracing::debug!(pid, "reaped an orphan");
            reaped += 1;
        }
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn stat_fields_are_found_after_the_command_name() {
        let stat = parse_stat("42 (a) b (c)) Z 1 42 17 0 -1").expect("parse");
        assert_eq!(stat.state, 'Z');
        assert_eq!(stat.session, 17);
    }

    fn zombie(pid: i32) -> bool {
        Stat::read(pid).is_some_and(|s| s.state == 'Z')
    }

    fn wait_until(f: impl Fn() -> bool) -> bool {
        (0..500).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            f()
        })
    }

    /// An orphan reparented to this (subreaper) process is reaped; children it started
    /// itself, in its session or leading their own (as shims do), are left to their waiters.
    #[test]
    fn reaps_orphans_and_leaves_its_own_children() {
        nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
        let me = Me::current().expect("me");
        let mut own = Command::new("true").spawn().expect("true");
        let mut leader = Command::new("true");
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            leader.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let mut leader = leader.spawn().expect("true");
        // A shim-like parent leading its own session starts a child and dies: the child
        // comes to this process, still in the dead parent's session.
        let mut parent = Command::new("sh");
        parent.args(["-c", "sleep 0.2 & echo $!"]);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            parent.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let out = parent.output().expect("sh");
        let orphan: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("pid");
        assert!(wait_until(|| zombie(orphan)), "the orphan did not end");
        assert!(wait_until(
            || zombie(own.id() as i32) && zombie(leader.id() as i32)
        ));
        assert!(is_orphan_zombie(&me, orphan));
        assert!(!is_orphan_zombie(&me, own.id() as i32));
        assert!(!is_orphan_zombie(&me, leader.id() as i32));
        assert!(
            children(&me).contains(&orphan),
            "reparented to the main thread"
        );
        reap_orphans(&me);
        assert!(Stat::read(orphan).is_none(), "the orphan was not reaped");
        assert!(own.wait().expect("own child").success());
        assert!(leader.wait().expect("session leader").success());
    }
}
