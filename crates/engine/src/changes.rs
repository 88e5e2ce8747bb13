//! `--change` instructions of `docker import` (and later `commit`): a Dockerfile line each,
//! applied to an image config's `config` object.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

fn invalid(line: &str, why: &str) -> Error {
    Error::InvalidArgument(format!("invalid change {line:?}: {why}"))
}

/// `["a", "b"]` as given, or the shell form wrapped in `/bin/sh -c`.
fn command(args: &str) -> Value {
    match serde_json::from_str::<Vec<String>>(args) {
        Ok(list) => json!(list),
        Err(_) => json!(["/bin/sh", "-c", args]),
    }
}

/// `k=v k2="v 2"` or the legacy `k v`.
fn pairs(line: &str, args: &str) -> Result<Vec<(String, String)>> {
    if !args.contains('=') {
        let (k, v) = args
            .split_once(char::is_whitespace)
            .ok_or_else(|| invalid(line, "needs a key and a value"))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    let mut rest = args.trim();
    while !rest.is_empty() {
        let (k, after) = rest
            .split_once('=')
            .ok_or_else(|| invalid(line, "expected key=value"))?;
        let (v, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| invalid(line, "unterminated quote"))?;
            (quoted[..end].to_string(), &quoted[end + 1..])
        } else {
            match after.split_once(char::is_whitespace) {
                Some((v, n)) => (v.to_string(), n),
                None => (after.to_string(), ""),
            }
        };
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Err(invalid(line, "bad key"));
        }
        out.push((k.to_string(), v));
        rest = next.trim_start();
    }
    Ok(out)
}

/// Apply each change line to `config` (the image config's `config` object).
pub fn apply_changes(config: &mut Map<String, Value>, changes: &[String]) -> Result<()> {
    for line in changes {
        let line = line.trim();
        let (instr, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let args = args.trim();
        if args.is_empty() {
            return Err(invalid(line, "missing arguments"));
        }
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => {
                config.insert("Cmd".into(), command(args));
            }
            "ENTRYPOINT" => {
                config.insert("Entrypoint".into(), command(args));
            }
            "WORKDIR" => {
                config.insert("WorkingDir".into(), json!(args));
            }
            "USER" => {
                config.insert("User".into(), json!(args));
            }
            "STOPSIGNAL" => {
                config.insert("StopSignal".into(), json!(args));
            }
            "ENV" => {
                let env = config.entry("Env").or_insert_with(|| json!([]));
                let list = env.as_array_mut().ok_or_else(|| invalid(line, "Env is not a list"))?;
                for (k, v) in pairs(line, args)? {
                    list.retain(|e| e.as_str().is_none_or(|s| s.split_once('=').map(|p| p.0) != Some(k.as_str())));
                    list.push(json!(format!("{k}={v}")));
                }
            }
            "LABEL" => {
                let labels = config.entry("Labels").or_insert_with(|| json!({}));
                let map = labels.as_object_mut().ok_or_else(|| invalid(line, "Labels is not a map"))?;
                for (k, v) in pairs(line, args)? {
                    map.insert(k, json!(v));
                }
            }
            "EXPOSE" => {
                let ports = config.entry("ExposedPorts").or_insert_with(|| json!({}));
                let map = ports.as_object_mut().ok_or_else(|| invalid(line, "ExposedPorts is not a map"))?;
                for p in args.split_whitespace() {
                    let p = if p.contains('/') { p.to_string() } else { format!("{p}/tcp") };
                    map.insert(p, json!({}));
                }
            }
            "VOLUME" => {
                let vols = config.entry("Volumes").or_insert_with(|| json!({}));
                let map = vols.as_object_mut().ok_or_else(|| invalid(line, "Volumes is not a map"))?;
                let list = serde_json::from_str::<Vec<String>>(args)
                    .unwrap_or_else(|_| args.split_whitespace().map(String::from).collect());
                for v in list {
                    map.insert(v, json!({}));
                }
            }
            other => {
                return Err(invalid(
                    line,
                    &format!("{other} is not supported (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR are)"),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_forms() {
        let mut c = Map::new();
        apply_changes(
            &mut c,
            &[
                "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]".into(),
                "ENTRYPOINT /bin/run".into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV C 3".into(),
                "ENV A=9".into(),
                "WORKDIR /srv".into(),
                "USER 1000:1000".into(),
                "EXPOSE 80 53/udp".into(),
                "LABEL org.x=y".into(),
            ],
        )
        .expect("changes");
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/bin/run"]));
        assert_eq!(c["Env"], json!(["B=two words", "C=3", "A=9"]));
        assert_eq!(c["WorkingDir"], "/srv");
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"], json!({"org.x": "y"}));
        assert!(apply_changes(&mut c, &["RUN make".into()]).is_err());
        assert!(apply_changes(&mut c, &["CMD".into()]).is_err());
    }
}
