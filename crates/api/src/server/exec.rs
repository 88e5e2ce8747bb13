//! `docker exec`: POST /containers/{id}/exec, POST /exec/{id}/start (hijacked, or
//! detached), GET /exec/{id}/json, POST /exec/{id}/resize.

use berth_engine::containers::exec::ExecRecord;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

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
    let id = ctx
        .blocking(move |e| Ok(e.create_exec(&name, &value)?))
        .await?;
    Ok(body::json(StatusCode::CREATED, &json!({"Id": id})))
}

pub(super) async fn start(
    ctx: &Ctx,
    id: String,
    req: hyper::Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let upgrade_asked = req.headers().contains_key(hyper::header::UPGRADE);
    let (parts, body_in) = req.into_parts();
    let value = body::read_json(body_in, MAX_BODY).await?;
    let detach = value["Detach"].as_bool().unwrap_or(false);
    if !detach && !upgrade_asked {
        return Err(ApiError::bad_request(
            "an attached exec start needs a hijacked connection (Upgrade: tcp)",
        ));
    }
    let size = value["ConsoleSize"]
        .as_array()
        .filter(|s| s.len() == 2)
        .and_then(|s| {
            Some((
                u16::try_from(s[0].as_u64()?).ok()?,
                u16::try_from(s[1].as_u64()?).ok()?,
            ))
        })
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
    let tty = value["Tty"].as_bool().unwrap_or(false);
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

fn inspect_json(e: &ExecRecord) -> Value {
    let args: Vec<String> =
        berth_engine::containers::string_list(&e.process["args"]).unwrap_or_default();
    json!({
        "ID": e.id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ProcessConfig": {
            "tty": e.tty,
            "entrypoint": args.first().cloned().unwrap_or_default(),
            "arguments": args.iter().skip(1).collect::<Vec<_>>(),
            "privileged": e.privileged,
            "user": e.user,
        },
        "OpenStdin": e.open_stdin,
        "OpenStderr": e.open_stderr,
        "OpenStdout": e.open_stdout,
        "CanRemove": false,
        "ContainerID": e.container_id,
        "DetachKeys": e.detach_keys.clone().unwrap_or_default(),
        "Pid": e.pid,
    })
}

pub(super) async fn inspect(ctx: &Ctx, id: String) -> ApiResult<Response<Body>> {
    let exec = ctx.blocking(move |e| Ok(e.execs.get(&id)?)).await?;
    Ok(body::json(StatusCode::OK, &inspect_json(&exec)))
}

pub(super) async fn resize(ctx: &Ctx, id: String) -> ApiResult<Response<Body>> {
    let (h, w) = super::hijack::terminal_size(ctx)?;
    ctx.blocking(move |e| Ok(e.resize_exec(&id, h, w)?)).await?;
    Ok(body::empty(StatusCode::CREATED))
}
