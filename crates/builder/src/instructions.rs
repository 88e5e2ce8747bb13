//! From parsed nodes to typed instructions grouped in stages, with BuildKit's checks
//! (frontend/dockerfile/instructions/parse.go): arity, flags each instruction takes, stage
//! names, and what may come before the first FROM. Arguments stay unexpanded: their
//! variables are known only while the build runs.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::parser::{Args, Dockerfile, Heredoc, Node};

/// RUN, CMD, ENTRYPOINT: exec form or a shell command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copy {
    pub add: bool,
    pub sources: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    pub checksum: Option<String>,
    /// ADD `--unpack`: false keeps a local archive as a file.
    pub unpack: Option<bool>,
    pub heredocs: Vec<Heredoc>,
}

/// HEALTHCHECK CMD with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u64>,
}

/// A RUN --mount, unparsed beyond its fields (`type=cache,target=/x`).
pub type MountSpec = HashMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Run {
        command: CommandLine,
        heredocs: Vec<Heredoc>,
        mounts: Vec<MountSpec>,
        network: Option<String>,
    },
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Expose(Vec<String>),
    Copy(Copy),
    Workdir(String),
    User(String),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Option<Health>),
    Shell(Vec<String>),
    /// The trigger as written (`RUN echo hi`), stored in the image's OnBuild.
    Onbuild(String),
    Maintainer(String),
}

/// An instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub node: Node,
    pub instruction: Instruction,
}

/// A FROM and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Lower-cased `AS` name.
    pub name: Option<String>,
    /// The base, unexpanded (`scratch`, an image, or an earlier stage's name).
    pub base: String,
    pub platform: Option<String>,
    pub from: Node,
    pub commands: Vec<Command>,
}

/// The build plan's input: the ARGs before the first FROM, then the stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
    /// Nodes total, for "Step N/M".
    pub steps: usize,
}

const INSTRUCTIONS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// Flags of an instruction: `--name=value` or a bare `--name` (true).
struct Flags {
    values: Vec<(String, Option<String>)>,
}

impl Flags {
    fn parse(node: &Node, allowed: &[&str]) -> std::result::Result<Flags, String> {
        let mut values = Vec::new();
        for f in &node.flags {
            let (name, value) = match f.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (f.clone(), None),
            };
            if !allowed.contains(&name.as_str()) {
                return Err(format!("unknown flag: {name}"));
            }
            values.push((name, value));
        }
        Ok(Flags { values })
    }

    /// A flag that takes a value; given twice is an error, as BFlags.
    fn string(&self, name: &str) -> std::result::Result<Option<String>, String> {
        let mut found = self.values.iter().filter(|(n, _)| n == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(format!("Duplicate flag specified: {name}"));
        }
        match first {
            None => Ok(None),
            Some((_, Some(v))) => Ok(Some(v.clone())),
            Some((_, None)) => Err(format!("Missing a value on flag: {name}")),
        }
    }

    fn strings(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    fn bool(&self, name: &str) -> std::result::Result<bool, String> {
        match self.values.iter().rev().find(|(n, _)| n == name) {
            None => Ok(false),
            Some((_, None)) => Ok(true),
            Some((_, Some(v))) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(format!("expecting boolean value for flag {name}, not: {v}")),
            },
        }
    }
}

/// Group `df`'s instructions into stages, checking each as BuildKit does.
pub fn plan(df: &Dockerfile, file: &str) -> Result<Plan> {
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &df.nodes {
        let at = |message: String| Error::Parse {
            file: file.to_string(),
            line: node.start_line,
            message,
        };
        if node.cmd == "from" {
            stages.push(from(node).map_err(at)?);
            continue;
        }
        let instruction = instruction(node).map_err(at)?;
        match stages.last_mut() {
            Some(stage) => stage.commands.push(Command {
                node: node.clone(),
                instruction,
            }),
            None => match instruction {
                Instruction::Arg(args) => global_args.extend(args),
                _ => return Err(at("no build stage in current context".into())),
            },
        }
    }
    if stages.is_empty() {
        return Err(Error::Parse {
            file: file.to_string(),
            line: df.nodes.last().map_or(1, |n| n.end_line.max(1)),
            message: if df.nodes.is_empty() {
                "the Dockerfile cannot be empty".into()
            } else {
                "no FROM instruction: a Dockerfile must begin with FROM (after ARGs)".into()
            },
        });
    }
    // Stage names are unique.
    for (i, s) in stages.iter().enumerate() {
        if let Some(name) = &s.name {
            if stages[..i].iter().any(|o| o.name.as_ref() == Some(name)) {
                return Err(Error::Parse {
                    file: file.to_string(),
                    line: s.from.start_line,
                    message: format!("duplicate stage name {name:?}"),
                });
            }
        }
    }
    Ok(Plan {
        global_args,
        stages,
        steps: df.nodes.len(),
    })
}

