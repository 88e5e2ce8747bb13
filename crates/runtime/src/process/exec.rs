//! Finding the program in the container's PATH and executing it.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;

use crate::error::{Error, Result};

/// The resolved program, its argv and its environment.
pub(crate) struct ExecPlan {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
}

fn cstring(s: &[u8], what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::config(format!("{what} contains a NUL byte")))
}

impl ExecPlan {
    /// Resolve args[0] in the container (after pivot_root) and build the environment.
    /// `extra_env` is added (LISTEN_FDS and friends); HOME is filled in as runc does.
    pub fn new(process: &Process, extra_env: &[String]) -> Result<Self> {
        let args = process.args().as_deref().unwrap_or_default();
        let first = args
            .first()
            .ok_or_else(|| Error::config("process.args must not be empty"))?;
        let mut env: Vec<String> = process.env().clone().unwrap_or_default();
        env.extend(extra_env.iter().cloned());
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={}", home_of(process.user().uid())));
        }
        let path = lookup(first, &env)?;
        Ok(ExecPlan {
            path: cstring(path.as_os_str().as_bytes(), "program path")?,
            args: args
                .iter()
                .map(|a| cstring(a.as_bytes(), "process.args"))
                .collect::<Result<_>>()?,
            env: env
                .iter()
                .map(|e| cstring(e.as_bytes(), "process.env"))
                .collect::<Result<_>>()?,
        })
    }

    /// Replace this process with the user's program. Returns only on failure.
    pub fn exec(&self) -> Error {
        match nix::unistd::execve(&self.path, &self.args, &self.env) {
            Ok(never) => match never {},
            Err(e) => Error::sys(format!("exec {:?}", self.path), e),
        }
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Like execvp: a name with a slash is used as is, otherwise searched in the PATH of the
/// container's environment (not ours).
fn lookup(name: &str, env: &[String]) -> Result<PathBuf> {
    if name.contains('/') {
        return if is_executable(Path::new(name)) {
            Ok(PathBuf::from(name))
        } else {
            Err(Error::Init(format!(
                "exec: {name:?}: no such executable file in the container"
            )))
        };
    }
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("");
    path_var
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            Error::Init(format!(
                "exec: {name:?}: executable file not found in $PATH"
            ))
        })
}

/// The home directory of `uid` from the container's /etc/passwd, "/" if none.
fn home_of(uid: u32) -> String {
    crate::passwd::by_uid(Path::new("/etc/passwd"), uid)
        .map(|e| e.home)
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_uses_the_given_path_only() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(lookup("sh", &env).is_ok());
        let err = lookup("sh", &["PATH=/nonexistent".to_string()]).expect_err("not found");
        assert!(err.to_string().contains("not found in $PATH"));
        assert!(lookup("sh", &[]).is_err());
        assert!(lookup("/no/such/bin", &env).is_err());
    }
}
