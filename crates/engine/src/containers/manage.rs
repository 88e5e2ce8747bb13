//! pause/unpause, rename, top and prune.

use serde_json::Value;

use super::{ContainerRecord, Status};
use crate::error::{Error, Result};
use crate::filters::Filters;
use crate::Engine;

pub(crate) fn not_running(r: &ContainerRecord) -> Error {
    if r.state.restarting {
        return Error::Conflict(format!(
            "Container {} is restarting, wait until the container is running",
            r.id
        ));
    }
    Error::Conflict(format!("Container {} is not running", r.id))
}

/// The processes of a container as `ps` shows them: the column titles and the rows.
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

impl Engine {
    /// `docker pause`: freeze every process (the runtime's cgroup freezer).
    pub fn pause_container(&self, name: &str) -> Result<()> {
        let r = self.containers.resolve(name)?;
        if r.state.status != Status::Running {
            return Err(not_running(&r));
        }
        if r.state.paused {
            return Err(Error::Conflict(format!(
                "Container {} is already paused",
                r.id
            )));
        }
        self.runtime(&r, &["pause", &r.id])?;
        // No probes into a frozen container (moby stops them, and so the status).
        self.containers.health_stopped(&r.id);
        self.containers.update(&r.id, |r| r.state.paused = true)?;
        self.containers.event(&r.id, "pause", &[]);
        Ok(())
    }

    /// `docker unpause`.
    pub fn unpause_container(&self, name: &str) -> Result<()> {
        let r = self.containers.resolve(name)?;
        if !r.state.paused || r.state.status != Status::Running {
            return Err(Error::Conflict(format!("Container {} is not paused", r.id)));
        }
        self.runtime(&r, &["resume", &r.id])?;
        self.containers.update(&r.id, |r| r.state.paused = false)?;
        self.containers.health_resumed(&r.id);
        self.containers.event(&r.id, "unpause", &[]);
        Ok(())
    }

    /// `docker rename`.
    pub fn rename_container(&self, name: &str, new_name: &str) -> Result<()> {
        let r = self.containers.resolve(name)?;
        self.containers.rename(&r.id, new_name)?;
        self.containers
            .event(&r.id, "rename", &[("oldName", format!("/{}", r.name))]);
        Ok(())
    }

    /// The size of a container's writable layer.
    pub fn container_size(&self, id: &str) -> u64 {
        berth_image::dir_size::bytes_under(&self.containers.dir(id).join("upper"))
    }

    /// `docker top`: the host's `ps` (with `ps_args`, `-ef` by default), rows of the
    /// container's processes only, found by the PID column, as Docker does.
    pub fn top_container(&self, name: &str, ps_args: &str) -> Result<Top> {
        let r = self.containers.resolve(name)?;
        if r.state.status != Status::Running {
            return Err(not_running(&r));
        }
        let listed = self.runtime(&r, &["ps", "--format", "json", &r.id])?;
        let pids: Vec<i64> = serde_json::from_slice::<Value>(&listed)
            .ok()
            .and_then(|v| {
                v.as_array()
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
            })
            .unwrap_or_default();
        let args: Vec<&str> = if ps_args.trim().is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let out = std::process::Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| Error::Io(format!("run ps: {e}")))?;
        if !out.status.success() {
            return Err(Error::InvalidArgument(format!(
                "ps {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// `docker container prune`: every container not running that the filters (`until`,
    /// `label`) select; the ids removed and the bytes their writable layers held.
    pub fn prune_containers(&self, filters: &Filters) -> Result<(Vec<String>, u64)> {
        let until = filters
            .get("until")
            .first()
            .map(|u| crate::images::parse_until(u))
            .transpose()?;
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for r in self.containers.list() {
            // A restarting container counts as running, as in moby.
            if r.state.status == Status::Running || r.state.restarting {
                continue;
            }
            if until.is_some_and(|t| crate::images::unix_time(Some(&r.created)) >= t) {
                continue;
            }
            if !filters.labels_match(&r.config.labels.clone().unwrap_or_default()) {
                continue;
            }
            let size = self.container_size(&r.id);
            self.remove_container(&r.id, false)?;
            reclaimed += size;
            removed.push(r.id);
        }
        Ok((removed, reclaimed))
    }
}

/// `ps` output: the header's titles, and the rows whose PID is one of `pids`. The last
/// column (the command) may contain spaces.
fn parse_ps(text: &str, pids: &[i64]) -> Result<Top> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let titles: Vec<String> = header.split_whitespace().map(String::from).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::InvalidArgument("Couldn't find PID field in ps output".into()))?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i64>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|f| f.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        processes.push(row);
    }
    Ok(Top { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_are_filtered_by_pid_and_keep_the_command_whole() {
        let text = "UID PID PPID C STIME TTY TIME CMD\n\
                    root 1 0 0 10:00 ? 00:00:01 /sbin/init splash\n\
                    root 42 1 0 10:01 ? 00:00:00 sleep 1000 now\n";
        let top = parse_ps(text, &[42]).expect("parse");
        assert_eq!(top.titles.len(), 8);
        assert_eq!(top.processes.len(), 1);
        assert_eq!(top.processes[0][1], "42");
        assert_eq!(top.processes[0][7], "sleep 1000 now");
        assert!(parse_ps("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
