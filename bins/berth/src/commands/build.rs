//! `berth build`: the context as a tar (`.dockerignore` applied as the docker CLI applies
//! it; a Dockerfile from outside the context added under a private name), POST /build, and
//! a display of one line per step with its time and CACHED marks; a failed step's output
//! is printed with the error, and berth exits with the failed command's status.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use berth_api::client::{query, Client};
use berth_api_types::image::{Aux, JsonMessage};
use berth_builder::ignore::Ignore;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag (name:tag); may be given several times.
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// The Dockerfile (default: PATH/Dockerfile).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Build-time variables (KEY=VALUE, or KEY to take it from the environment).
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Metadata for the image (KEY=VALUE).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// The stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Print only the image ID.
    #[arg(short, long)]
    pub quiet: bool,
    /// Remove intermediate containers after a successful build.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub rm: bool,
    /// Always remove intermediate containers.
    #[arg(long)]
    pub force_rm: bool,
    /// The network of RUN steps: none (default) or host.
    #[arg(long)]
    pub network: Option<String>,
    /// Target platform (only the host's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Write the image ID to this file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// A secret for RUN --mount=type=secret: id=ID,src=FILE.
    #[arg(long)]
    pub secret: Vec<String>,
    /// Images to consider as cache sources.
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    #[command(flatten)]
    pub resources: StepResources,
    /// The context directory, or `-` for a tar on standard input.
    pub path: String,
}

/// What each RUN step's container gets (dockerd's legacy builder's options).
#[derive(clap::Args, Debug)]
pub struct StepResources {
    /// Always pull the base images, even those present.
    #[arg(long)]
    pub pull: bool,
    /// A line for the steps' /etc/hosts: HOST:IP.
    #[arg(long)]
    pub add_host: Vec<String>,
    /// The parent cgroup of the steps' containers.
    #[arg(long)]
    pub cgroup_parent: Option<String>,
    /// Memory limit (e.g. 512m).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// Limit the CPU CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<i64>,
    /// Limit the CPU CFS quota in microseconds.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Size of /dev/shm (e.g. 64m).
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Ulimit options (NAME=SOFT[:HARD]).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Security options (dockerd refuses them on Linux builds; so does berthd).
    #[arg(long)]
    pub security_opt: Vec<String>,
}

impl StepResources {
    /// The query members, as the docker CLI's imageBuildOptionsToQuery sends them.
    fn query(&self) -> Result<Vec<(&'static str, String)>> {
        use super::containers::options::{parse_bytes, parse_ulimit};
        let mut q: Vec<(&'static str, String)> = Vec::new();
        if self.pull {
            q.push(("pull", "1".into()));
        }
        for h in &self.add_host {
            q.push(("extrahosts", h.replacen('=', ":", 1)));
        }
        for o in &self.security_opt {
            q.push(("securityopt", o.clone()));
        }
        let sizes = [
            ("memory", &self.memory),
            ("memswap", &self.memory_swap),
            ("shmsize", &self.shm_size),
        ];
        for (key, value) in sizes {
            if let Some(v) = value {
                let bytes = if v == "-1" { -1 } else { parse_bytes(v)? };
                q.push((key, bytes.to_string()));
            }
        }
        let numbers = [
            ("cpushares", self.cpu_shares),
            ("cpuperiod", self.cpu_period),
            ("cpuquota", self.cpu_quota),
        ];
        for (key, value) in numbers {
            if let Some(n) = value {
                q.push((key, n.to_string()));
            }
        }
        let texts = [
            ("cgroupparent", &self.cgroup_parent),
            ("cpusetcpus", &self.cpuset_cpus),
            ("cpusetmems", &self.cpuset_mems),
        ];
        for (key, value) in texts {
            if let Some(v) = value {
                q.push((key, v.clone()));
            }
        }
        if !self.ulimit.is_empty() {
            let limits = self
                .ulimit
                .iter()
                .map(|u| parse_ulimit(u))
                .collect::<Result<Vec<_>>>()?;
            q.push(("ulimits", serde_json::to_string(&limits)?));
        }
        Ok(q)
    }
}

/// Walk `dir` into `tar`, leaving out what `.dockerignore` excludes.
fn add_dir(
    tar: &mut tar::Builder<std::fs::File>,
    root: &Path,
    rel: &Path,
    ignore: &Ignore,
    keep: &[&str],
) -> Result<()> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("read {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let child = rel.join(e.file_name());
        let text = child.to_string_lossy().into_owned();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        let excluded = ignore.excludes(&text) && !keep.contains(&text.as_str());
        if excluded && !(is_dir && ignore.has_exceptions()) {
            continue;
        }
        if !excluded {
            tar.append_path_with_name(e.path(), &child)
                .with_context(|| format!("add {} to the context", e.path().display()))?;
        }
        if is_dir {
            add_dir(tar, root, &child, ignore, keep)?;
        }
    }
    Ok(())
}

