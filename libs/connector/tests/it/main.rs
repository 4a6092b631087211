//! The connector library against the real NATS JetStream on 127.0.0.1:4222;
//! every test in its own namespace.

mod binaries;
mod publisher;
mod streams;

use mcr_connector::stream::{DEAD_LETTER_STREAM, RECORDS_STREAM};

/// Deletes a test's streams once it passed, so runs do not pile data up on
/// the shared server (a failed test leaves them to look at).
pub async fn remove_streams(namespace: &str) {
    let Ok(client) = async_nats::connect("nats://127.0.0.1:4222").await else {
        return;
    };
    let jetstream = async_nats::jetstream::new(client);
    for stream in [RECORDS_STREAM, DEAD_LETTER_STREAM] {
        // Already gone or never created: nothing to clean.
        let _ = jetstream
            .delete_stream(format!("{namespace}_{stream}"))
            .await;
    }
}