fn from(node: &Node) -> std::result::Result<Stage, String> {
    let flags = Flags::parse(node, &["platform"])?;
    let Args::Words(words) = &node.args else {
        return Err("FROM requires either one or three arguments".into());
    };
    let name = match words.as_slice() {
        [_] => None,
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let name = name.to_ascii_lowercase();
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid {
                return Err(format!("invalid name for build stage: {name:?}, name can't start with a number or contain symbols"));
            }
            Some(name)
        }
        [_, _, _] => return Err("second argument should be AS".into()),
        _ => return Err("FROM requires either one or three arguments".into()),
    };
    Ok(Stage {
        name,
        base: words[0].clone(),
        platform: flags.string("platform")?,
        from: node.clone(),
        commands: Vec::new(),
    })
}

fn command_line(args: &Args, what: &str) -> std::result::Result<CommandLine, String> {
    match args {
        Args::Json(v) => Ok(CommandLine::Exec(v.clone())),
        Args::Text(t) => Ok(CommandLine::Shell(t.clone())),
        Args::None => Err(format!("{what} requires at least one argument")),
        _ => Err(format!("{what}: bad arguments")),
    }
}

fn list(args: &Args) -> Vec<String> {
    match args {
        Args::Json(v) | Args::Words(v) => v.clone(),
        Args::Text(t) => vec![t.clone()],
        _ => Vec::new(),
    }
}

fn pairs(args: &Args) -> Vec<(String, String)> {
    match args {
        Args::Pairs(p) => p
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect(),
        _ => Vec::new(),
    }
}