/// The context tar in a temporary file, and the Dockerfile's name inside it.
fn context_tar(dir: &Path, file: Option<&Path>) -> Result<(tempfile::NamedTempFile, String)> {
    if !dir.is_dir() {
        bail!(
            "unable to prepare context: path {:?} not found",
            dir.display().to_string()
        );
    }
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(t) => Ignore::parse(&t)?,
        Err(_) => Ignore::default(),
    };
    let dockerfile = file.map_or_else(|| dir.join("Dockerfile"), Path::to_path_buf);
    if !dockerfile.is_file() {
        bail!(
            "unable to prepare context: cannot find Dockerfile {}",
            dockerfile.display()
        );
    }
    let inside = std::fs::canonicalize(&dockerfile)
        .ok()
        .zip(std::fs::canonicalize(dir).ok())
        .and_then(|(f, d)| f.strip_prefix(&d).ok().map(Path::to_path_buf));
    let tmp = tempfile::NamedTempFile::new().context("a temporary file for the context")?;
    let mut tar = tar::Builder::new(tmp.reopen().context("reopen the context file")?);
    tar.follow_symlinks(false);
    let name = match &inside {
        Some(rel) => rel.to_string_lossy().into_owned(),
        // Outside the context: sent in the tar under a name of its own, as the docker CLI.
        None => format!(
            ".dockerfile.{:016x}",
            std::process::id() as u64 ^ now_nanos()
        ),
    };
    // The Dockerfile and .dockerignore always go (the daemon drops them if excluded).
    add_dir(
        &mut tar,
        dir,
        Path::new(""),
        &ignore,
        &[name.as_str(), ".dockerignore"],
    )?;
    if inside.is_none() {
        tar.append_path_with_name(&dockerfile, &name)
            .with_context(|| format!("add {}", dockerfile.display()))?;
    }
    tar.into_inner()?.flush()?;
    Ok((tmp, name))
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn key_values(list: &[String], from_env: bool) -> Result<BTreeMap<String, Option<String>>> {
    let mut map = BTreeMap::new();
    for item in list {
        match item.split_once('=') {
            Some((k, v)) => map.insert(k.to_string(), Some(v.to_string())),
            // KEY alone: from the environment, as the docker CLI; unset stays unset.
            None if from_env => map.insert(item.clone(), std::env::var(item).ok()),
            None => map.insert(item.clone(), Some(String::new())),
        };
    }
    Ok(map)
}

fn secrets(list: &[String]) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for s in list {
        let mut id = None;
        let mut src = None;
        for field in s.split(',') {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(v.to_string()),
                _ => bail!("--secret {s:?}: expected id=ID,src=FILE"),
            }
        }
        let (Some(id), Some(src)) = (id, src) else {
            bail!("--secret {s:?}: expected id=ID,src=FILE");
        };
        let abs = std::fs::canonicalize(&src).with_context(|| format!("secret {id}: {src}"))?;
        map.insert(id, abs.display().to_string());
    }
    Ok(map)
}

/// The display: a line per step once it ends, with its time.
struct Display {
    quiet: bool,
    current: Option<(String, Instant)>,
    cached: bool,
    output: Vec<String>,
    id: Option<String>,
    tagged: Vec<String>,
}

impl Display {
    fn finish_step(&mut self, failed: bool) {
        let Some((title, started)) = self.current.take() else {
            return;
        };
        if !self.quiet {
            let mark = if failed {
                "ERROR "
            } else if self.cached {
                "CACHED "
            } else {
                ""
            };
            println!("{mark}{title}  {:.2}s", started.elapsed().as_secs_f64());
            if failed {
                for line in &self.output {
                    println!("  | {line}");
                }
            }
        }
        self.cached = false;
        if !failed {
            self.output.clear();
        }
    }

