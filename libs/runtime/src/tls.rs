//! TLS for gRPC, on both sides, from settings: the server's certificate and
//! key (and, for mutual TLS, the CA its clients' certificates must chain to),
//! and the one function every service and the CLI build their channels with.
//!
//! Files are read and parsed when settings load, so a missing file or a bad
//! PEM stops start-up with the setting's name rather than failing the first
//! handshake. TLS is off unless configured: the dev stack stays plaintext.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// Why a TLS setting cannot be used; every message starts with the setting.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file named by the setting cannot be read.
    #[error("{setting}: cannot read {}: {source}", path.display())]
    Unreadable {
        /// The dotted setting (`grpc.tls.cert_path`).
        setting: String,
        /// The file it names.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is not the PEM the setting needs.
    #[error("{setting}: {} is not usable: {reason}", path.display())]
    BadPem {
        /// The dotted setting.
        setting: String,
        /// The file it names.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The settings do not fit together, or a URL cannot be used with them.
    #[error("{setting}: {reason}")]
    Invalid {
        /// The dotted setting.
        setting: String,
        /// What is wrong and what to do about it.
        reason: String,
    },
}

/// The gRPC server's TLS (`[grpc.tls]`); absent means plaintext.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerTlsSettings {
    /// The server's certificate chain (PEM), leaf first.
    pub cert_path: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
    /// The CA (PEM) client certificates must chain to. Set, every client
    /// must present one (mutual TLS); unset, any client may connect.
    #[serde(default)]
    pub client_ca_path: Option<PathBuf>,
}

/// How this service connects to other services (`[grpc.client_tls]`).
/// `https://` URLs use TLS, `http://` URLs plaintext (unless refused).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClientTlsSettings {
    /// The CA (PEM) the servers' certificates must chain to; needed for any
    /// `https://` URL (services use a private CA, not the public roots).
    pub ca_path: Option<PathBuf>,
    /// This service's client certificate chain (PEM), for servers that
    /// require mutual TLS; needs `key_path`.
    pub cert_path: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_path: Option<PathBuf>,
    /// Refuse `http://` URLs, so a forgotten `https` fails start-up instead
    /// of sending tokens in clear.
    pub require_tls: bool,
}

/// The tonic server TLS config `settings` describe, checked now: unreadable
/// files, bad PEM and a key that does not fit the certificate are errors.
pub fn server_config(settings: &ServerTlsSettings) -> Result<ServerTlsConfig, TlsError> {
    let certificate = read_certificates("grpc.tls.cert_path", &settings.cert_path)?;
    let key = read_private_key("grpc.tls.key_path", &settings.key_path)?;
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(certificate, key));
    if let Some(path) = &settings.client_ca_path {
        let ca = read_certificates("grpc.tls.client_ca_path", path)?;
        // Client certificates are required (tonic's default): mutual TLS.
        config = config.client_ca_root(Certificate::from_pem(ca));
    }
    // Building the acceptor parses everything and matches key to certificate.
    tonic::transport::Server::builder()
        .tls_config(config.clone())
        .map_err(|error| TlsError::Invalid {
            setting: "grpc.tls".to_owned(),
            reason: format!(
                "the certificate and key cannot be used together: {}",
                error_chain(&error)
            ),
        })?;
    Ok(config)
}

/// The client TLS config `settings` describe, or none when nothing is set.
pub fn client_config(settings: &ClientTlsSettings) -> Result<Option<ClientTlsConfig>, TlsError> {
    let mut config = ClientTlsConfig::new();
    let mut any = false;
    if let Some(path) = &settings.ca_path {
        let ca = read_certificates("grpc.client_tls.ca_path", path)?;
        config = config.ca_certificate(Certificate::from_pem(ca));
        any = true;
    }
    match (&settings.cert_path, &settings.key_path) {
        (Some(cert_path), Some(key_path)) => {
            let certificate = read_certificates("grpc.client_tls.cert_path", cert_path)?;
            let key = read_private_key("grpc.client_tls.key_path", key_path)?;
            config = config.identity(Identity::from_pem(certificate, key));
            any = true;
        }
        (None, None) => {}
        (Some(_), None) | (None, Some(_)) => {
            return Err(TlsError::Invalid {
                setting: "grpc.client_tls".to_owned(),
                reason: "cert_path and key_path go together: set both or neither".to_owned(),
            });
        }
    }
    Ok(any.then_some(config))
}

/// Checks every file `settings` name, for start-up.
pub fn check_client_settings(settings: &ClientTlsSettings) -> Result<(), TlsError> {
    client_config(settings).map(|_| ())
}

