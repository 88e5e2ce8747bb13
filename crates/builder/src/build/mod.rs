//! The build: the stages the target needs, each step from its parent image to a new one (a
//! layer when the step changes files, the config only otherwise), through the layer cache,
//! with the legacy builder's messages ("Step N/M : ...", " ---> id").
//!
//! RUN steps run as containers through a [`Runner`] (the engine's own container path);
//! COPY, ADD and WORKDIR work on an overlay of the parent's layers here. Each step's result
//! is committed as an (untagged) image, as the legacy builder does: the cache finds it
//! again, and the next RUN starts a container from it.

pub mod cache;
pub mod context;
pub mod copy;
pub mod fs;
pub mod prune;
pub mod remote;
pub mod tree;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::ignore::Ignore;
use crate::instructions::{self, CommandLine, Copy, Instruction, Plan, Stage};
use crate::parser::{self, Heredoc, Node};
use crate::shell::{self, Env};
use berth_image::config::{history_entry, rootfs};
use berth_image::oci::History;
use berth_image::store::NewLayer;
use berth_image::{
    Digest, DockerOCIImage, DockerOCIImageConfig, HealthcheckConfig, ImageStore, Platform,
    Reference,
};

/// What the build tells the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Text for the `stream` member (ends with a newline when it ends a line).
    Stream(String),
    /// The image built (`aux` with its ID).
    Aux(Digest),
    /// A step committed a new image (not a cache hit): moby's image `create` event.
    Created(Digest),
}

/// A bind mount into a RUN container (`RUN --mount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub target: String,
    pub readonly: bool,
}

/// A RUN step's container.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The image to start from (an intermediate image's id).
    pub image: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    /// `none` or `host` (bridge networking is not there yet).
    pub network: String,
    pub binds: Vec<Bind>,
    pub tmpfs: Vec<String>,
    /// Keep the container after it ends (`--rm=false`).
    pub keep: bool,
    /// Set when the client has gone: the container is to be killed.
    pub cancel: Arc<AtomicBool>,
}

/// What happens to a RUN container.
pub enum RunEvent<'a> {
    Created(&'a str),
    Output(&'a [u8]),
    Removed(&'a str),
}

/// Runs a RUN step's container (implemented by the engine).
pub trait Runner: Send + Sync {
    /// Run `spec`; `event` sees the container's id and output; `upper` is given the
    /// container's upper directory once it ended with status 0, before it is removed.
    /// Returns the exit status.
    fn run(
        &self,
        spec: &RunSpec,
        event: &mut dyn FnMut(RunEvent),
        upper: &mut dyn FnMut(&Path) -> Result<()>,
    ) -> Result<i32>;
}

/// Fetches a base image into the store (`FROM` of an image berthd lacks, or every base with
/// `--pull`); given by the API, which has the registry client.
pub type Puller = Arc<dyn Fn(&str) -> Result<()> + Send + Sync>;

/// The request's options.
#[derive(Clone, Default)]
pub struct Options {
    /// The Dockerfile's path in the context (`-f`).
    pub dockerfile: String,
    pub tags: Vec<Reference>,
    pub build_args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// Remove intermediate containers (`rm`, on by default) and, with `force_remove`, those
    /// of a failed step too (berth removes them whenever `rm` is set).
    pub remove: bool,
    pub force_remove: bool,
    /// `none` (default) or `host`.
    pub network: String,
    pub platform: Option<String>,
    /// Secrets for `RUN --mount=type=secret` (id -> file).
    pub secrets: HashMap<String, PathBuf>,
    /// Set when the client has gone: the build stops at its next step, and a running
    /// step's container is killed.
    pub cancel: Arc<AtomicBool>,
    /// How to pull a base image the store lacks (none: such a FROM fails).
    pub puller: Option<Puller>,
    /// `--pull`: pull every base image, even one the store has.
    pub always_pull: bool,
    /// `--cache-from`: images whose history may stand for steps (a pulled or loaded image
    /// built the same way, which has no cache entries here).
    pub cache_from: Vec<String>,
}

/// Proxy arguments every build accepts without an ARG, kept out of the history.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

const DEFAULT_SHELL: &[&str] = &["/bin/sh", "-c"];

/// The builder's place: its cache and scratch space.
pub struct Builder {
    store: Arc<ImageStore>,
    root: PathBuf,
    cache: cache::Cache,
    /// Cache mounts (`RUN --mount=type=cache`) held by a `locked` or `private` user now.
    leased: std::sync::Mutex<HashSet<String>>,
    freed: std::sync::Condvar,
}

/// What a RUN's `--mount`s give it: bind mounts, tmpfs targets, what goes into the cache
/// key, and the cache mounts it holds while it runs.
struct RunMounts<'a> {
    binds: Vec<Bind>,
    tmpfs: Vec<String>,
    key: String,
    _leases: Vec<Lease<'a>>,
}

/// A cache mount held by one RUN (`sharing=locked|private`), freed when dropped.
struct Lease<'a> {
    builder: &'a Builder,
    id: String,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut held = self
            .builder
            .leased
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        held.remove(&self.id);
        self.builder.freed.notify_all();
    }
}

impl Builder {
    /// Take cache mount `id`: waiting for it (`locked`), or not at all when another holds it
    /// (`private`: the caller then uses a directory of its own). None when not taken.
    fn lease(&self, id: &str, wait: bool) -> Option<Lease<'_>> {
        let mut held = self.leased.lock().unwrap_or_else(|e| e.into_inner());
        while held.contains(id) {
            if !wait {
                return None;
            }
            held = self.freed.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        held.insert(id.to_string());
        Some(Lease {
            builder: self,
            id: id.to_string(),
        })
    }
}

/// One stage's image as it is being built.
#[derive(Clone)]
struct State {
    id: Digest,
    /// The image config without its execution parameters (`cfg`).
    config: DockerOCIImage,
    cfg: DockerOCIImageConfig,
    layers: Vec<NewLayer>,
    chains: Vec<Digest>,
    /// ARGs declared in this stage, with their values.
    args: BTreeMap<String, Option<String>>,
    /// CMD given in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
}

impl State {
    fn new(
        id: Digest,
        mut config: DockerOCIImage,
        layers: Vec<NewLayer>,
        chains: Vec<Digest>,
    ) -> State {
        let cfg = config.config.take().unwrap_or_default();
        State {
            id,
            config,
            cfg,
            layers,
            chains,
            args: BTreeMap::new(),
            cmd_set: false,
        }
    }

    fn env_list(&self) -> Vec<String> {
        self.cfg.oci.env().clone().unwrap_or_default()
    }

