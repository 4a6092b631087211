//! How the connector binaries and `mcr publish` reach NATS: the server and
//! the same TLS and credential choices as the services' `[nats]` section,
//! from flags or the same environment variables.

use std::path::PathBuf;
use std::time::Duration;

use mcr_runtime::nats::{NatsSecuritySettings, NatsTlsSettings};
use secrecy::SecretString;

/// NATS server, TLS and credentials (at most one of user + password,
/// token or credentials file).
#[derive(Debug, Clone, clap::Args)]
pub struct NatsConnection {
    /// NATS server.
    #[arg(
        long,
        global = true,
        env = "MCR_NATS__URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// Refuse to connect without TLS.
    #[arg(long, global = true, env = "MCR_NATS__TLS__REQUIRE_TLS")]
    pub nats_require_tls: bool,
    /// CA certificate (PEM) the NATS server's certificate must chain to.
    #[arg(
        long,
        global = true,
        env = "MCR_NATS__TLS__CA_PATH",
        value_name = "PEM"
    )]
    pub nats_ca: Option<PathBuf>,
    /// Client certificate (PEM), for a server that verifies clients.
    #[arg(
        long,
        global = true,
        env = "MCR_NATS__TLS__CERT_PATH",
        value_name = "PEM",
        requires = "nats_key"
    )]
    pub nats_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        global = true,
        env = "MCR_NATS__TLS__KEY_PATH",
        value_name = "PEM",
        requires = "nats_cert"
    )]
    pub nats_key: Option<PathBuf>,
    /// NATS user, with the password.
    #[arg(
        long,
        global = true,
        env = "MCR_NATS__USER",
        requires = "nats_password"
    )]
    pub nats_user: Option<String>,
    /// The NATS user's password; prefer the environment variable, as other
    /// users of the machine can read a process's arguments.
    #[arg(
        long,
        global = true,
        env = "MCR_NATS__PASSWORD",
        hide_env_values = true,
        requires = "nats_user"
    )]
    pub nats_password: Option<SecretString>,
    /// NATS authentication token; prefer the environment variable.
    #[arg(long, global = true, env = "MCR_NATS__TOKEN", hide_env_values = true)]
    pub nats_token: Option<SecretString>,
    /// NATS credentials file (`.creds`: JWT and NKey seed).
    #[arg(
        long,
        global = true,
        env = "MCR_NATS__CREDENTIALS_PATH",
        value_name = "FILE"
    )]
    pub nats_credentials: Option<PathBuf>,
}

impl NatsConnection {
    /// The TLS and credentials, as the services' settings hold them.
    pub fn security(&self) -> NatsSecuritySettings {
        NatsSecuritySettings {
            tls: NatsTlsSettings {
                require_tls: self.nats_require_tls,
                ca_path: self.nats_ca.clone(),
                cert_path: self.nats_cert.clone(),
                key_path: self.nats_key.clone(),
            },
            user: self.nats_user.clone(),
            password: self.nats_password.clone(),
            token: self.nats_token.clone(),
            credentials_path: self.nats_credentials.clone(),
        }
    }

    /// Connects as `client_name`, failing within five seconds with a
    /// message naming the server (and never the secret) when it cannot.
    pub async fn connect(&self, client_name: &str) -> Result<async_nats::Client, String> {
        let security = self.security();
        security.check().map_err(|error| error.to_string())?;
        let options = security
            .connect_options()
            .await
            .map_err(|error| error.to_string())?;
        options
            .name(client_name)
            .connection_timeout(Duration::from_secs(5))
            .connect(self.nats_url.as_str())
            .await
            .map_err(|error| format!("could not reach NATS at {}: {error}", self.nats_url))
    }
}
