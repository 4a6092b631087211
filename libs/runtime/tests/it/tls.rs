//! gRPC TLS and mutual TLS through the runtime's own server start-up and the
//! shared client endpoint, with certificate authorities the test makes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use mcr_runtime::settings::Settings;
use mcr_runtime::tls::{ClientTlsSettings, error_chain};
use mcr_runtime::{Application, McrService, ServiceContext, ServiceSpec, StartupError};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::certificates::{Authority, Leaf};

#[derive(Debug, Default, Clone, Deserialize)]
struct NoConfig {}

/// A service with nothing but the runtime's health and reflection.
#[derive(Debug)]
struct Bare;

impl McrService for Bare {
    type Config = NoConfig;

    const SPEC: ServiceSpec = ServiceSpec {
        name: "tls-test",
        config_section: "tls_test",
        grpc_service_name: "mcr.test.v1.Bare",
        default_grpc_port: 0,
        default_admin_port: 0,
    };

    async fn routes(
        _context: ServiceContext<Self::Config>,
    ) -> Result<tonic::service::Routes, StartupError> {
        Ok(tonic::service::Routes::default())
    }
}

fn environment(extra: &[(&str, &Path)]) -> HashMap<String, String> {
    let namespace = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut environment: HashMap<String, String> = [
        ("MCR_GRPC__HOST", "127.0.0.1".to_owned()),
        ("MCR_ADMIN__HOST", "127.0.0.1".to_owned()),
        ("MCR_NATS__NAMESPACE", namespace),
        // Nothing here needs a database; keep the shared PostgreSQL untouched.
        ("MCR_DATABASE__PORT", "1".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    for (name, path) in extra {
        environment.insert((*name).to_owned(), path.display().to_string());
    }
    environment
}

/// Starts the bare service with `tls` settings; returns its port and the
/// token that stops it.
async fn serve(tls: &[(&str, &Path)]) -> (u16, CancellationToken) {
    let settings = Settings::<NoConfig>::load(&Bare::SPEC, &environment(tls)).unwrap();
    let application = Application::build::<Bare>(settings).await.unwrap();
    let port = application.grpc_port();
    let stop = CancellationToken::new();
    tokio::spawn(application.run_until_stopped(stop.clone()));
    (port, stop)
}

/// One health check over a channel built the way every service builds them.
async fn health_check(url: &str, tls: &ClientTlsSettings) -> Result<(), String> {
    let channel = mcr_runtime::tls::endpoint("test.url", url, tls)
        .map_err(|error| error.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(3))
        .connect()
        .await
        .map_err(|error| error_chain(&error))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
        .map_err(|status| format!("{status:?}"))
}

fn trusting(authority: &Authority, certificate: Option<&Leaf>) -> ClientTlsSettings {
    ClientTlsSettings {
        ca_path: Some(authority.ca_path.clone()),
        cert_path: certificate.map(|leaf| leaf.cert_path.clone()),
        key_path: certificate.map(|leaf| leaf.key_path.clone()),
        require_tls: true,
    }
}

#[tokio::test]
async fn a_tls_server_answers_clients_trusting_its_ca_and_no_one_else() {
    let directory = tempfile::tempdir().unwrap();
    let authority = Authority::new(directory.path(), "platform");
    let rogue = Authority::new(directory.path(), "rogue");
    let server = authority.server("server");
    let (port, stop) = serve(&[
        ("MCR_GRPC__TLS__CERT_PATH", &server.cert_path),
        ("MCR_GRPC__TLS__KEY_PATH", &server.key_path),
    ])
    .await;

    let url = format!("https://127.0.0.1:{port}");
    health_check(&url, &trusting(&authority, None))
        .await
        .expect("a client trusting the CA is answered");
    let by_name = format!("https://localhost:{port}");
    health_check(&by_name, &trusting(&authority, None))
        .await
        .expect("the certificate names localhost too");

    let untrusting = health_check(&url, &trusting(&rogue, None)).await;
    let error = untrusting.expect_err("a client trusting another CA must not connect");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    let plaintext = health_check(
        &format!("http://127.0.0.1:{port}"),
        &ClientTlsSettings::default(),
    )
    .await;
    assert!(plaintext.is_err(), "a plaintext client must not be served");
    stop.cancel();
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_a_certificate_from_it_are_served() {
    let directory = tempfile::tempdir().unwrap();
    let authority = Authority::new(directory.path(), "platform");
    let rogue = Authority::new(directory.path(), "rogue");
    let server = authority.server("server");
    let (port, stop) = serve(&[
        ("MCR_GRPC__TLS__CERT_PATH", &server.cert_path),
        ("MCR_GRPC__TLS__KEY_PATH", &server.key_path),
        ("MCR_GRPC__TLS__CLIENT_CA_PATH", &authority.ca_path),
    ])
    .await;
    let url = format!("https://127.0.0.1:{port}");

    let anonymous = health_check(&url, &trusting(&authority, None)).await;
    assert!(
        anonymous.is_err(),
        "a client without a certificate must be refused"
    );
    let foreign = rogue.client("foreign-client");
    let with_foreign = health_check(&url, &trusting(&authority, Some(&foreign))).await;
    assert!(
        with_foreign.is_err(),
        "a certificate from another CA must be refused"
    );
    let client = authority.client("consent");
    health_check(&url, &trusting(&authority, Some(&client)))
        .await
        .expect("a certificate signed by the client CA is served");
    stop.cancel();
}

#[test]
fn unusable_tls_files_stop_start_up_naming_the_setting() {
    let directory = tempfile::tempdir().unwrap();
    let authority = Authority::new(directory.path(), "platform");
    let server = authority.server("server");
    let other = authority.server("other");
    let load = |extra: &[(&str, &Path)]| {
        Settings::<NoConfig>::load(&Bare::SPEC, &environment(extra))
            .map(|_| ())
            .map_err(|error| error.to_string())
    };

    let missing = directory.path().join("missing.pem");
    let error = load(&[
        ("MCR_GRPC__TLS__CERT_PATH", &missing),
        ("MCR_GRPC__TLS__KEY_PATH", &server.key_path),
    ])
    .expect_err("a missing certificate");
    assert!(error.contains("grpc.tls.cert_path"), "{error}");

    let error = load(&[
        ("MCR_GRPC__TLS__CERT_PATH", &server.cert_path),
        ("MCR_GRPC__TLS__KEY_PATH", &server.cert_path),
    ])
    .expect_err("a certificate is not a key");
    assert!(error.contains("grpc.tls.key_path"), "{error}");

    let error = load(&[
        ("MCR_GRPC__TLS__CERT_PATH", &server.cert_path),
        ("MCR_GRPC__TLS__KEY_PATH", &other.key_path),
    ])
    .expect_err("a key that does not fit the certificate");
    assert!(error.contains("grpc.tls"), "{error}");

    let error = load(&[("MCR_GRPC__CLIENT_TLS__CA_PATH", &server.key_path)])
        .expect_err("a key is not a CA certificate");
    assert!(error.contains("grpc.client_tls.ca_path"), "{error}");

    let error = load(&[("MCR_DATABASE__TLS__CA_PATH", &missing)]).expect_err("missing CA");
    assert!(error.contains("database.tls.ca_path"), "{error}");
    let error = load(&[("MCR_NATS__TLS__CA_PATH", &missing)]).expect_err("missing CA");
    assert!(error.contains("nats.tls.ca_path"), "{error}");
    let error = load(&[("MCR_REDIS__TLS__CA_PATH", &missing)]).expect_err("missing CA");
    assert!(error.contains("redis.tls.ca_path"), "{error}");

    load(&[
        ("MCR_GRPC__TLS__CERT_PATH", &server.cert_path),
        ("MCR_GRPC__TLS__KEY_PATH", &server.key_path),
        ("MCR_GRPC__TLS__CLIENT_CA_PATH", &authority.ca_path),
        ("MCR_GRPC__CLIENT_TLS__CA_PATH", &authority.ca_path),
        ("MCR_DATABASE__TLS__CA_PATH", &authority.ca_path),
    ])
    .expect("usable files load");
}
