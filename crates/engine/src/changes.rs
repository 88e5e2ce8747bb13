//! `--change` instructions of `docker import` (and later `commit`): a Dockerfile line each,
//! applied to an image config's `config` object.

use berth_image::{DockerOCIImageConfig, HealthcheckConfig as HealthConfig};

use crate::containers::health::parse_go_duration;
use crate::error::{Error, Result};

fn invalid(line: &str, why: &str) -> Error {
    Error::InvalidArgument(format!("invalid change {line:?}: {why}"))
}

/// `["a", "b"]` as given, or the shell form wrapped in `/bin/sh -c`.
fn command(args: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(args)
        .unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), args.into()])
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

/// `HEALTHCHECK [--interval=D --timeout=D --start-period=D --start-interval=D --retries=N]
/// CMD command` or `HEALTHCHECK NONE`, as the Dockerfile parser reads them (its messages).
fn healthcheck(args: &str) -> std::result::Result<HealthConfig, String> {
    let mut check = HealthConfig::default();
    let mut rest = args.trim_start();
    while let Some(flag) = rest.strip_prefix("--") {
        let (flag, after) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        rest = after.trim_start();
        let (name, value) = flag
            .split_once('=')
            .ok_or_else(|| format!("Missing a value on flag: --{flag}"))?;
        let duration = |value: &str| -> std::result::Result<i64, String> {
            let d = parse_go_duration(value)?;
            if d != 0 && d < 1_000_000 {
                return Err(format!("Interval \"{name}\" cannot be less than 1ms"));
            }
            Ok(d)
        };
        match name {
            "interval" => check.interval = duration(value)?,
            "timeout" => check.timeout = duration(value)?,
            "start-period" => check.start_period = duration(value)?,
            "start-interval" => check.start_interval = duration(value)?,
            "retries" => {
                let n: i32 = value.parse().map_err(|_| {
                    format!("strconv.ParseInt: parsing \"{value}\": invalid syntax")
                })?;
                if n < 0 {
                    return Err(format!("--retries cannot be negative ({n})"));
                }
                check.retries = i64::from(n);
            }
            other => return Err(format!("Unknown flag: {other}")),
        }
    }
    let (kind, command) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let command = command.trim();
    match kind.to_ascii_uppercase().as_str() {
        "NONE" if command.is_empty() => Ok(HealthConfig {
            test: vec!["NONE".into()],
            ..HealthConfig::default()
        }),
        "NONE" => Err("HEALTHCHECK NONE takes no arguments".into()),
        "CMD" => {
            check.test = match serde_json::from_str::<Vec<String>>(command) {
                Ok(list) if list.is_empty() => Vec::new(),
                Ok(list) => std::iter::once("CMD".to_string()).chain(list).collect(),
                Err(_) if command.is_empty() => Vec::new(),
                Err(_) => vec!["CMD-SHELL".into(), command.to_string()],
            };
            if check.test.is_empty() {
                return Err("Missing command after HEALTHCHECK CMD".into());
            }
            Ok(check)
        }
        other => Err(format!("Unknown type \"{other}\" in HEALTHCHECK (try CMD)")),
    }
}

/// Apply each change line to `config` (the image config's `config` object).
pub fn apply_changes(config: &mut DockerOCIImageConfig, changes: &[String]) -> Result<()> {
    for line in changes {
        let line = line.trim();
        let (instr, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let args = args.trim();
        if args.is_empty() {
            return Err(invalid(line, "missing arguments"));
        }
        let oci = &mut config.oci;
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => {
                oci.set_cmd(Some(command(args)));
            }
            "ENTRYPOINT" => {
                oci.set_entrypoint(Some(command(args)));
            }
            "WORKDIR" => {
                oci.set_working_dir(Some(args.into()));
            }
            "USER" => {
                oci.set_user(Some(args.into()));
            }
            "STOPSIGNAL" => {
                oci.set_stop_signal(Some(args.into()));
            }
            "ENV" => {
                let mut env = oci.env().clone().unwrap_or_default();
                for (k, v) in pairs(line, args)? {
                    env.retain(|e| e.split_once('=').map(|p| p.0) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
                oci.set_env(Some(env));
            }
            "LABEL" => {
                let pairs = pairs(line, args)?;
                oci.labels_mut().get_or_insert_with(Default::default).extend(pairs);
            }
            "EXPOSE" => {
                config.expose(args.split_whitespace().map(|p| {
                    if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    }
                }));
            }
            "VOLUME" => {
                let list = serde_json::from_str::<Vec<String>>(args)
                    .unwrap_or_else(|_| args.split_whitespace().map(String::from).collect());
                config.add_volumes(list);
            }
            "HEALTHCHECK" => {
                let check = healthcheck(args).map_err(|why| invalid(line, &why))?;
                config.healthcheck = Some(check);
            }
            other => {
                return Err(invalid(
                    line,
                    &format!("{other} is not supported (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR are)"),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dockerfile_forms() {
        let mut config = DockerOCIImageConfig::default();
        let c = &mut config;
        apply_changes(
            c,
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
        let v = serde_json::to_value(&*c).expect("config");
        assert_eq!(v["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(v["Entrypoint"], json!(["/bin/sh", "-c", "/bin/run"]));
        assert_eq!(v["Env"], json!(["B=two words", "C=3", "A=9"]));
        assert_eq!(v["WorkingDir"], "/srv");
        assert_eq!(v["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(v["Labels"], json!({"org.x": "y"}));
        assert!(apply_changes(c, &["RUN make".into()]).is_err());
        apply_changes(
            c,
            &["HEALTHCHECK --interval=100ms --retries=2 CMD curl -f http://x/ || exit 1".into()],
        )
        .expect("healthcheck");
        assert_eq!(
            serde_json::to_value(&c.healthcheck).expect("check"),
            json!({"Test": ["CMD-SHELL", "curl -f http://x/ || exit 1"], "Interval": 100_000_000, "Retries": 2})
        );
        apply_changes(c, &["healthcheck cmd [\"/bin/check\", \"-q\"]".into()]).expect("json form");
        assert_eq!(
            serde_json::to_value(&c.healthcheck).expect("check"),
            json!({"Test": ["CMD", "/bin/check", "-q"]})
        );
        apply_changes(c, &["HEALTHCHECK NONE".into()]).expect("none");
        assert_eq!(
            serde_json::to_value(&c.healthcheck).expect("check"),
            json!({"Test": ["NONE"]})
        );
        for (bad, why) in [
            (
                "HEALTHCHECK --interval=10us CMD true",
                "Interval \"interval\" cannot be less than 1ms",
            ),
            (
                "HEALTHCHECK --retries=-1 CMD true",
                "--retries cannot be negative (-1)",
            ),
            ("HEALTHCHECK --bogus=1 CMD true", "Unknown flag: bogus"),
            (
                "HEALTHCHECK --timeout CMD true",
                "Missing a value on flag: --timeout",
            ),
            ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
            ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
            (
                "HEALTHCHECK RUN true",
                "Unknown type \"RUN\" in HEALTHCHECK (try CMD)",
            ),
            ("HEALTHCHECK --interval=5 CMD true", "missing unit"),
        ] {
            let err = apply_changes(c, &[bad.into()]).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(apply_changes(c, &["CMD".into()]).is_err());
    }
}
