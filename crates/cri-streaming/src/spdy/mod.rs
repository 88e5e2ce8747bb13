//! SPDY/3.1 as moby/spdystream speaks it (the transport of client-go's remotecommand and
//! portforward): frames (frame.rs), header compression (zlib.rs, dictionary.rs) and the
//! server side of a connection's stream multiplexing (connection.rs).

pub mod connection;
pub(crate) mod dictionary;
pub mod frame;
#[cfg(test)]
pub(crate) mod testpeer;
pub mod zlib;

pub use connection::{IncomingStream, Session, StreamSink};
pub use frame::{Frame, FrameDecoder, FrameEncoder, FrameError, Headers, StreamId};
