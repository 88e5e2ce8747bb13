//! moby's JSON progress streams (load, pull, push) and when a failure is the response's
//! status rather than the stream's last message (see [`Rule`]).

use berth_api_types::image::JsonMessage;
use hyper::Response;
use tokio::sync::mpsc;

use super::body::{self, Body};
use super::error::{ApiError, ApiResult};

pub(super) enum Event {
    Message(Box<JsonMessage>),
    Failed(ApiError),
}

impl Event {
    /// A message (boxed: it is far larger than a failure).
    pub(super) fn message(m: JsonMessage) -> Event {
        Event::Message(Box::new(m))
    }
}

pub(super) type Sender = mpsc::UnboundedSender<Event>;

pub(super) fn channel() -> (Sender, mpsc::UnboundedReceiver<Event>) {
    mpsc::unbounded_channel()
}

/// Where a failure goes, as moby's image routes decide (api/server/router/image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rule {
    /// Pull and push: a failure before the first message is the response's status and
    /// moby's error body (`if !output.Flushed() { return err }`); after it, the stream's
    /// last message.
    StatusBeforeFirstMessage,
    /// Load: always a 200 stream, any failure its last message (postImagesLoad writes the
    /// error into the stream); the docker CLI prints it and exits 1.
    AlwaysStream,
}

/// moby's error message in a stream (streamformatter.FormatError).
fn error_line(e: &ApiError) -> JsonMessage {
    JsonMessage::failure(e.message.as_str(), None)
}

/// The response for the events `rx` will carry; it begins with the first of them, as
/// moby's begins with its first write.
pub(super) async fn respond(
    mut rx: mpsc::UnboundedReceiver<Event>,
    rule: Rule,
) -> ApiResult<Response<Body>> {
    let first = match rx.recv().await {
        Some(Event::Failed(e)) if rule == Rule::StatusBeforeFirstMessage => return Err(e),
        Some(Event::Failed(e)) => error_line(&e),
        Some(Event::Message(m)) => *m,
        // A load that found nothing to load (another platform's images): moby wrote nothing.
        None if rule == Rule::AlwaysStream => {
            let (resp, _) = body::streamed_async("application/json");
            return Ok(resp);
        }
        None => return Err(ApiError::internal("the operation ended without a result")),
    };
    let (resp, out) = body::streamed_async("application/json");
    tokio::spawn(async move {
        let _ = out.send(Ok(body::message_line(&first))).await;
        while let Some(event) = rx.recv().await {
            let line = match event {
                Event::Message(m) => *m,
                Event::Failed(e) => error_line(&e),
            };
            if out.send(Ok(body::message_line(&line))).await.is_err() {
                break;
            }
        }
    });
    Ok(resp)
}