    fn shell(&self) -> Vec<String> {
        match &self.cfg.shell {
            Some(s) if !s.is_empty() => s.clone(),
            _ => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn workdir(&self) -> String {
        self.cfg
            .oci
            .working_dir()
            .as_deref()
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    /// Variables for expansion: the stage's ARGs, then ENV over them.
    fn vars(&self) -> Env {
        let mut env: Env = self
            .args
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        for e in self.env_list() {
            if let Some((k, v)) = e.split_once('=') {
                env.insert(k.to_string(), v.to_string());
            }
        }
        env
    }

    /// The whole config, the execution parameters put back in.
    fn full_config(&self) -> DockerOCIImage {
        let mut c = self.config.clone();
        c.config = Some(self.cfg.clone());
        c
    }

    /// The execution parameters as the cache keys a config-only step by (JSON with its
    /// keys sorted, so that the same parameters make the same key).
    fn cfg_key(&self) -> String {
        serde_json::to_value(&self.cfg)
            .map(|v| v.to_string())
            .unwrap_or_default()
    }
}

/// `v` as compact JSON (a command line in a step's history text).
fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// A build in progress.
struct Build<'a> {
    b: &'a Builder,
    opts: &'a Options,
    runner: &'a dyn Runner,
    out: &'a mut dyn FnMut(Message),
    ctx: &'a context::Context,
    escape: char,
    step: usize,
    total: usize,
    /// Finished stages' images, by index.
    stages: Vec<Option<State>>,
    names: HashMap<String, usize>,
    global: BTreeMap<String, Option<String>>,
    used_args: HashSet<String>,
    scratch: PathBuf,
    /// Stages' roots mounted for `RUN --mount=type=bind,from=`, unmounted with the build.
    mounts: Vec<fs::Overlay>,
}

impl Builder {
    /// The builder keeping its cache and scratch space under `root`; what a crash left in
    /// the scratch space (mounts, directories) is cleared.
    pub fn open(store: Arc<ImageStore>, root: &Path) -> Result<Builder> {
        let tmp = root.join("tmp");
        fs::unmount_below(&tmp);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::io("remove", &tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| Error::io("chmod", root, e))?;
        Ok(Builder {
            leased: std::sync::Mutex::new(HashSet::new()),
            freed: std::sync::Condvar::new(),
            cache: cache::Cache::open(&root.join("cache"))?,
            store,
            root: root.to_path_buf(),
        })
    }

    /// The intermediate images of earlier builds (parents of other steps' images).
    pub fn intermediate_images(&self) -> HashSet<Digest> {
        self.cache.parents()
    }

    /// The cache's entries (one per step).
    pub fn cache_entries(&self) -> Vec<cache::Entry> {
        self.cache.entries()
    }

    /// Every record of the build cache (`system df -v`): the steps' entries and the cache
    /// mounts' directories.
    pub fn cache_records(&self) -> Vec<prune::Record> {
        let mut records: Vec<prune::Record> = self
            .cache
            .entries()
            .iter()
            .map(prune::Record::of_step)
            .collect();
        records.extend(self.cache_mounts());
        records
    }

    /// The directory names of the cache mounts running steps hold.
    fn held_mount_dirs(&self) -> HashSet<String> {
        self.leased
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|id| mount_dir_name(id))
            .collect()
    }

    /// The directories of RUN --mount=type=cache, each with its bytes and last change.
    fn cache_mounts(&self) -> Vec<prune::Record> {
        let held = self.held_mount_dirs();
        let Ok(dir) = std::fs::read_dir(self.root.join("mounts")) else {
            return Vec::new();
        };
        dir.flatten()
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                prune::Record {
                    id: cache_mount_id(&name),
                    kind: prune::Record::CACHE_MOUNT,
                    description: "cached mount of RUN --mount=type=cache".into(),
                    parent: None,
                    size: berth_image::dir_size::bytes_under(&e.path()),
                    created: e.metadata().and_then(|m| m.modified()).ok(),
                    in_use: held.contains(&name),
                }
            })
            .collect()
    }

    /// `docker builder prune`: forget the entries `opts` picks; the keys dropped. Nothing
    /// narrowing it, the whole cache goes, with its pool of copied files and the cache
    /// mounts no step holds.
    pub fn prune(&self, opts: &prune::PruneOptions) -> Result<Vec<String>> {
        if !opts.takes_everything() {
            let free = nix::sys::statvfs::statvfs(&self.root)
                .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
                .map_err(|e| Error::io("statvfs", &self.root, e.into()))?;
            let ids = opts.select(&self.cache_records(), free);
            let (mounts, steps): (Vec<String>, Vec<String>) = ids
                .iter()
                .cloned()
                .partition(|id| id.starts_with(CACHE_MOUNT_PREFIX));
            self.cache.remove(&steps)?;
            for id in &mounts {
                let dir = self
                    .root
                    .join("mounts")
                    .join(&id[CACHE_MOUNT_PREFIX.len()..]);
                std::fs::remove_dir_all(&dir).map_err(|e| Error::io("remove", &dir, e))?;
            }
            return Ok(ids);
        }
        let mut dropped = self.cache.clear()?;
        // The pool of copied files goes with the cache (layers keep their own links).
        let files = self.root.join("files");
        if files.exists() {
            std::fs::remove_dir_all(&files).map_err(|e| Error::io("remove", &files, e))?;
        }
        // The cache mounts of RUN --mount=type=cache go too (BuildKit prunes them), but
        // not one a running step holds.
        let mounts = self.root.join("mounts");
        let held = self.held_mount_dirs();
        if let Ok(entries) = std::fs::read_dir(&mounts) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if held.contains(&name) {
                    continue;
                }
                std::fs::remove_dir_all(e.path())
                    .map_err(|err| Error::io("remove", e.path(), err))?;
                dropped.push(cache_mount_id(&name));
            }
        }
        Ok(dropped)
    }

    /// Build the context `input` (a tar) with `opts`; messages go to `out`. Returns the
    /// image built (tagged with `opts.tags`).
    pub fn build(
        &self,
        input: impl Read,
        opts: &Options,
        runner: &dyn Runner,
        out: &mut dyn FnMut(Message),
    ) -> Result<Digest> {
        let scratch = tempfile::tempdir_in(self.root.join("tmp"))
            .map_err(|e| Error::io("create scratch in", self.root.join("tmp"), e))?;
        let dockerfile = if opts.dockerfile.is_empty() {
            "Dockerfile"
        } else {
            opts.dockerfile.as_str()
        };
        let started = Instant::now();
        let ctx = context::Context::read(input, scratch.path(), dockerfile)?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "build context read"
        );
        let df = parser::parse(&ctx.dockerfile, dockerfile)?;
        if let Some(s) = &df.directives.syntax {
            out(Message::Stream(format!(
                "berth: the syntax directive ({s}) is ignored: berth parses Dockerfiles itself\n"
            )));
        }
        for w in &df.warnings {
            out(Message::Stream(format!("[WARNING]: {w}\n")));
        }
        let mut plan = instructions::plan(&df, dockerfile)?;
        if let Some(p) = &opts.platform {
            check_platform(p)?;
        }
        let target = match &opts.target {
            None => plan.stages.len() - 1,
            Some(t) => plan
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(&t.to_ascii_lowercase()))
                .ok_or_else(|| {
                    Error::Invalid(format!("failed to reach build target {t} in Dockerfile"))
                })?,
        };
        if !opts.labels.is_empty() {
            let text = opts
                .labels
                .iter()
                .map(|(k, v)| format!("{k:?}='{v}'"))
                .collect::<Vec<_>>()
                .join(" ");
            let node = Node {
                cmd: "label".into(),
                original: format!("LABEL {text}"),
                flags: Vec::new(),
                args: parser::Args::None,
                heredocs: Vec::new(),
                start_line: 0,
                end_line: 0,
            };
            let labels = opts
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            plan.stages[target].commands.push(instructions::Command {
                node,
                instruction: Instruction::Label(labels),
            });
        }
        let mut global = BTreeMap::new();
        let auto = automatic_args();
        let global_env = |g: &BTreeMap<String, Option<String>>| -> Env {
            let mut env: Env = auto.clone().into_iter().collect();
            env.extend(g.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?))));
            env
        };
        for (name, default) in &plan.global_args {
            let value = match opts.build_args.get(name) {
                Some(Some(v)) => Some(v.clone()),
                _ => match default {
                    Some(d) => Some(
                        shell::expand(d, &global_env(&global), df.directives.escape)
                            .map_err(|e| Error::Step(e.to_string()))?,
                    ),
                    None => auto.get(name).cloned(),
                },
            };
            global.insert(name.clone(), value);
        }
        let needed = needed_stages(&plan, target, &global_env(&global), df.directives.escape);
        let total = plan.global_args.len()
            + plan
                .stages
                .iter()
                .enumerate()
                .filter(|(i, _)| needed.contains(i))
                .map(|(_, s)| 1 + s.commands.len())
                .sum::<usize>();
        let shared = Shared {
            b: self,
            opts,
            runner,
            ctx: &ctx,
            escape: df.directives.escape,
            total,
            names: plan
                .stages
                .iter()
                .enumerate()
                .filter_map(|(i, s)| Some((s.name.clone()?, i)))
                .collect(),
            global,
            scratch: scratch.path().to_path_buf(),
        };
        let mut used_args: HashSet<String> =
            plan.global_args.iter().map(|(k, _)| k.clone()).collect();
        {
            let mut build = shared.build(out, 0, vec![None; plan.stages.len()]);
            for (name, value) in plan.global_args.clone() {
                let text = match value {
                    Some(v) => format!("ARG {name}={v}"),
                    None => format!("ARG {name}"),
                };
                build.announce(&text)?;
            }
        }
        let global_env_now = global_env(&shared.global);
        let deps: Vec<Vec<usize>> = (0..plan.stages.len())
            .map(|i| stage_deps(&plan, i, &global_env_now, df.directives.escape))
            .collect();
        let state = shared.run_stages(&plan, &needed, &deps, target, out, &mut used_args)?;
        let build = shared.build(out, 0, Vec::new());
        let unused: Vec<&String> = opts
            .build_args
            .keys()
            .filter(|k| !used_args.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            let list: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            (build.out)(Message::Stream(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                list.join(" ")
            )));
        }
        for tag in &opts.tags {
            self.store.tag(state.id.as_str(), tag)?;
        }
        (build.out)(Message::Aux(state.id.clone()));
        (build.out)(Message::Stream(format!(
            "Successfully built {}\n",
            state.id.short()
        )));
        for tag in &opts.tags {
            (build.out)(Message::Stream(format!(
                "Successfully tagged {}\n",
                tag.clone().with_default_tag().familiar_string()
            )));
        }
        Ok(state.id)
    }
}

