//! The connector library against the real NATS JetStream on 127.0.0.1:4222;
//! every test in its own namespace.

mod binaries;
mod publisher;
mod streams;