/// An endpoint for `url` (named by `setting` in errors): TLS with `tls` for
/// `https://`, plaintext for `http://` unless `tls.require_tls`. Callers add
/// their timeouts and connect (lazily or not).
pub fn endpoint(setting: &str, url: &str, tls: &ClientTlsSettings) -> Result<Endpoint, TlsError> {
    let invalid = |reason: String| TlsError::Invalid {
        setting: setting.to_owned(),
        reason,
    };
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|error| invalid(format!("{url:?} is not a URL: {error}")))?;
    match endpoint.uri().scheme_str() {
        Some("https") => {
            let Some(config) = client_config(tls)?.filter(|_| tls.ca_path.is_some()) else {
                return Err(invalid(format!(
                    "{url:?} is https but grpc.client_tls.ca_path is not set: name the CA \
                     that signed the servers' certificates"
                )));
            };
            endpoint
                .tls_config(config)
                .map_err(|error| invalid(format!("TLS for {url:?}: {}", error_chain(&error))))
        }
        Some("http") if tls.require_tls => Err(invalid(format!(
            "{url:?} is plaintext but grpc.client_tls.require_tls is set: use https://"
        ))),
        Some("http") => Ok(endpoint),
        _ => Err(invalid(format!(
            "{url:?} must start with http:// or https://"
        ))),
    }
}

/// Reads a PEM file holding at least one certificate.
pub fn read_certificates(setting: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let bytes = read(setting, path)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| bad_pem(setting, path, error.to_string()))?;
    if certificates.is_empty() {
        return Err(bad_pem(
            setting,
            path,
            "no CERTIFICATE block found".to_owned(),
        ));
    }
    Ok(bytes)
}

/// Reads a PEM file holding a private key.
pub fn read_private_key(setting: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let bytes = read(setting, path)?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|error| bad_pem(setting, path, format!("no private key found ({error})")))?;
    Ok(bytes)
}

/// Checks that `path` can be read, for settings whose file another library parses.
pub fn check_readable(setting: &str, path: &Path) -> Result<(), TlsError> {
    read(setting, path).map(|_| ())
}

fn read(setting: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Unreadable {
        setting: setting.to_owned(),
        path: path.to_owned(),
        source,
    })
}

fn bad_pem(setting: &str, path: &Path, reason: String) -> TlsError {
    TlsError::BadPem {
        setting: setting.to_owned(),
        path: path.to_owned(),
        reason,
    }
}

/// The error and its causes: tonic's outer message ("transport error") says
/// little; rustls's inner one says what is wrong.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporary(name: &str, contents: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("mcr-tls-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("a writable temp dir");
        path
    }

    #[test]
    fn a_missing_file_names_the_setting_and_the_path() {
        let error = server_config(&ServerTlsSettings {
            cert_path: PathBuf::from("/nonexistent/server.pem"),
            key_path: PathBuf::from("/nonexistent/server.key"),
            client_ca_path: None,
        })
        .expect_err("no such file");
        let message = error.to_string();
        assert!(
            message.contains("grpc.tls.cert_path") && message.contains("/nonexistent/server.pem"),
            "{message}"
        );
    }

    #[test]
    fn a_file_without_a_certificate_is_refused() {
        let path = temporary("not-a-cert.pem", "hello\n");
        let error = read_certificates("grpc.client_tls.ca_path", &path).expect_err("not PEM");
        std::fs::remove_file(&path).ok();
        assert!(
            error.to_string().contains("grpc.client_tls.ca_path")
                && error.to_string().contains("CERTIFICATE"),
            "{error}"
        );
    }

    #[test]
    fn https_without_a_ca_and_http_when_tls_is_required_are_refused() {
        let error = endpoint(
            "records.consent_url",
            "https://consent:50053",
            &ClientTlsSettings::default(),
        )
        .expect_err("no CA to trust");
        assert!(
            error.to_string().contains("grpc.client_tls.ca_path"),
            "{error}"
        );

        let required = ClientTlsSettings {
            require_tls: true,
            ..ClientTlsSettings::default()
        };
        let error = endpoint("records.consent_url", "http://consent:50053", &required)
            .expect_err("plaintext refused");
        assert!(
            error.to_string().starts_with("records.consent_url:"),
            "{error}"
        );
        assert!(endpoint("x", "http://consent:50053", &ClientTlsSettings::default()).is_ok());
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let error = client_config(&ClientTlsSettings {
            cert_path: Some(PathBuf::from("/etc/hostname")),
            ..ClientTlsSettings::default()
        })
        .expect_err("cert without key");
        assert!(error.to_string().contains("key_path"), "{error}");
    }
}