fn text(args: &Args, what: &str) -> std::result::Result<String, String> {
    match args {
        Args::Text(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ => Err(format!("{what} requires exactly one argument")),
    }
}

fn duration(flags: &Flags, name: &str) -> std::result::Result<Option<Duration>, String> {
    let Some(v) = flags.string(name)? else {
        return Ok(None);
    };
    let d = parse_go_duration(&v).ok_or_else(|| format!("time: invalid duration {v:?}"))?;
    if d != Duration::ZERO && d < Duration::from_millis(1) {
        return Err(format!("Interval {name:?} cannot be less than 1ms"));
    }
    Ok(Some(d))
}

/// A Go duration (`30s`, `1m30s`, `1.5h`, `500ms`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

/// A RUN --mount value: comma-separated key=value (a bare key is `key=true`).
fn mount_spec(v: &str) -> std::result::Result<MountSpec, String> {
    let mut m = MountSpec::new();
    for field in v.split(',').filter(|f| !f.is_empty()) {
        let (k, val) = field.split_once('=').unwrap_or((field, "true"));
        let k = k.to_ascii_lowercase();
        let k = match k.as_str() {
            "dst" | "destination" => "target".to_string(),
            "src" => "source".to_string(),
            _ => k,
        };
        m.insert(k, val.to_string());
    }
    let kind = m
        .entry("type".into())
        .or_insert_with(|| "bind".into())
        .clone();
    if !matches!(kind.as_str(), "bind" | "cache" | "tmpfs" | "secret" | "ssh") {
        return Err(format!("unsupported mount type {kind:?}"));
    }
    if !m.contains_key("target") && !matches!(kind.as_str(), "secret" | "ssh") {
        return Err("mount target must be specified".into());
    }
    Ok(m)
}

/// The typed instruction of `node` (any but FROM).
pub fn instruction(node: &Node) -> std::result::Result<Instruction, String> {
    let upper = node.cmd.to_ascii_uppercase();
    let none: &[&str] = &[];
    let allowed: &[&str] = match node.cmd.as_str() {
        "run" => &["mount", "network", "security"],
        "copy" => &["from", "chown", "chmod", "link", "parents", "exclude"],
        "add" => &[
            "chown",
            "chmod",
            "link",
            "checksum",
            "keep-git-dir",
            "exclude",
            "unpack",
        ],
        "healthcheck" => &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
        c if INSTRUCTIONS.contains(&c) => none,
        other => {
            let hint = INSTRUCTIONS
                .iter()
                .find(|i| close(other, i))
                .map(|i| format!(" (did you mean {}?)", i.to_ascii_uppercase()))
                .unwrap_or_default();
            return Err(format!(
                "unknown instruction: {}{hint}",
                other.to_ascii_uppercase()
            ));
        }
    };
    let flags = Flags::parse(node, allowed)?;
    let args = &node.args;
    Ok(match node.cmd.as_str() {
        "run" => {
            let mounts = flags
                .strings("mount")
                .iter()
                .map(|m| mount_spec(m))
                .collect::<std::result::Result<_, _>>()?;
            let network = flags.string("network")?;
            if let Some(n) = &network {
                if !matches!(n.as_str(), "none" | "host" | "default") {
                    return Err(format!("unsupported network mode {n:?}"));
                }
            }
            if let Some(s) = flags.string("security")? {
                if s != "sandbox" {
                    return Err(format!(
                        "RUN --security={s} is not supported by berth (only sandbox)"
                    ));
                }
            }
            Instruction::Run {
                command: command_line(args, &upper)?,
                heredocs: node.heredocs.clone(),
                mounts,
                network,
            }
        }
        "cmd" => Instruction::Cmd(command_line(args, &upper)?),
        "entrypoint" => Instruction::Entrypoint(command_line(args, &upper)?),
        "env" | "label" => {
            let p = pairs(args);
            if p.is_empty() {
                return Err(format!("{upper} requires at least one argument"));
            }
            if p.iter().any(|(k, _)| k.is_empty()) {
                return Err(format!("{upper} names can not be blank"));
            }
            if node.cmd == "env" {
                Instruction::Env(p)
            } else {
                Instruction::Label(p)
            }
        }
        "arg" => match args {
            Args::Pairs(p) if !p.is_empty() => Instruction::Arg(p.clone()),
            _ => return Err("ARG requires at least one argument".into()),
        },
        "expose" => {
            let ports = list(args);
            if ports.is_empty() {
                return Err("EXPOSE requires at least one argument".into());
            }
            Instruction::Expose(ports)
        }
        "copy" | "add" => {
            let mut words = list(args);
            if words.is_empty() || (words.len() < 2 && node.heredocs.is_empty()) {
                return Err(format!("{upper} requires at least two arguments, but only one was provided. Destination could not be determined."));
            }
            let dest = words.pop().unwrap_or_default();
            let add = node.cmd == "add";
            Instruction::Copy(Copy {
                add,
                sources: words,
                dest,
                from: if add { None } else { flags.string("from")? },
                chown: flags.string("chown")?,
                chmod: flags.string("chmod")?,
                link: flags.bool("link")?,
                parents: if add { false } else { flags.bool("parents")? },
                exclude: flags.strings("exclude"),
                checksum: if add { flags.string("checksum")? } else { None },
                unpack: if add && flags.values.iter().any(|(n, _)| n == "unpack") {
                    Some(flags.bool("unpack")?)
                } else {
                    None
                },
                heredocs: node.heredocs.clone(),
            })
        }
        "workdir" => Instruction::Workdir(text(args, &upper)?),
        "user" => Instruction::User(text(args, &upper)?),
        "stopsignal" => Instruction::StopSignal(text(args, &upper)?),
        "maintainer" => Instruction::Maintainer(text(args, &upper)?),
        "volume" => {
            let v = list(args);
            if v.is_empty() || v.iter().any(|p| p.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            Instruction::Volume(v)
        }
        "shell" => match args {
            Args::Json(v) if !v.is_empty() => Instruction::Shell(v.clone()),
            _ => return Err("SHELL requires the arguments to be in JSON form".into()),
        },
        "healthcheck" => match args {
            Args::Health(None) => {
                if !node.flags.is_empty() {
                    return Err("HEALTHCHECK NONE takes no options".into());
                }
                Instruction::Healthcheck(None)
            }
            Args::Health(Some(cmd)) => {
                let test = match command_line(cmd, &upper)? {
                    CommandLine::Exec(v) => [vec!["CMD".to_string()], v].concat(),
                    CommandLine::Shell(s) => vec!["CMD-SHELL".to_string(), s],
                };
                let retries = match flags.string("retries")? {
                    None => None,
                    Some(r) => match r.parse::<i64>() {
                        Ok(n) if n >= 0 => Some(n as u64),
                        Ok(_) => return Err("--retries cannot be negative".into()),
                        Err(_) => {
                            return Err(format!("strconv.ParseInt: parsing {r:?}: invalid syntax"))
                        }
                    },
                };
                Instruction::Healthcheck(Some(Health {
                    test,
                    interval: duration(&flags, "interval")?,
                    timeout: duration(&flags, "timeout")?,
                    start_period: duration(&flags, "start-period")?,
                    start_interval: duration(&flags, "start-interval")?,
                    retries,
                }))
            }
            _ => return Err("HEALTHCHECK requires an argument".into()),
        },
        "onbuild" => match args {
            Args::Sub(child) => {
                // The trigger is checked now, so a bad one fails this build, not the child's.
                instruction(child)?;
                Instruction::Onbuild(child.original.clone())
            }
            _ => return Err("ONBUILD requires at least one argument".into()),
        },
        _ => return Err(format!("unknown instruction: {upper}")),
    })
}

/// One edit apart (BuildKit suggests the closest instruction).
fn close(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()] <= 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn plan_of(text: &str) -> Result<Plan> {
        plan(&parse(text, "Dockerfile")?, "Dockerfile")
    }

    #[test]
    fn stages_and_global_args() {
        let p = plan_of(
            "ARG V=1\nFROM busybox:${V} AS Build\nRUN x\nFROM build\nCOPY --from=build /a /b\n",
        )
        .expect("must succeed");
        assert_eq!(
            p.global_args,
            vec![("V".to_string(), Some("1".to_string()))]
        );
        assert_eq!(p.stages.len(), 2);
        assert_eq!(p.stages[0].name.as_deref(), Some("build"));
        assert_eq!(p.stages[0].base, "busybox:${V}");
        assert_eq!(p.stages[1].commands.len(), 1);
        let Instruction::Copy(c) = &p.stages[1].commands[0].instruction else {
            panic!("not a copy")
        };
        assert_eq!(c.from.as_deref(), Some("build"));
        assert_eq!(c.sources, vec!["/a".to_string()]);
        assert_eq!(c.dest, "/b");
    }

    #[test]
    fn errors_name_the_line() {
        let e = plan_of("FROM x\n\nRUNN echo\n").expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "Dockerfile:3: unknown instruction: RUNN (did you mean RUN?)"
        );
        let e = plan_of("RUN x\n").expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "Dockerfile:1: no build stage in current context"
        );
        let e = plan_of("FROM x\nCOPY --chmown=1 a b\n").expect_err("must fail");
        assert_eq!(e.to_string(), "Dockerfile:2: unknown flag: chmown");
        let e = plan_of("FROM x\nCOPY a\n").expect_err("must fail");
        assert!(e
            .to_string()
            .starts_with("Dockerfile:2: COPY requires at least two arguments"));
        let e = plan_of("FROM x y z\n").expect_err("must fail");
        assert!(
            e.to_string().contains("second argument should be AS"),
            "{e}"
        );
        let e = plan_of("FROM x AS 1a\n").expect_err("must fail");
        assert!(
            e.to_string().contains("invalid name for build stage"),
            "{e}"
        );
        let e = plan_of("FROM x AS a\nFROM y AS A\n").expect_err("must fail");
        assert!(e.to_string().contains("duplicate stage name"), "{e}");
        let e = plan_of("FROM x\nSHELL /bin/bash -c\n").expect_err("must fail");
        assert!(e.to_string().contains("JSON form"), "{e}");
        assert!(plan_of("")
            .expect_err("must fail")
            .to_string()
            .contains("cannot be empty"));
        let e = plan_of("FROM x\nRUN --mount=type=nfs,target=/x true\n").expect_err("must fail");
        assert!(e.to_string().contains("unsupported mount type"), "{e}");
    }

    #[test]
    fn instruction_forms() {
        let p = plan_of(
            "FROM x\nCMD [\"a\"]\nENTRYPOINT b c\nHEALTHCHECK --interval=1m30s --retries=2 CMD true\nONBUILD RUN echo hi\nCOPY <<EOF /f\nhi\nEOF\nRUN --mount=type=cache,dst=/c --network=none make\n",
        )
        .expect("must succeed");
        let i: Vec<&Instruction> = p.stages[0]
            .commands
            .iter()
            .map(|c| &c.instruction)
            .collect();
        assert_eq!(*i[0], Instruction::Cmd(CommandLine::Exec(vec!["a".into()])));
        assert_eq!(
            *i[1],
            Instruction::Entrypoint(CommandLine::Shell("b c".into()))
        );
        let Instruction::Healthcheck(Some(h)) = i[2] else {
            panic!()
        };
        assert_eq!(h.test, vec!["CMD-SHELL".to_string(), "true".to_string()]);
        assert_eq!(h.interval, Some(Duration::from_secs(90)));
        assert_eq!(h.retries, Some(2));
        assert_eq!(*i[3], Instruction::Onbuild("RUN echo hi".into()));
        let Instruction::Copy(c) = i[4] else { panic!() };
        assert!(c.sources == ["<<EOF"] && c.dest == "/f" && c.heredocs.len() == 1);
        let Instruction::Run {
            mounts, network, ..
        } = i[5]
        else {
            panic!()
        };
        assert_eq!(mounts[0]["target"], "/c");
        assert_eq!(network.as_deref(), Some("none"));
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("x"), None);
    }
}
