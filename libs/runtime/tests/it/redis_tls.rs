//! Redis over TLS (`rediss://`) with a password, against a `redis-server` of
//! the test's own on a spare port, with a certificate the test makes.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mcr_runtime::redis_cache::{RedisCache, RedisTlsSettings};
use mcr_runtime::settings::RedisSettings;

use crate::certificates::Authority;

/// A redis-server process, killed when dropped.
struct RedisServer(Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cache(url: String, ca_path: Option<std::path::PathBuf>) -> RedisCache {
    RedisCache::new(&RedisSettings {
        url: secrecy::SecretString::from(url),
        key_prefix: "tls-test:".to_owned(),
        timeout_ms: 2000,
        tls: RedisTlsSettings {
            ca_path,
            ..RedisTlsSettings::default()
        },
    })
    .unwrap()
}

#[tokio::test]
async fn rediss_with_the_ca_and_the_password_connects_and_nothing_less_does() {
    let directory = tempfile::tempdir().unwrap();
    let authority = Authority::new(directory.path(), "redis");
    let certificate = authority.server("redis-server");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", "0"])
        .args(["--tls-port", &port.to_string()])
        .arg("--tls-cert-file")
        .arg(&certificate.cert_path)
        .arg("--tls-key-file")
        .arg(&certificate.key_path)
        .arg("--tls-ca-cert-file")
        .arg(&authority.ca_path)
        .args(["--tls-auth-clients", "no", "--requirepass", "s3cret-Pa55"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(directory.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    let _server = RedisServer(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    let url = |password: &str| format!("rediss://:{password}@127.0.0.1:{port}/0");
    cache(url("s3cret-Pa55"), Some(authority.ca_path.clone()))
        .ping()
        .await
        .expect("the CA and the password are enough");
    assert!(
        cache(url("guess"), Some(authority.ca_path.clone()))
            .ping()
            .await
            .is_err(),
        "a wrong password must not be served"
    );
    assert!(
        cache(url("s3cret-Pa55"), None).ping().await.is_err(),
        "a client not trusting the server's CA must not connect"
    );
    let plaintext = RedisCache::new(&RedisSettings {
        url: secrecy::SecretString::from(format!("redis://:s3cret-Pa55@127.0.0.1:{port}/0")),
        key_prefix: "tls-test:".to_owned(),
        timeout_ms: 1000,
        tls: RedisTlsSettings::default(),
    })
    .unwrap();
    assert!(
        plaintext.ping().await.is_err(),
        "plaintext must not be served"
    );
}