/// The directory name of cache mount `id` (a digest: ids are free text).
fn mount_dir_name(id: &str) -> String {
    cache::key(&Digest::of(id.as_bytes()), "cache", "")
}

/// How a cache mount's directory is named among the cache's records.
const CACHE_MOUNT_PREFIX: &str = "cache-mount-";

fn cache_mount_id(dir_name: &str) -> String {
    format!("{CACHE_MOUNT_PREFIX}{dir_name}")
}

/// The platform args BuildKit defines for every build (the host's platform).
fn automatic_args() -> BTreeMap<String, String> {
    let p = Platform::host();
    let text = p.to_string();
    let variant = p.variant.clone().unwrap_or_default();
    let mut m = BTreeMap::new();
    for prefix in ["TARGET", "BUILD"] {
        m.insert(format!("{prefix}PLATFORM"), text.clone());
        m.insert(format!("{prefix}OS"), p.os.clone());
        m.insert(format!("{prefix}ARCH"), p.architecture.clone());
        m.insert(format!("{prefix}VARIANT"), variant.clone());
    }
    m
}

/// `--platform`: only the host's (berth does not emulate other architectures).
fn check_platform(p: &str) -> Result<()> {
    let wanted = Platform::parse(p).map_err(|e| Error::Invalid(e.to_string()))?;
    if !wanted.served_by(&Platform::host()) && !Platform::host().served_by(&wanted) {
        return Err(Error::Invalid(format!(
            "platform {p} is not this host's ({}): berth builds only for the host's platform",
            Platform::host()
        )));
    }
    Ok(())
}

/// The stages `target` needs: its base chain and the stages its COPY --from and RUN
/// --mount from= name; others are skipped, as BuildKit skips them.
fn needed_stages(plan: &Plan, target: usize, global: &Env, escape: char) -> HashSet<usize> {
    let mut needed = HashSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if needed.insert(i) {
            todo.extend(stage_deps(plan, i, global, escape));
        }
    }
    needed
}

/// The earlier stages stage `i` uses: its base, COPY --from, RUN --mount from= (all earlier
/// ones when a name is only known once expanded).
fn stage_deps(plan: &Plan, i: usize, global: &Env, escape: char) -> Vec<usize> {
    let find = |name: &str| -> Vec<usize> {
        if name.contains('$') {
            return (0..i).collect();
        }
        if let Ok(n) = name.parse::<usize>() {
            return if n < i { vec![n] } else { Vec::new() };
        }
        plan.stages[..i]
            .iter()
            .position(|s| s.name.as_deref() == Some(&name.to_ascii_lowercase()))
            .into_iter()
            .collect()
    };
    let stage = &plan.stages[i];
    let base = shell::expand(&stage.base, global, escape).unwrap_or_default();
    let mut out = find(&base);
    for c in &stage.commands {
        match &c.instruction {
            Instruction::Copy(Copy { from: Some(f), .. }) => out.extend(find(f)),
            Instruction::Run { mounts, .. } => {
                for m in mounts {
                    if let Some(f) = m.get("from") {
                        out.extend(find(f));
                    }
                }
            }
            _ => {}
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// What every stage of a build shares (read-only, so stages can run on several threads).
struct Shared<'a> {
    b: &'a Builder,
    opts: &'a Options,
    runner: &'a dyn Runner,
    ctx: &'a context::Context,
    escape: char,
    total: usize,
    names: HashMap<String, usize>,
    global: BTreeMap<String, Option<String>>,
    scratch: PathBuf,
}

impl<'a> Shared<'a> {
    fn build<'o>(
        &'o self,
        out: &'o mut dyn FnMut(Message),
        step: usize,
        stages: Vec<Option<State>>,
    ) -> Build<'o> {
        Build {
            b: self.b,
            opts: self.opts,
            runner: self.runner,
            out,
            ctx: self.ctx,
            escape: self.escape,
            step,
            total: self.total,
            stages,
            names: self.names.clone(),
            global: self.global.clone(),
            used_args: HashSet::new(),
            scratch: self.scratch.clone(),
            mounts: Vec::new(),
        }
    }

    /// Build stage `i` on top of the finished `done` stages; its state and the ARGs it used.
    fn stage(
        &self,
        plan: &Plan,
        i: usize,
        step: usize,
        done: &[Option<State>],
        out: &mut dyn FnMut(Message),
    ) -> Result<(State, HashSet<String>)> {
        let mut build = self.build(out, step, done.to_vec());
        let state = build.stage(&plan.stages[i])?;
        Ok((state, std::mem::take(&mut build.used_args)))
    }

    /// The needed stages, those whose dependencies are built running at once (the first
    /// one's output live, the others' held and given after it, so that the stream stays in
    /// step order); the target's state.
    fn run_stages(
        &self,
        plan: &Plan,
        needed: &HashSet<usize>,
        deps: &[Vec<usize>],
        target: usize,
        out: &mut dyn FnMut(Message),
        used_args: &mut HashSet<String>,
    ) -> Result<State> {
        // Each needed stage's first step number, in Dockerfile order.
        let mut offsets = vec![0; plan.stages.len()];
        let mut next = plan.global_args.len();
        for (i, s) in plan.stages.iter().enumerate() {
            if needed.contains(&i) {
                offsets[i] = next;
                next += 1 + s.commands.len();
            }
        }
        let mut done: Vec<Option<State>> = vec![None; plan.stages.len()];
        let mut pending: Vec<usize> = (0..plan.stages.len())
            .filter(|i| needed.contains(i))
            .collect();
        while !pending.is_empty() {
            let ready: Vec<usize> = pending
                .iter()
                .copied()
                .filter(|i| {
                    deps[*i]
                        .iter()
                        .all(|d| done[*d].is_some() || !needed.contains(d))
                })
                .collect();
            let Some((&first, rest)) = ready.split_first() else {
                return Err(Error::Step(
                    "the stages depend on each other in a cycle".into(),
                ));
            };
            let snapshot = done.clone();
            let (first_result, others) = std::thread::scope(|scope| {
                let handles: Vec<_> = rest
                    .iter()
                    .map(|&i| {
                        let snapshot = &snapshot;
                        let step = offsets[i];
                        scope.spawn(move || {
                            let mut held = Vec::new();
                            let r = self.stage(plan, i, step, snapshot, &mut |m| held.push(m));
                            (i, r, held)
                        })
                    })
                    .collect();
                let first_result = self.stage(plan, first, offsets[first], &snapshot, out);
                let others: Vec<_> = handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            (
                                0,
                                Err(Error::Step("a stage's thread panicked".into())),
                                Vec::new(),
                            )
                        })
                    })
                    .collect();
                (first_result, others)
            });
            let (state, used) = first_result?;
            used_args.extend(used);
            done[first] = Some(state);
            for (i, r, held) in others {
                for m in held {
                    out(m);
                }
                let (state, used) = r?;
                used_args.extend(used);
                done[i] = Some(state);
            }
            pending.retain(|i| done[*i].is_none());
        }
        done[target]
            .clone()
            .ok_or_else(|| Error::Step("the target stage was not built".into()))
    }
}

impl<'a> Build<'a> {
    fn say(&mut self, text: impl Into<String>) {
        (self.out)(Message::Stream(text.into()));
    }

