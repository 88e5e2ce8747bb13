//! The Docker Engine API's bodies as types, the way moby's `api/types` packages sit below
//! both its HTTP routers and its daemon: the API server decodes requests into these and
//! encodes responses from them, and the engine takes the request types as its options
//! instead of raw JSON. Field names and JSON shapes follow moby's swagger.yaml for API 1.45;
//! where dockerd always emits a member (even at its zero value), so do these types.

pub mod container;
pub mod events;
pub mod exec;
pub mod image;
pub mod network;
pub mod storage;
pub mod system;
pub mod volume;
