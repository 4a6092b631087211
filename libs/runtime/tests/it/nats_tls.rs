//! NATS over TLS with a password, against a `nats-server` of the test's own
//! on a spare port, with a certificate the test makes.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mcr_runtime::nats::{NatsBus, NatsSecuritySettings, NatsTlsSettings};
use mcr_runtime::settings::NatsSettings;
use secrecy::SecretString;

use crate::certificates::Authority;

const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A nats-server process, killed when dropped.
struct NatsServer {
    child: Child,
    port: u16,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn settings(port: u16) -> NatsSettings {
    NatsSettings {
        url: format!("nats://127.0.0.1:{port}"),
        namespace: String::new(),
        connect_timeout_ms: 1000,
    }
}

/// Whether the bus holds a connection within `limit`.
async fn connected_within(bus: &NatsBus, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if bus.is_connected() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bus.is_connected()
}

fn security(ca_path: Option<PathBuf>, password: &str) -> NatsSecuritySettings {
    NatsSecuritySettings {
        tls: NatsTlsSettings {
            require_tls: true,
            ca_path,
            ..NatsTlsSettings::default()
        },
        user: Some("aggregator".to_owned()),
        password: Some(SecretString::from(password)),
        ..NatsSecuritySettings::default()
    }
}

#[tokio::test]
async fn nats_over_tls_with_a_password_connects_only_with_the_ca_and_the_password() {
    if !std::path::Path::new(NATS_SERVER).exists() {
        panic!("{NATS_SERVER} is needed for this test (apt-get install nats-server)");
    }
    let directory = tempfile::tempdir().unwrap();
    let authority = Authority::new(directory.path(), "nats");
    let certificate = authority.server("nats-server");
    let port = spare_port();
    let child = Command::new(NATS_SERVER)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .args(["--user", "aggregator", "--pass", "s3cret-Pa55"])
        .arg("--tls")
        .arg("--tlscert")
        .arg(&certificate.cert_path)
        .arg("--tlskey")
        .arg(&certificate.key_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = NatsServer { child, port };

    let good = NatsBus::connect_with(
        &settings(server.port),
        &security(Some(authority.ca_path.clone()), "s3cret-Pa55"),
        "tls-test",
    )
    .await
    .unwrap();
    let wrong_password = NatsBus::connect_with(
        &settings(server.port),
        &security(Some(authority.ca_path.clone()), "guess"),
        "tls-test",
    )
    .await
    .unwrap();
    let untrusting = NatsBus::connect_with(
        &settings(server.port),
        &security(None, "s3cret-Pa55"),
        "tls-test",
    )
    .await
    .unwrap();

    assert!(
        connected_within(&good, Duration::from_secs(5)).await,
        "the CA and the password are enough to connect"
    );
    good.client()
        .publish("tls.check", "hello".into())
        .await
        .unwrap();
    good.client().flush().await.unwrap();
    assert!(
        !connected_within(&wrong_password, Duration::from_millis(500)).await,
        "a wrong password must not connect"
    );
    assert!(
        !untrusting.is_connected(),
        "a client not trusting the server's CA must not connect"
    );
}