    fn announce(&mut self, text: &str) -> Result<()> {
        if self.opts.cancel.load(Ordering::Relaxed) {
            return Err(Error::Step(
                "the build was cancelled: the client went away".into(),
            ));
        }
        self.step += 1;
        let text = format!("Step {}/{} : {}\n", self.step, self.total, text);
        self.say(text);
        Ok(())
    }

    fn at(&self, node: &Node, e: Error) -> Error {
        match e {
            Error::Step(m) if node.start_line > 0 => Error::Step(format!(
                "{}:{}: {m}",
                self.ctx.dockerfile_name, node.start_line
            )),
            other => other,
        }
    }

    fn expand(&self, word: &str, env: &Env) -> Result<String> {
        shell::expand(word, env, self.escape).map_err(|e| Error::Step(e.to_string()))
    }

    fn stage(&mut self, stage: &Stage) -> Result<State> {
        self.announce(&stage.from.original)?;
        let mut state = self.from(stage).map_err(|e| self.at(&stage.from, e))?;
        let triggers = state.cfg.on_build.clone().unwrap_or_default();
        if !triggers.is_empty() {
            // Consumed: the child's config has them null, as dockerd writes it.
            state.cfg.on_build = None;
            state.cfg.null("OnBuild");
            let n = triggers.len();
            self.say(format!(
                "# Executing {n} build trigger{}\n",
                if n == 1 { "" } else { "s" }
            ));
            for t in triggers {
                let df = parser::parse(&t, "ONBUILD trigger")?;
                for node in df.nodes {
                    let instruction = instructions::instruction(&node)
                        .map_err(|m| Error::Step(format!("ONBUILD trigger {t:?}: {m}")))?;
                    self.say(format!(" ---> Running trigger: {}\n", node.original));
                    state = self
                        .command(&state, &node, &instruction)
                        .map_err(|e| self.at(&stage.from, e))?;
                }
            }
        }
        for c in &stage.commands {
            self.announce(&c.node.original)?;
            let started = Instant::now();
            state = self
                .command(&state, &c.node, &c.instruction)
                .map_err(|e| self.at(&c.node, e))?;
            tracing::debug!(
                step = self.step,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "build step done"
            );
        }
        Ok(state)
    }

