//! `docker exec`: POST /containers/{id}/exec, POST /exec/{id}/start (hijacked, or
//! detached), GET /exec/{id}/json, POST /exec/{id}/resize.

use berth_api_types::exec::{
    ExecConfig, ExecInspect, ExecProcessConfig, ExecStartConfig, IdResponse,
};
use berth_engine::containers::exec::ExecRecord;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};

use super::body::{self, Body};
use super::error::{ApiError, ApiResult};
use super::Ctx;

/// An exec request is a small JSON object.
const MAX_BODY: usize = 1024 * 1024;

pub(super) async fn create(
    ctx: &Ctx,
    name: String,
    body_in: Incoming,
) -> ApiResult<Response<Body>> {
    let value = body::read_json(body_in, MAX_BODY).await?;
    let config = ExecConfig::decode(&value).map_err(berth_engine::Error::from)?;
    let id = ctx
        .blocking(move |e| Ok(e.create_exec(&name, config)?))
        .await?;
    Ok(body::json(StatusCode::CREATED, &IdResponse { id }))
}

pub(super) async fn start(
    ctx: &Ctx,
    id: String,
    req: hyper::Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let upgrade_asked = req.headers().contains_key(hyper::header::UPGRADE);
    let (parts, body_in) = req.into_parts();
    let value = body::read_json(body_in, MAX_BODY).await?;
    let start = ExecStartConfig::decode(&value).map_err(berth_engine::Error::from)?;
    let detach = start.detach;
    if !detach && !upgrade_asked {
        return Err(ApiError::bad_request(
            "an attached exec start needs a hijacked connection (Upgrade: tcp)",
        ));
    }
    let size = start
        .console_size
        .and_then(|[h, w]| Some((u16::try_from(h).ok()?, u16::try_from(w).ok()?)))
        .filter(|(h, w)| *h > 0 && *w > 0);
    if detach {
        ctx.blocking(move |e| Ok(e.start_exec(&id, true).map(drop)?))
            .await?;
        return Ok(body::empty(StatusCode::OK));
    }
    // Refusals that Docker answers before the hijack; a failure of the process itself is
    // written into the stream, with exit code 126, as Docker does.
    let check = id.clone();
    let exec = ctx.blocking(move |e| Ok(e.exec_startable(&check)?)).await?;
    let detach_keys = super::hijack::parse_detach_keys(exec.detach_keys.as_deref())?;
    let engine = ctx.state.engine.clone();
    let upgrade = hyper::upgrade::on(hyper::Request::from_parts(parts, ()));
    // The stream is framed as the start request says, whatever terminal the process has
    // (dockerd's rule: SDKs start a terminal exec with {"Tty": false} to get frames).
    let tty = start.tty;
    tokio::spawn(async move {
        let exec_id = id.clone();
        let starter = engine.clone();
        let started = tokio::task::spawn_blocking(move || {
            let started = starter.start_exec(&exec_id, false)?;
            if let (true, Some((h, w))) = (started.0.tty, size) {
                // The process may be gone already; its size does not matter then.
                let _ = starter.resize_exec(&exec_id, h, w);
            }
            Ok::<_, berth_engine::Error>(started)
        })
        .await;
        let Ok(upgraded) = upgrade.await else {
            // The client left before the upgrade: the process still runs; its status is
            // still collected.
            if let Ok(Ok((_, Some(mut stream)))) = started {
                let execs = engine.execs.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    execs.exited(
                        &id,
                        berth_engine::containers::exec::exit_code_of(&mut stream),
                    )
                })
                .await;
            }
            return;
        };
        match started {
            Ok(Ok((exec, Some(stream)))) => {
                let execs = engine.execs.clone();
                let pump = super::hijack::Pump {
                    tty,
                    stdin: exec.open_stdin,
                    detach_keys,
                    on_exit: Some(Box::new(move |code| execs.exited(&id, code))),
                };
                let leftover = stream.buffer().to_vec();
                super::hijack::pump(upgraded, stream.into_inner(), leftover, pump).await;
            }
            other => {
                let msg = match other {
                    Ok(Err(e)) => format!("OCI runtime exec failed: {e}\n"),
                    Err(e) => format!("exec failed: {e}\n"),
                    Ok(Ok(_)) => "exec failed: no stream\n".to_string(),
                };
                engine.execs.exited(&id, 126);
                super::hijack::refuse(upgraded, tty, &msg).await;
            }
        }
    });
    Ok(super::hijack::switching_protocols(tty))
}

/// dockerd's ExecInspect of `e`.
fn inspect_of(e: &ExecRecord) -> ExecInspect {
    let mut args: Vec<String> =
        berth_engine::containers::string_list(&e.process["args"]).unwrap_or_default();
    let entrypoint = if args.is_empty() {
        String::new()
    } else {
        args.remove(0)
    };
    ExecInspect {
        id: e.id.clone(),
        running: e.running,
        exit_code: e.exit_code,
        process_config: ExecProcessConfig {
            tty: e.tty,
            entrypoint,
            arguments: args,
            privileged: Some(e.privileged),
            user: e.user.clone(),
        },
        open_stdin: e.open_stdin,
        open_stderr: e.open_stderr,
        open_stdout: e.open_stdout,
        can_remove: false,
        container_id: e.container_id.clone(),
        detach_keys: e.detach_keys.clone().unwrap_or_default(),
        pid: e.pid,
    }
}

pub(super) async fn inspect(ctx: &Ctx, id: String) -> ApiResult<Response<Body>> {
    let exec = ctx.blocking(move |e| Ok(e.execs.get(&id)?)).await?;
    Ok(body::json(StatusCode::OK, &inspect_of(&exec)))
}

pub(super) async fn resize(ctx: &Ctx, id: String) -> ApiResult<Response<Body>> {
    let (h, w) = super::hijack::terminal_size(ctx)?;
    ctx.blocking(move |e| Ok(e.resize_exec(&id, h, w)?)).await?;
    Ok(body::empty(StatusCode::CREATED))
}
