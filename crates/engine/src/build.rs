//! `docker build`: the builder (crates/builder) with the engine's containers for its RUN
//! steps. A RUN step is an ordinary container (created, attached, started, waited for and
//! removed through the same path as `docker run`, so it shows in `docker ps -a` while it
//! runs, as under dockerd's legacy builder), on the network the build gives (the default
//! bridge unless it asks for another). Its upper directory becomes the step's layer.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::containers::request::{CreateBody, HealthConfig, HostConfig, StrSlice};
use crate::containers::stream::{read_frame, AttachOptions, Attached};
use crate::containers::WaitCondition;
use crate::Engine;
use berth_builder::{Message, Options, RunEvent, RunSpec, Runner};
use berth_image::{Digest, Removal};

/// The engine as the builder's runner; `host`: the HostConfig every RUN container starts
/// from (the build's resources, extra hosts, cgroup parent, as moby's
/// hostConfigFromOptions).
struct Containers<'a> {
    engine: &'a Engine,
    host: &'a HostConfig,
}

fn step_error(e: crate::Error) -> berth_builder::Error {
    berth_builder::Error::Step(e.to_string())
}

impl Runner for Containers<'_> {
    fn run(
        &self,
        spec: &RunSpec,
        event: &mut dyn FnMut(RunEvent),
        upper: &mut dyn FnMut(&Path) -> berth_builder::Result<()>,
    ) -> berth_builder::Result<i32> {
        let engine = self.engine;
        let binds: Vec<String> = spec
            .binds
            .iter()
            .map(|b| {
                let mode = if b.readonly { ":ro" } else { "" };
                format!("{}:{}{mode}", b.source.display(), b.target)
            })
            .collect();
        let body = CreateBody {
            image: spec.image.clone(),
            entrypoint: Some(StrSlice(spec.argv.clone())),
            env: Some(spec.env.clone()),
            user: spec.user.clone(),
            working_dir: spec.workdir.clone(),
            attach_stdout: true,
            attach_stderr: true,
            // A step's container is no service: no probes.
            healthcheck: Some(HealthConfig {
                test: vec!["NONE".into()],
                ..HealthConfig::default()
            }),
            host_config: HostConfig {
                network_mode: spec.network.clone(),
                binds,
                tmpfs: spec
                    .tmpfs
                    .iter()
                    .map(|t| (t.clone(), String::new()))
                    .collect(),
                ..self.host.clone()
            },
            ..CreateBody::default()
        };
        let record = engine
            .create_container(&body, None, None)
            .map_err(step_error)?;
        let id = record.id.clone();
        event(RunEvent::Created(&id));
        let done = AtomicBool::new(false);
        let result = std::thread::scope(|scope| {
            // The client may go while the step runs silently: its container is killed then.
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    if spec.cancel.load(Ordering::Relaxed) {
                        let _ = engine.kill_container(&id, "KILL");
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            });
            let r = run_created(engine, &id, event, upper);
            done.store(true, Ordering::Relaxed);
            r
        });
        if !spec.keep || result.is_err() {
            // With its anonymous volumes (an image VOLUME's): what a RUN writes there is
            // discarded, as under dockerd.
            match engine.remove_container_with(&id, true, true) {
                Ok(()) => event(RunEvent::Removed(&id)),
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "removing a build step's container")
                }
            }
        }
        result
    }
}

/// Attach, start, stream the output, wait; the upper directory on success.
fn run_created(
    engine: &Engine,
    id: &str,
    event: &mut dyn FnMut(RunEvent),
    upper: &mut dyn FnMut(&Path) -> berth_builder::Result<()>,
) -> berth_builder::Result<i32> {
    let opts = AttachOptions {
        stdout: true,
        stderr: true,
        ..AttachOptions::default()
    };
    let (record, attached) = engine.attach_container(id, opts).map_err(step_error)?;
    engine.start_container(id).map_err(step_error)?;
    let stream = match attached {
        Attached::AtStart(rx) => rx
            .recv()
            .map_err(|_| {
                berth_builder::Error::Step(
                    "the step's container ended before its output could be read".into(),
                )
            })?
            .map_err(step_error)?,
        Attached::Now(s, _) => s,
    };
    let mut stream = stream;
    while let Ok(Some((kind, payload))) = read_frame(&mut stream) {
        if kind == berth_shim_protocol::STDOUT || kind == berth_shim_protocol::STDERR {
            event(RunEvent::Output(&payload));
        }
    }
    let code = engine
        .wait_container(&record, WaitCondition::NotRunning, &AtomicBool::new(false))
        .map_err(step_error)?;
    if code == 0 {
        upper(&engine.containers.dir(id).join("upper"))?;
    }
    Ok(code)
}

impl Engine {
    /// Build the context `input` with `opts`, each RUN step's container made from
    /// `step_host` (its network and mounts set per step); the builder's messages go to `out`.
    pub fn build(
        &self,
        input: impl Read,
        opts: &Options,
        step_host: &HostConfig,
        out: &mut dyn FnMut(Message),
    ) -> berth_builder::Result<Digest> {
        let runner = Containers {
            engine: self,
            host: step_host,
        };
        let mut out = |m: Message| match m {
            Message::Created(id) => self.image_event("create", id.as_str(), id.as_str()),
            other => out(other),
        };
        let id = self.builder.build(input, opts, &runner, &mut out)?;
        for tag in &opts.tags {
            self.image_event(
                "tag",
                id.as_str(),
                &tag.clone().with_default_tag().familiar_string(),
            );
        }
        Ok(id)
    }

    /// After `docker rmi` deleted images: their build parents that nothing else holds (no
    /// tag, no container, no other child) go too, as dockerd deletes a removed image's
    /// untagged parents.
    pub(crate) fn remove_build_parents(&self, removed: &[Removal]) -> Vec<Removal> {
        let entries = self.builder.cache_entries();
        let parent_of = |id: &Digest| {
            entries
                .iter()
                .find(|e| &e.image == id)
                .and_then(|e| e.parent.clone())
        };
        let mut out = Vec::new();
        let mut todo: Vec<Digest> = removed
            .iter()
            .filter_map(|r| match r {
                Removal::Deleted(id) => Some(id.clone()),
                Removal::Untagged(_) => None,
            })
            .collect();
        while let Some(id) = todo.pop() {
            let Some(parent) = parent_of(&id) else {
                continue;
            };
            let Ok(image) = self.images.resolve(parent.as_str()) else {
                continue;
            };
            let used = self
                .containers
                .list()
                .iter()
                .any(|c| c.image == parent.as_str());
            let other_child = entries.iter().any(|e| {
                e.parent.as_ref() == Some(&parent)
                    && e.image != id
                    && self.images.resolve(e.image.as_str()).is_ok()
            });
            if !image.tags.is_empty() || used || other_child {
                continue;
            }
            if let Ok(r) = self.images.remove(parent.as_str(), true) {
                out.extend(r);
                todo.push(parent);
            }
        }
        out
    }

    /// `docker builder prune`: the keys of the cache entries dropped.
    pub fn prune_build_cache(
        &self,
        opts: &berth_builder::PruneOptions,
    ) -> berth_builder::Result<Vec<String>> {
        self.builder.prune(opts)
    }
}