    fn from(&mut self, stage: &Stage) -> Result<State> {
        let mut env: Env = automatic_args().into_iter().collect();
        env.extend(
            self.global
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.clone()?))),
        );
        let base = self.expand(&stage.base, &env)?;
        if let Some(p) = &stage.platform {
            let p = self.expand(p, &env)?;
            // A step's error, so that it carries the line.
            check_platform(&p).map_err(|e| Error::Step(e.to_string()))?;
        }
        if base.is_empty() {
            return Err(Error::Step(format!(
                "base name ({}) should not be blank",
                stage.base
            )));
        }
        let mut state = if base.eq_ignore_ascii_case("scratch") {
            self.scratch_state()?
        } else if let Some(prev) = self
            .names
            .get(&base.to_ascii_lowercase())
            .and_then(|i| self.stages.get(*i).cloned().flatten())
        {
            prev
        } else {
            let image = self.base_image(&base)?;
            let config = self.b.store.config(&image.record)?;
            let wanted = Platform::host();
            let actual = config.platform();
            if !wanted.served_by(&actual) {
                return Err(Error::Step(format!(
                    "image {base} is for {actual}, not this host's platform {wanted}"
                )));
            }
            self.image_state(&image, config)?
        };
        state.args = BTreeMap::new();
        state.cmd_set = false;
        self.say(format!(" ---> {}\n", state.id.short()));
        Ok(state)
    }

    /// A base image from the store, pulled first when it is missing (or always, with
    /// `--pull`) and the build can pull.
    fn base_image(&self, base: &str) -> Result<berth_image::Image> {
        let puller = self.opts.puller.as_ref();
        let missing = matches!(
            self.b.store.resolve(base),
            Err(berth_image::Error::ImageNotFound(_))
        );
        if let Some(pull) = puller.filter(|_| missing || self.opts.always_pull) {
            pull(base)?;
        }
        self.b.store.resolve(base).map_err(|e| match e {
            berth_image::Error::ImageNotFound(_) => Error::NotFound(format!(
                "pull access denied for {base}: the image is not in berth's store and no registry gave it"
            )),
            other => Error::Image(other),
        })
    }

    fn image_state(&self, image: &berth_image::Image, config: DockerOCIImage) -> Result<State> {
        let r = &image.record;
        // Its steps mount the layers' snapshots: a committed image's may not be unpacked yet.
        self.b.store.lower_dirs(&r.layers)?;
        Ok(State::new(
            r.id.clone(),
            config,
            r.layers
                .iter()
                .map(|l| NewLayer {
                    blob: l.blob.clone(),
                    media_type: l.media_type.clone(),
                    diff_id: l.diff_id.clone(),
                })
                .collect(),
            r.layers.iter().map(|l| l.chain_id.clone()).collect(),
        ))
    }

    /// An image with no layers (`FROM scratch`).
    fn scratch_state(&mut self) -> Result<State> {
        let p = Platform::host();
        let mut cfg = DockerOCIImageConfig::default();
        cfg.oci.set_env(Some(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ]));
        let config = DockerOCIImage {
            created: Some("1970-01-01T00:00:00Z".into()),
            architecture: p.architecture.as_str().into(),
            variant: p.variant,
            os: p.os.as_str().into(),
            config: Some(cfg),
            rootfs: rootfs(Vec::new()),
            history: Some(Vec::new()),
            ..DockerOCIImage::default()
        };
        let bytes = config.to_vec()?;
        let record = self
            .b
            .store
            .commit(&bytes, &[], &HashMap::new(), &[], None)?;
        Ok(State::new(record.id, config, Vec::new(), Vec::new()))
    }

    /// Commit `state` (its config changed, maybe a new layer) as the step's image.
    fn commit(
        &mut self,
        mut state: State,
        created_by: String,
        layer: Option<berth_image::layer_from_dir::DirLayer>,
        key: &str,
    ) -> Result<State> {
        let mut sizes = HashMap::new();
        let empty = layer.is_none();
        let added = layer.as_ref().map_or(0, |l| l.size);
        if let Some(l) = layer {
            sizes.insert(l.chain_id.clone(), l.size);
            state.layers.push(l.layer);
            state.chains.push(l.chain_id);
        }
        let created = now();
        state.config.created = Some(created.clone());
        state.config.rootfs = rootfs(state.layers.iter().map(|l| l.diff_id.to_string()).collect());
        state
            .config
            .history
            .get_or_insert_with(Vec::new)
            .push(history_entry(&created, &created_by, "", "", empty));
        let bytes = state.full_config().to_vec()?;
        let record = self
            .b
            .store
            .commit(&bytes, &state.layers, &sizes, &[], None)?;
        let parent = std::mem::replace(&mut state.id, record.id);
        self.b.cache.put(key, &state.id, &parent, added)?;
        (self.out)(Message::Created(state.id.clone()));
        self.say(format!(" ---> {}\n", state.id.short()));
        Ok(state)
    }

    /// The cached result of a step, announced, if there is one.
    /// `next`: the step's result before its commit (the parent's id, layers and history,
    /// the new container config); `created_by`: its history entry's text.
    fn cached(&mut self, key: &str, next: &State, created_by: &str) -> Result<Option<State>> {
        if self.opts.no_cache {
            return Ok(None);
        }
        let Some(id) = self.b.cache.get(&self.b.store, key) else {
            return self.cache_image_hit(key, next, created_by);
        };
        let state = next;
        let image = self.b.store.resolve(id.as_str())?;
        let config = self.b.store.config(&image.record)?;
        self.say(format!(" ---> Using cache\n ---> {}\n", id.short()));
        let mut next = self.image_state(&image, config)?;
        next.args = state.args.clone();
        next.cmd_set = state.cmd_set;
        Ok(Some(next))
    }

    /// `--cache-from`: an image whose history begins as the parent's and goes on with this
    /// step gives the step's layer (the config is the one the step makes), as moby's
    /// restoreCachedImage does.
    fn cache_image_hit(
        &mut self,
        key: &str,
        next: &State,
        created_by: &str,
    ) -> Result<Option<State>> {
        let history = next.config.history_entries();
        let n = history.len();
        let m = next.layers.len();
        let empty = |h: &History| h.empty_layer().unwrap_or(false);
        for source in &self.opts.cache_from {
            let Ok(image) = self.b.store.resolve(source) else {
                continue;
            };
            let config = self.b.store.config(&image.record)?;
            let theirs = config.history_entries();
            let layers = &image.record.layers;
            let Some(step) = theirs.get(n) else { continue };
            let same_past = theirs[..n]
                .iter()
                .zip(history)
                .all(|(a, b)| a.created_by() == b.created_by() && empty(a) == empty(b));
            let same_layers = layers.len() >= m
                && layers[..m]
                    .iter()
                    .zip(&next.layers)
                    .all(|(a, b)| a.diff_id == b.diff_id);
            if !same_past || !same_layers || step.created_by().as_deref() != Some(created_by) {
                continue;
            }
            let mut result = next.clone();
            if !empty(step) {
                let Some(l) = layers.get(m) else { continue };
                result.layers.push(NewLayer {
                    blob: l.blob.clone(),
                    media_type: l.media_type.clone(),
                    diff_id: l.diff_id.clone(),
                });
                result.chains.push(l.chain_id.clone());
            }
            result.config.created = step.created().clone();
            result.config.rootfs = rootfs(
                result
                    .layers
                    .iter()
                    .map(|l| l.diff_id.to_string())
                    .collect(),
            );
            let mut h = history.to_vec();
            h.push(step.clone());
            result.config.history = Some(h);
            let bytes = result.full_config().to_vec()?;
            let record = self
                .b
                .store
                .commit(&bytes, &result.layers, &HashMap::new(), &[], None)?;
            result.id = record.id;
            self.b.cache.put(key, &result.id, &next.id, 0)?;
            self.say(format!(" ---> Using cache\n ---> {}\n", result.id.short()));
            return Ok(Some(result));
        }
        Ok(None)
    }

    /// A step that changes only the config: `change` applies it.
    fn meta(
        &mut self,
        state: &State,
        created_by: String,
        change: impl FnOnce(&mut State) -> Result<()>,
    ) -> Result<State> {
        let mut next = state.clone();
        change(&mut next)?;
        let created_by = format!("/bin/sh -c #(nop)  {created_by}");
        let key = cache::key(&state.id, &format!("{created_by}\n{}", next.cfg_key()), "");
        if let Some(hit) = self.cached(&key, &next, &created_by)? {
            return Ok(hit);
        }
        self.commit(next, created_by, None, &key)
    }

    fn command(&mut self, state: &State, node: &Node, instruction: &Instruction) -> Result<State> {
        let vars = state.vars();
        let x =
            |w: &str| shell::expand(w, &vars, self.escape).map_err(|e| Error::Step(e.to_string()));
        match instruction {
            Instruction::Env(pairs) => {
                let mut expanded = Vec::new();
                let mut scope = vars.clone();
                for (k, v) in pairs {
                    let k = shell::expand(k, &scope, self.escape)
                        .map_err(|e| Error::Step(e.to_string()))?;
                    let v = shell::expand(v, &scope, self.escape)
                        .map_err(|e| Error::Step(e.to_string()))?;
                    scope.insert(k.clone(), v.clone());
                    expanded.push((k, v));
                }
                let text = expanded
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                self.meta(state, format!("ENV {text}"), |s| {
                    let mut env = s.env_list();
                    for (k, v) in &expanded {
                        let entry = format!("{k}={v}");
                        match env
                            .iter_mut()
                            .find(|e| e.split_once('=').map(|(n, _)| n) == Some(k))
                        {
                            Some(e) => *e = entry,
                            None => env.push(entry),
                        }
                    }
                    s.cfg.oci.set_env(Some(env));
                    Ok(())
                })
            }
            Instruction::Label(pairs) => {
                let expanded = pairs
                    .iter()
                    .map(|(k, v)| Ok((x(k)?, x(v)?)))
                    .collect::<Result<Vec<_>>>()?;
                let text = expanded
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                self.meta(state, format!("LABEL {text}"), |s| {
                    let labels = s.cfg.oci.labels_mut().get_or_insert_with(HashMap::new);
                    labels.extend(expanded);
                    Ok(())
                })
            }
            Instruction::Arg(args) => {
                let mut next = state.clone();
                let auto = automatic_args();
                for (name, default) in args {
                    self.used_args.insert(name.clone());
                    let value = match self.opts.build_args.get(name) {
                        Some(Some(v)) => Some(v.clone()),
                        _ => match default {
                            Some(d) => Some(
                                shell::expand(d, &next.vars(), self.escape)
                                    .map_err(|e| Error::Step(e.to_string()))?,
                            ),
                            None => self
                                .global
                                .get(name)
                                .cloned()
                                .flatten()
                                .or_else(|| auto.get(name).cloned()),
                        },
                    };
                    next.args.insert(name.clone(), value);
                }
                // An ARG changes no image; the legacy builder still makes a step of it.
                self.say(format!(" ---> {}\n", next.id.short()));
                Ok(next)
            }
            Instruction::Cmd(line) => {
                let cmd = self.command_line(state, line, &vars)?;
                self.meta(state, format!("CMD {}", json_text(&cmd)), |s| {
                    s.cfg.oci.set_cmd(Some(cmd));
                    s.cmd_set = true;
                    Ok(())
                })
            }
            Instruction::Entrypoint(line) => {
                let ep = self.command_line(state, line, &vars)?;
                self.meta(state, format!("ENTRYPOINT {}", json_text(&ep)), |s| {
                    s.cfg.oci.set_entrypoint(Some(ep));
                    if !s.cmd_set {
                        s.cfg.oci.set_cmd(None);
                        s.cfg.null("Cmd");
                    }
                    Ok(())
                })
            }
            Instruction::Expose(ports) => {
                let mut list = Vec::new();
                for p in ports {
                    list.extend(expand_ports(&x(p)?)?);
                }
                self.meta(state, format!("EXPOSE {}", list.join(" ")), |s| {
                    s.cfg.expose(list);
                    Ok(())
                })
            }
            Instruction::User(u) => {
                let u = x(u)?;
                self.meta(state, format!("USER {u}"), |s| {
                    s.cfg.oci.set_user(Some(u));
                    Ok(())
                })
            }
            Instruction::Volume(vols) => {
                let list = vols.iter().map(|v| x(v)).collect::<Result<Vec<_>>>()?;
                self.meta(state, format!("VOLUME {}", json_text(&list)), |s| {
                    s.cfg.add_volumes(list);
                    Ok(())
                })
            }
            Instruction::StopSignal(sig) => {
                let sig = x(sig)?;
                self.meta(state, format!("STOPSIGNAL {sig}"), |s| {
                    s.cfg.oci.set_stop_signal(Some(sig));
                    Ok(())
                })
            }
            Instruction::Shell(sh) => {
                let sh = sh.clone();
                self.meta(state, format!("SHELL {}", json_text(&sh)), |s| {
                    s.cfg.shell = Some(sh);
                    Ok(())
                })
            }
            Instruction::Maintainer(m) => {
                let m = x(m)?;
                self.meta(state, format!("MAINTAINER {m}"), |s| {
                    s.config.author = Some(m);
                    Ok(())
                })
            }
            Instruction::Onbuild(trigger) => {
                let t = trigger.clone();
                self.meta(state, format!("ONBUILD {t}"), |s| {
                    s.cfg.on_build.get_or_insert_with(Vec::new).push(t);
                    Ok(())
                })
            }
            Instruction::Healthcheck(h) => {
                let check = match h {
                    None => HealthcheckConfig {
                        test: vec!["NONE".into()],
                        ..HealthcheckConfig::default()
                    },
                    Some(h) => {
                        let ns = |d: Option<std::time::Duration>| {
                            d.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                        };
                        HealthcheckConfig {
                            test: h.test.clone(),
                            interval: ns(h.interval),
                            timeout: ns(h.timeout),
                            start_period: ns(h.start_period),
                            start_interval: ns(h.start_interval),
                            retries: h
                                .retries
                                .map_or(0, |r| i64::try_from(r).unwrap_or(i64::MAX)),
                        }
                    }
                };
                // The history text shows the check as JSON with sorted keys.
                let text = serde_json::to_value(&check)
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                self.meta(state, format!("HEALTHCHECK {text}"), |s| {
                    s.cfg.healthcheck = Some(check);
                    Ok(())
                })
            }
            Instruction::Workdir(w) => self.workdir(state, &x(w)?),
            Instruction::Copy(c) => self.copy(state, node, c, &vars),
            Instruction::Run {
                command,
                heredocs,
                mounts,
                network,
            } => self.run(state, command, heredocs, mounts, network.as_deref()),
        }
    }

    /// CMD and ENTRYPOINT: exec form as is, shell form through the SHELL.
    fn command_line(&self, state: &State, line: &CommandLine, _vars: &Env) -> Result<Vec<String>> {
        Ok(match line {
            CommandLine::Exec(v) => v.clone(),
            CommandLine::Shell(s) => {
                let mut v = state.shell();
                v.push(s.clone());
                v
            }
        })
    }

    fn workdir(&mut self, state: &State, dir: &str) -> Result<State> {
        let dir = if dir.starts_with('/') {
            crate::ignore::clean(dir)
        } else {
            crate::ignore::clean(&format!("{}/{dir}", state.workdir()))
        };
        let mut next = state.clone();
        next.cfg.oci.set_working_dir(Some(dir.clone()));
        let created_by = format!("/bin/sh -c #(nop) WORKDIR {dir}");
        let key = cache::key(&state.id, &format!("{created_by}\n{}", next.cfg_key()), "");
        if let Some(hit) = self.cached(&key, &next, &created_by)? {
            return Ok(hit);
        }
        // The directory is made now (BuildKit's behaviour), so that a later COPY or RUN
        // finds it; when it exists already the step changes only the config.
        let work = tempfile::tempdir_in(&self.scratch)
            .map_err(|e| Error::io("create scratch in", &self.scratch, e))?;
        let mut ov = fs::Overlay::mount(&self.lowers(state), work.path())?;
        let exists = fs::resolve_in_root(&ov.merged, &dir, true)?.is_dir();
        if !exists {
            fs::mkdir_all(&ov.merged, &dir, None)?;
        }
        ov.unmount()?;
        let layer = if exists {
            None
        } else {
            Some(self.layer_moving(&ov.upper, state)?)
        };
        self.commit(next, created_by, layer, &key)
    }

    fn lowers(&self, state: &State) -> Vec<PathBuf> {
        state
            .chains
            .iter()
            .rev()
            .map(|c| self.b.store.snapshot_dir(c))
            .collect()
    }

    /// The layer of a COPY's or WORKDIR's upper directory (unmounted, used by nothing
    /// after): moved in as the snapshot rather than unpacked again from its tar.
    fn layer_moving(
        &self,
        upper: &Path,
        state: &State,
    ) -> Result<berth_image::layer_from_dir::DirLayer> {
        Ok(berth_image::layer_from_dir::store_layer_moving_dir(
            &self.b.store,
            upper,
            state.chains.last(),
        )?)
    }

    /// The root a `--from` names: an earlier stage or an image, mounted read-only-ish in a
    /// scratch overlay (never committed).
    fn root_of(&mut self, from: &str) -> Result<(Digest, Vec<PathBuf>)> {
        let by_stage = match from.parse::<usize>() {
            Ok(n) => self.stages.get(n).cloned().flatten(),
            Err(_) => self
                .names
                .get(&from.to_ascii_lowercase())
                .and_then(|i| self.stages.get(*i).cloned().flatten()),
        };
        if let Some(s) = by_stage {
            let lowers = self.lowers(&s);
            return Ok((s.id, lowers));
        }
        if self.names.contains_key(&from.to_ascii_lowercase()) {
            return Err(Error::Step(format!(
                "stage {from} is not built before this step"
            )));
        }
        let image = self.b.store.resolve(from).map_err(|_| {
            Error::Step(format!(
                "invalid from flag value {from}: no stage or image of that name (berth's builder does not pull)"
            ))
        })?;
        let lowers = self.b.store.lower_dirs(&image.record.layers)?;
        Ok((image.record.id, lowers))
    }

    fn copy(&mut self, state: &State, node: &Node, c: &Copy, vars: &Env) -> Result<State> {
        let x =
            |w: &str| shell::expand(w, vars, self.escape).map_err(|e| Error::Step(e.to_string()));
        let what = if c.add { "ADD" } else { "COPY" };
        let dest = x(&c.dest)?;
        let chown = c.chown.as_deref().map(x).transpose()?;
        let chmod = c
            .chmod
            .as_deref()
            .map(x)
            .transpose()?
            .map(|m| fs::parse_chmod(&m))
            .transpose()?;
        let exclude_text = c
            .exclude
            .iter()
            .map(|e| x(e))
            .collect::<Result<Vec<_>>>()?
            .join("\n");
        let exclude =
            Ignore::parse(&exclude_text).map_err(|e| Error::Step(format!("--exclude: {e}")))?;
        let escape = self.escape;
        let expand_heredoc = |t: &str| {
            shell::expand_heredoc(t, vars, escape).map_err(|e| Error::Step(e.to_string()))
        };
        let (mut data, rest) = copy::heredoc_sources(&c.sources, &c.heredocs, &expand_heredoc)?;
        let rest = rest.iter().map(|s| x(s)).collect::<Result<Vec<_>>>()?;
        let (urls, paths): (Vec<String>, Vec<String>) = rest
            .into_iter()
            .partition(|s| c.add && (s.starts_with("http://") || s.starts_with("https://")));
        if !urls.is_empty() && c.add {
            for u in &urls {
                let (name, bytes) = copy::fetch_url(u)?;
                if let Some(want) = &c.checksum {
                    let got = Digest::of(&bytes);
                    if got.as_str() != want {
                        return Err(Error::Step(format!(
                            "ADD {u}: digest mismatch: expected {want}, got {got}"
                        )));
                    }
                }
                data.push(copy::Source::Data {
                    name,
                    bytes,
                    mode: 0o600,
                });
            }
        } else if c.checksum.is_some() {
            return Err(Error::Step("ADD --checksum is only for URL sources".into()));
        }
        // Sources come from the context, or from a stage or image.
        let from = c.from.as_deref().map(x).transpose()?;
        let mut from_mount = None;
        // The key takes what the sources hold (their owners too when the copy keeps them),
        // from a stage or an image as from the context, as moby's legacy builder does: a
        // stage rebuilt with the same files still hits.
        let owners = chown.is_none();
        let host_tree;
        let tree: &dyn tree::Tree = match &from {
            None => self.ctx,
            Some(f) => {
                let (_, lowers) = self.root_of(f)?;
                let work = tempfile::tempdir_in(&self.scratch)
                    .map_err(|e| Error::io("create scratch in", &self.scratch, e))?;
                let ov = fs::Overlay::mount(&lowers, work.path())?;
                let root = ov.merged.clone();
                from_mount = Some((ov, work));
                host_tree = tree::HostTree { root };
                &host_tree
            }
        };
        let mut sources = copy::find_sources(tree, &paths, from.is_none())?;
        sources.splice(0..0, data);
        let content = copy::content_digest(tree, &sources, &exclude, owners)?;
        let created_by = format!(
            "/bin/sh -c #(nop) {what} {}{} in {dest} ",
            node.flags
                .iter()
                .map(|f| format!("--{f} "))
                .collect::<String>(),
            &content[..content.len().min(71)]
        );
        let key = cache::key(
            &state.id,
            // The flags as expanded: `--chown=$U` must miss when U changes.
            &format!(
                "{created_by}\n{paths:?}\n{urls:?}\n{chown:?} {chmod:?} {exclude_text:?} {}",
                c.parents
            ),
            &content,
        );
        if let Some(hit) = self.cached(&key, state, &created_by)? {
            return Ok(hit);
        }
        let work = tempfile::tempdir_in(&self.scratch)
            .map_err(|e| Error::io("create scratch in", &self.scratch, e))?;
        let mut ov = fs::Overlay::mount(&self.lowers(state), work.path())?;
        let owner = chown
            .as_deref()
            .map(|c| fs::parse_chown(&ov.merged, c))
            .transpose()?;
        let workdir = state.workdir();
        let mut opts = copy::CopyOptions {
            dest,
            workdir: &workdir,
            owner,
            chmod,
            parents: c.parents,
            extract: c.add && c.unpack != Some(false),
            pool: None,
        };
        let pool = copy::Pool::new(self.b.root.join("files"));
        let new_tree = match from {
            None => new_tree_dest(&ov.merged, tree, &sources, &opts)?,
            Some(_) => None,
        };
        match new_tree {
            // A directory the image does not have: written into the upper directory itself
            // (the overlay unmounted), its files linked from the pool when an earlier build
            // wrote them, so that a rebuild after a small change makes few inodes.
            Some(resolved) => {
                ov.unmount()?;
                opts.dest = resolved;
                opts.pool = Some(&pool);
                copy::copy_into(&ov.upper, tree, &sources, &opts, &exclude)?;
            }
            None => {
                copy::copy_into(&ov.merged, tree, &sources, &opts, &exclude)?;
                ov.unmount()?;
            }
        }
        drop(from_mount);
        let layer = self.layer_moving(&ov.upper, state)?;
        let next = state.clone();
        self.commit(next, created_by, Some(layer), &key)
    }

    fn run(
        &mut self,
        state: &State,
        command: &CommandLine,
        heredocs: &[Heredoc],
        mounts: &[instructions::MountSpec],
        network: Option<&str>,
    ) -> Result<State> {
        let vars = state.vars();
        let mut script_file = None;
        let argv = match command {
            CommandLine::Exec(v) => v.clone(),
            CommandLine::Shell(s) => match script(s, heredocs) {
                Script::Inline(text) => {
                    let mut v = state.shell();
                    v.push(text);
                    v
                }
                Script::File { name, content } => {
                    let target = format!("/dev/pipes/{name}");
                    script_file = Some((content, target.clone()));
                    vec![target]
                }
            },
        };
        if state.chains.is_empty() {
            return Err(no_files_to_run(&argv));
        }
        // Build args reach the command's environment (not the image's); ENV wins.
        let env_names: HashSet<String> = state
            .env_list()
            .iter()
            .filter_map(|e| e.split_once('=').map(|(k, _)| k.to_string()))
            .collect();
        let mut args_env: Vec<String> = state
            .args
            .iter()
            .filter(|(k, _)| !env_names.contains(*k))
            .filter_map(|(k, v)| Some(format!("{k}={}", v.clone()?)))
            .collect();
        let proxies: Vec<String> = PROXY_ARGS
            .iter()
            .filter(|p| !env_names.contains(**p) && !state.args.contains_key(**p))
            .filter_map(|p| Some(format!("{p}={}", self.opts.build_args.get(*p)?.clone()?)))
            .collect();
        let mut env = state.env_list();
        env.extend(args_env.iter().cloned());
        env.extend(proxies);
        let created_by = if args_env.is_empty() {
            argv.join(" ")
        } else {
            args_env.sort();
            format!(
                "|{} {} {}",
                args_env.len(),
                args_env.join(" "),
                argv.join(" ")
            )
        };
        let network = match network.unwrap_or("default") {
            "default" => self.opts.network.clone(),
            n => n.to_string(),
        };
        // The leases of cache mounts are held until the step's container is gone.
        let run_mounts = self.run_mounts(mounts, &vars)?;
        let (mut binds, tmpfs, mut mounts_key) = (
            run_mounts.binds.clone(),
            run_mounts.tmpfs.clone(),
            run_mounts.key.clone(),
        );
        if let Some((content, target)) = &script_file {
            // A file of its own: stages built at once may run the same script.
            let mut file = tempfile::Builder::new()
                .prefix("heredoc-")
                .tempfile_in(&self.scratch)
                .map_err(|e| Error::io("create a file in", &self.scratch, e))?;
            std::io::Write::write_all(&mut file, content.as_bytes())
                .map_err(|e| Error::io("write", file.path(), e))?;
            let host = file
                .into_temp_path()
                .keep()
                .map_err(|e| Error::io("keep", &self.scratch, e.error))?;
            std::fs::set_permissions(&host, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(|e| Error::io("chmod", &host, e))?;
            binds.push(Bind {
                source: host,
                target: target.clone(),
                readonly: true,
            });
            mounts_key.push_str(&format!("script {target} {content:?}\n"));
        }
        let key = cache::key(
            &state.id,
            &format!("RUN {}\n{env:?}\n{network}\n{mounts_key}", json_text(&argv)),
            "",
        );
        if let Some(hit) = self.cached(&key, state, &created_by)? {
            return Ok(hit);
        }
        let spec = RunSpec {
            image: state.id.to_string(),
            argv: argv.clone(),
            env,
            user: state.cfg.oci.user().clone().unwrap_or_default(),
            workdir: state.workdir(),
            network,
            binds,
            tmpfs,
            keep: !self.opts.remove && !self.opts.force_remove,
            cancel: self.opts.cancel.clone(),
        };
        let mut layer = None;
        let mut events = Vec::new();
        let started = Instant::now();
        let code = {
            let out = &mut *self.out;
            let mut event = |e: RunEvent| match e {
                RunEvent::Created(id) => {
                    out(Message::Stream(format!(
                        " ---> Running in {}\n",
                        &id[..id.len().min(12)]
                    )));
                }
                RunEvent::Output(bytes) => {
                    out(Message::Stream(String::from_utf8_lossy(bytes).into_owned()));
                }
                RunEvent::Removed(id) => events.push(id.to_string()),
            };
            let store = &self.b.store;
            let parent = state.chains.last();
            let mut upper = |dir: &Path| -> Result<()> {
                layer = Some(berth_image::layer_from_dir::store_layer_from_dir(
                    store,
                    dir,
                    parent,
                    run_mount_points(),
                )?);
                Ok(())
            };
            self.runner.run(&spec, &mut event, &mut upper)?
        };
        for id in events {
            self.say(format!(
                "Removing intermediate container {}\n",
                &id[..id.len().min(12)]
            ));
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            code,
            "RUN step"
        );
        if self.opts.cancel.load(Ordering::Relaxed) {
            return Err(Error::Step(
                "the build was cancelled: the client went away".into(),
            ));
        }
        if code != 0 {
            return Err(Error::Command {
                command: argv.join(" "),
                code,
            });
        }
        let layer =
            layer.ok_or_else(|| Error::Step("the RUN step's changes were not collected".into()))?;
        let next = state.clone();
        self.commit(next, created_by, Some(layer), &key)
    }

    /// RUN --mount: cache directories (kept under the builder's root, by id), binds from
    /// the context or a stage, tmpfs, secrets. Returns the binds, tmpfs targets and what
    /// of them goes into the cache key.
    fn run_mounts(
        &mut self,
        mounts: &[instructions::MountSpec],
        vars: &Env,
    ) -> Result<RunMounts<'a>> {
        let mut leases = Vec::new();
        let mut binds = Vec::new();
        let mut tmpfs = Vec::new();
        let mut key = String::new();
        for m in mounts {
            let get = |k: &str| -> Result<Option<String>> {
                m.get(k)
                    .map(|v| {
                        shell::expand(v, vars, self.escape).map_err(|e| Error::Step(e.to_string()))
                    })
                    .transpose()
            };
            let target = get("target")?.unwrap_or_default();
            let kind = m.get("type").map(String::as_str).unwrap_or("bind");
            match kind {
                "cache" => {
                    let id = get("id")?.unwrap_or_else(|| target.clone());
                    let dir = self.b.root.join("mounts").join(mount_dir_name(&id));
                    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
                    let b: &'a Builder = self.b;
                    let dir = match get("sharing")?.as_deref().unwrap_or("shared") {
                        "shared" => dir,
                        "locked" => {
                            leases.extend(b.lease(&id, true));
                            dir
                        }
                        "private" => match b.lease(&id, false) {
                            Some(l) => {
                                leases.push(l);
                                dir
                            }
                            // Another RUN writes to it now: this one gets a fresh one.
                            None => tempfile::Builder::new()
                                .prefix("cache-")
                                .tempdir_in(&self.scratch)
                                .map_err(|e| Error::io("create in", &self.scratch, e))?
                                .keep(),
                        },
                        other => {
                            return Err(Error::Step(format!(
                                "invalid cache sharing mode {other:?} (shared, private or locked)"
                            )))
                        }
                    };
                    binds.push(Bind {
                        source: dir,
                        target: target.clone(),
                        readonly: false,
                    });
                    key.push_str(&format!("cache {id} {target}\n"));
                }
                "tmpfs" => {
                    tmpfs.push(target.clone());
                    key.push_str(&format!("tmpfs {target}\n"));
                }
                "bind" => {
                    let source = get("source")?.unwrap_or_else(|| "/".into());
                    let readonly = !matches!(
                        get("rw")?.as_deref().or(get("readwrite")?.as_deref()),
                        Some("true")
                    );
                    let (root, content) = match get("from")? {
                        None => {
                            let s =
                                copy::find_sources(self.ctx, std::slice::from_ref(&source), true)?;
                            let digest =
                                copy::content_digest(self.ctx, &s, &Ignore::default(), true)?;
                            (self.ctx.unpacked()?.to_path_buf(), digest)
                        }
                        Some(f) => {
                            let (id, lowers) = self.root_of(&f)?;
                            // A stage's files are reached through a scratch overlay kept
                            // for the whole build.
                            let work = self.scratch.join(format!("bind-{}", self.mounts.len()));
                            let ov = fs::Overlay::mount(&lowers, &work)?;
                            let root = ov.merged.clone();
                            self.mounts.push(ov);
                            (root, id.to_string())
                        }
                    };
                    let host = fs::resolve_in_root(&root, &source, true)?;
                    binds.push(Bind {
                        source: host,
                        target: target.clone(),
                        readonly,
                    });
                    key.push_str(&format!("bind {source} {target} {readonly} {content}\n"));
                }
                "secret" => {
                    let id = get("id")?.unwrap_or_else(|| {
                        Path::new(&target)
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    });
                    let target = if target.is_empty() {
                        format!("/run/secrets/{id}")
                    } else {
                        target.clone()
                    };
                    match self.opts.secrets.get(&id) {
                        Some(path) => binds.push(Bind {
                            source: path.clone(),
                            target: target.clone(),
                            readonly: true,
                        }),
                        None if get("required")?.as_deref() == Some("true") => {
                            return Err(Error::Step(format!("secret {id} not found (give it with berth build --secret id={id},src=FILE)")));
                        }
                        None => {}
                    }
                    // A secret's content is never part of the key (BuildKit's rule).
                    key.push_str(&format!("secret {id} {target}\n"));
                }
                other => {
                    return Err(Error::Step(format!(
                        "RUN --mount=type={other} is not supported by berth"
                    )))
                }
            }
        }
        Ok(RunMounts {
            binds,
            tmpfs,
            key,
            _leases: leases,
        })
    }
}

