//! What a pull or a push works with: the client, the image store, the user's credentials
//! and where progress goes. `pull.rs` and `push.rs` each add one operation to it.

use std::sync::Arc;

use berth_image::ImageStore;

use crate::client::Client;
use crate::progress::Sink;
use crate::Credentials;

pub struct Transfer {
    pub client: Arc<Client>,
    pub store: Arc<ImageStore>,
    pub credentials: Credentials,
    pub progress: Sink,
}