    fn line(&mut self, text: &str) {
        if let Some(step) = text.strip_prefix("Step ") {
            self.finish_step(false);
            let (counter, title) = step.split_once(" : ").unwrap_or((step, ""));
            self.current = Some((format!("[{counter}] {title}"), Instant::now()));
        } else if text == " ---> Using cache" {
            self.cached = true;
        } else if text.starts_with(" ---> ")
            || text.starts_with("Removing intermediate container")
            || text.starts_with("# Executing ")
        {
            // The legacy builder's bookkeeping: the display has its own.
        } else if text.starts_with("Successfully built ") {
            self.finish_step(false);
        } else if let Some(tag) = text.strip_prefix("Successfully tagged ") {
            self.tagged.push(tag.to_string());
        } else if text.starts_with("[Warning]")
            || text.starts_with("[WARNING]")
            || text.starts_with("berth:")
        {
            if !self.quiet {
                eprintln!("{text}");
            }
        } else if self.current.is_some() {
            self.output.push(text.to_string());
        }
    }
}

pub async fn build(client: &Client, args: BuildArgs) -> Result<()> {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let (input, dockerfile): (Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>, String) =
        if args.path == "-" {
            let name = args
                .file
                .as_ref()
                .map_or("Dockerfile".to_string(), |f| f.display().to_string());
            (Box::new(tokio::io::stdin()), name)
        } else {
            let (tmp, name) = context_tar(Path::new(&args.path), args.file.as_deref())?;
            let file = tokio::fs::File::open(tmp.path())
                .await
                .context("open the context")?;
            // The open file keeps the data; the name can go now.
            drop(tmp);
            (Box::new(file), name)
        };
    pairs.push(("dockerfile", dockerfile));
    for t in &args.tags {
        pairs.push(("t", t.clone()));
    }
    pairs.push((
        "buildargs",
        serde_json::to_string(&key_values(&args.build_args, true)?)?,
    ));
    let labels: BTreeMap<String, String> = key_values(&args.labels, false)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    pairs.push(("labels", serde_json::to_string(&labels)?));
    if let Some(t) = &args.target {
        pairs.push(("target", t.clone()));
    }
    let flag = |b: bool| if b { "1" } else { "0" }.to_string();
    pairs.push(("nocache", flag(args.no_cache)));
    pairs.push(("q", flag(args.quiet)));
    pairs.push(("rm", flag(args.rm)));
    pairs.push(("forcerm", flag(args.force_rm)));
    if let Some(n) = &args.network {
        pairs.push(("networkmode", n.clone()));
    }
    if let Some(p) = &args.platform {
        pairs.push(("platform", p.clone()));
    }
    if !args.cache_from.is_empty() {
        pairs.push(("cachefrom", serde_json::to_string(&args.cache_from)?));
    }
    pairs.extend(args.resources.query()?);
    let secrets = secrets(&args.secret)?;
    if !secrets.is_empty() {
        pairs.push(("berth-secrets", serde_json::to_string(&secrets)?));
    }
    let q: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = client
        .post_stream(&format!("/build?{}", query(&q)), "application/x-tar", input)
        .await?;
    let mut display = Display {
        quiet: args.quiet,
        current: None,
        cached: false,
        output: Vec::new(),
        id: None,
        tagged: Vec::new(),
    };
    let mut partial = String::new();
    let mut failure: Option<(String, i64)> = None;
    super::for_each_message(resp, |line| {
        let m: JsonMessage = serde_json::from_slice(line).context("a build message")?;
        if let Some(Aux::Build(built)) = m.aux {
            display.id = Some(built.id);
        }
        if !m.error_message.is_empty() {
            // errorDetail.code is omitted when zero: a failure without one exits 1.
            let code = m.error.map_or(0, |e| e.code);
            let code = if code == 0 { 1 } else { i64::from(code) };
            failure = Some((m.error_message, code));
        }
        if !m.stream.is_empty() {
            partial.push_str(&m.stream);
            while let Some(end) = partial.find('\n') {
                let text: String = partial.drain(..=end).collect();
                display.line(text.trim_end_matches('\n'));
            }
        }
        Ok(())
    })
    .await?;
    if !partial.is_empty() {
        let rest = std::mem::take(&mut partial);
        display.line(&rest);
    }
    if let Some((message, code)) = failure {
        display.finish_step(true);
        return Err(crate::exit::failed(
            u8::try_from(code.clamp(1, 255)).unwrap_or(1),
            anyhow::anyhow!(message),
        ));
    }
    display.finish_step(false);
    let id = display
        .id
        .clone()
        .context("the daemon did not say which image it built")?;
    if let Some(path) = &args.iidfile {
        std::fs::write(path, &id).with_context(|| format!("write {}", path.display()))?;
    }
    if args.quiet {
        println!("{id}");
    } else {
        println!("built {id}");
        for t in &display.tagged {
            println!("tagged {t}");
        }
    }
    Ok(())
}