/// Where a COPY of one directory of the context makes a directory the image (mounted at
/// `merged`) does not have yet: that path, resolved in the image, once its parent is made
/// or copied up through the overlay (with the attributes it has), so that the new tree can
/// be written into the upper directory alone. None for any other COPY.
fn new_tree_dest(
    merged: &Path,
    tree: &dyn tree::Tree,
    sources: &[copy::Source],
    opts: &copy::CopyOptions,
) -> Result<Option<String>> {
    use std::os::unix::fs::MetadataExt;
    let [copy::Source::Path { path, .. }] = sources else {
        return Ok(None);
    };
    if opts.parents || !tree.stat(path).is_some_and(|m| m.is_dir()) {
        return Ok(None);
    }
    let dest = if opts.dest.starts_with('/') {
        opts.dest.clone()
    } else {
        format!("{}/{}", opts.workdir.trim_end_matches('/'), opts.dest)
    };
    let host = fs::resolve_in_root(merged, &crate::ignore::clean(&dest), true)?;
    let Ok(rel) = host.strip_prefix(merged) else {
        return Ok(None);
    };
    let rel = rel.to_string_lossy().into_owned();
    if rel.is_empty() || std::fs::symlink_metadata(&host).is_ok() {
        return Ok(None);
    }
    let parent = match rel.rsplit_once('/') {
        Some((p, _)) => format!("/{p}"),
        None => "/".to_string(),
    };
    let made = fs::mkdir_all(merged, &parent, opts.owner)?;
    // A change of owner to the same owner copies the directory (and those above it) up.
    let m = std::fs::symlink_metadata(&made).map_err(|e| Error::io("stat", &made, e))?;
    fs::lchown(&made, m.uid(), m.gid())?;
    Ok(Some(format!("/{rel}")))
}

