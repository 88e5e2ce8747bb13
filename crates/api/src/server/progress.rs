//! moby's JSON progress streams (load, pull, push): a failure before the first message is
//! the response's status; once messages flow, a failure is the stream's last message.

use hyper::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::body::{self, Body};
use super::error::{ApiError, ApiResult};

pub(super) enum Event {
    Message(Value),
    Failed(ApiError),
}

pub(super) type Sender = mpsc::UnboundedSender<Event>;

pub(super) fn channel() -> (Sender, mpsc::UnboundedReceiver<Event>) {
    mpsc::unbounded_channel()
}

/// The response for the events `rx` will carry.
pub(super) async fn respond(mut rx: mpsc::UnboundedReceiver<Event>) -> ApiResult<Response<Body>> {
    let first = match rx.recv().await {
        Some(Event::Failed(e)) => return Err(e),
        Some(Event::Message(m)) => m,
        None => return Err(ApiError::internal("the operation ended without a result")),
    };
    let (resp, out) = body::streamed_async("application/json");
    tokio::spawn(async move {
        let _ = out.send(Ok(body::message_line(&first))).await;
        while let Some(event) = rx.recv().await {
            let line = match event {
                Event::Message(m) => m,
                Event::Failed(e) => {
                    json!({"errorDetail": {"message": e.message}, "error": e.message})
                }
            };
            if out.send(Ok(body::message_line(&line))).await.is_err() {
                break;
            }
        }
    });
    Ok(resp)
}