/// A RUN in a stage without a single file (FROM scratch, nothing copied in yet): there is
/// nothing to run, said as Docker's runtime says it (`exec: "/bin/sh": stat /bin/sh: no
/// such file or directory`) and why, before any container is made.
fn no_files_to_run(argv: &[String]) -> Error {
    let program = argv.first().map(String::as_str).unwrap_or_default();
    Error::Step(format!(
        "exec: {program:?}: stat {program}: no such file or directory: the stage is FROM scratch and has no files yet; COPY in the shell or program that RUN runs first"
    ))
}

/// What a RUN container's upper directory holds that is not the step's doing: the mount
/// points the runtime made (/proc, /sys, /dev while empty; /etc/hosts, /etc/hostname and
/// /etc/resolv.conf while empty files, as the network's bind mounts leave them). Docker keeps
/// them in a layer of their own for the same reason.
fn run_mount_points() -> Vec<PathBuf> {
    [
        "proc",
        "sys",
        "dev",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

/// What a shell-form RUN runs.
#[derive(Debug, PartialEq, Eq)]
enum Script {
    /// A command line for the SHELL.
    Inline(String),
    /// A lone heredoc that starts with `#!`: a file executed as it is (BuildKit writes it
    /// to /dev/pipes/NAME and runs it).
    File { name: String, content: String },
}

/// A RUN's shell script: the command, and its heredocs as the shell reads them. A RUN that
/// is only a heredoc runs the heredoc's text, or executes it when it has a `#!` line
/// (BuildKit's rules). The builder expands nothing in a RUN: the shell does, with the
/// build args in its environment.
fn script(cmd: &str, heredocs: &[Heredoc]) -> Script {
    let only = heredocs.len() == 1 && {
        let c = cmd.trim();
        c.starts_with("<<") && !c.contains(char::is_whitespace)
    };
    if only {
        let h = &heredocs[0];
        if h.content.starts_with("#!") {
            return Script::File {
                name: h.name.clone(),
                content: h.content.clone(),
            };
        }
        return Script::Inline(h.content.clone());
    }
    let mut s = cmd.to_string();
    for h in heredocs {
        s.push('\n');
        s.push_str(&h.content);
        s.push_str(&h.name);
    }
    Script::Inline(s)
}

/// EXPOSE's ports: `80`, `80/udp`, `8000-8002/tcp`.
fn expand_ports(p: &str) -> Result<Vec<String>> {
    let (range, proto) = match p.split_once('/') {
        Some((r, pr)) => (r, pr.to_ascii_lowercase()),
        None => (p, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(Error::Step(format!("invalid proto: {proto}")));
    }
    let bad = || Error::Step(format!("invalid containerPort: {range}"));
    let (a, b) = match range.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let n = range.parse::<u16>().map_err(|_| bad())?;
            (n, n)
        }
    };
    if b < a {
        return Err(bad());
    }
    Ok((a..=b).map(|n| format!("{n}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(expand_ports("80").expect("p"), vec!["80/tcp"]);
        assert_eq!(expand_ports("53/UDP").expect("p"), vec!["53/udp"]);
        assert_eq!(expand_ports("1-3/tcp").expect("p").len(), 3);
        assert!(expand_ports("x").is_err());
        assert!(expand_ports("80/icmp").is_err());
    }

    #[test]
    fn heredoc_scripts() {
        let h = |name: &str, content: &str| Heredoc {
            name: name.into(),
            content: content.into(),
            expand: true,
            chomp: false,
            fd: None,
        };
        // Not expanded by the builder: the shell does it.
        assert_eq!(
            script("<<EOF", &[h("EOF", "echo $A\n")]),
            Script::Inline("echo $A\n".into())
        );
        assert_eq!(
            script("cat <<EOF > /f", &[h("EOF", "hi\n")]),
            Script::Inline("cat <<EOF > /f\nhi\nEOF".into())
        );
        assert_eq!(
            script("<<PY", &[h("PY", "#!/usr/bin/env python3\nprint(1)\n")]),
            Script::File {
                name: "PY".into(),
                content: "#!/usr/bin/env python3\nprint(1)\n".into()
            }
        );
    }
}
