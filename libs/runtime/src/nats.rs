//! NATS with JetStream: a connection that retries by itself, subject and
//! stream names scoped by the configured namespace, and stream creation.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use secrecy::{ExposeSecret, SecretString};

use crate::settings::NatsSettings;
use crate::tls::TlsError;

/// NATS TLS (`[nats.tls]`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct NatsTlsSettings {
    /// Refuse a connection without TLS.
    pub require_tls: bool,
    /// The CA (PEM) the server's certificate must chain to.
    pub ca_path: Option<PathBuf>,
    /// A client certificate (PEM), for servers that verify clients.
    pub cert_path: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_path: Option<PathBuf>,
}

/// NATS TLS and credentials, from the `[nats]` section: at most one of
/// `user` + `password`, `token` or `credentials_path`. Secrets are never
/// printed (their `Debug` is redacted).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct NatsSecuritySettings {
    /// TLS.
    pub tls: NatsTlsSettings,
    /// User name, with `password`.
    pub user: Option<String>,
    /// The user's password.
    pub password: Option<SecretString>,
    /// An authentication token.
    pub token: Option<SecretString>,
    /// A `.creds` file (JWT and NKey seed).
    pub credentials_path: Option<PathBuf>,
}

impl NatsSecuritySettings {
    /// Checks the settings fit together and their files are usable.
    pub fn check(&self) -> Result<(), TlsError> {
        let invalid = |setting: &str, reason: &str| TlsError::Invalid {
            setting: setting.to_owned(),
            reason: reason.to_owned(),
        };
        let methods = [
            self.user.is_some() || self.password.is_some(),
            self.token.is_some(),
            self.credentials_path.is_some(),
        ];
        if methods.iter().filter(|set| **set).count() > 1 {
            return Err(invalid(
                "nats",
                "set one of user + password, token or credentials_path, not several",
            ));
        }
        if self.user.is_some() != self.password.is_some() {
            return Err(invalid("nats.user", "user and password go together"));
        }
        if let Some(path) = &self.credentials_path {
            crate::tls::check_readable("nats.credentials_path", path)?;
        }
        let tls = &self.tls;
        if let Some(path) = &tls.ca_path {
            crate::tls::read_certificates("nats.tls.ca_path", path)?;
        }
        match (&tls.cert_path, &tls.key_path) {
            (Some(cert_path), Some(key_path)) => {
                crate::tls::read_certificates("nats.tls.cert_path", cert_path)?;
                crate::tls::read_private_key("nats.tls.key_path", key_path)?;
            }
            (None, None) => {}
            _ => {
                return Err(invalid(
                    "nats.tls",
                    "cert_path and key_path go together: set both or neither",
                ));
            }
        }
        Ok(())
    }

    /// Connection options carrying this TLS and these credentials, for
    /// clients that connect their own way (the connector binaries, `mcr`).
    pub async fn connect_options(&self) -> Result<async_nats::ConnectOptions, NatsError> {
        let mut options = async_nats::ConnectOptions::new();
        let tls = &self.tls;
        if tls.require_tls {
            options = options.require_tls(true);
        }
        if let Some(path) = &tls.ca_path {
            options = options.add_root_certificates(path.clone());
        }
        if let (Some(cert_path), Some(key_path)) = (&tls.cert_path, &tls.key_path) {
            options = options.add_client_certificate(cert_path.clone(), key_path.clone());
        }
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_and_password(user.clone(), password.expose_secret().to_owned());
        }
        if let Some(token) = &self.token {
            options = options.token(token.expose_secret().to_owned());
        }
        if let Some(path) = &self.credentials_path {
            options =
                options
                    .credentials_file(path)
                    .await
                    .map_err(|error| NatsError::Credentials {
                        path: path.clone(),
                        reason: error.to_string(),
                    })?;
        }
        Ok(options)
    }
}

/// Why NATS could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The URL could not be parsed; retrying will not help.
    #[error("nats url {url:?} is not valid: {reason}")]
    InvalidUrl {
        /// The configured URL.
        url: String,
        /// The client's complaint.
        reason: String,
    },
    /// The credentials file could not be read or parsed.
    #[error("invalid settings: nats.credentials_path: {}: {reason}", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// The client's complaint.
        reason: String,
    },
    /// A JetStream stream could not be created or read.
    #[error("jetstream stream {stream} could not be ensured: {reason}")]
    Stream {
        /// The stream's name.
        stream: String,
        /// The server's or client's complaint.
        reason: String,
    },
}

/// A NATS connection and JetStream context, scoped to a namespace.
#[derive(Clone, Debug)]
pub struct NatsBus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    namespace: String,
    url: String,
}

impl NatsBus {
    /// Connects in the background: the call returns at once and the client
    /// keeps retrying, so start-up never waits for NATS and health reports
    /// NOT_SERVING until it is reachable.
    pub async fn connect(settings: &NatsSettings, client_name: &str) -> Result<Self, NatsError> {
        Self::connect_with(settings, &NatsSecuritySettings::default(), client_name).await
    }

    /// As [`NatsBus::connect`], with TLS and credentials.
    pub async fn connect_with(
        settings: &NatsSettings,
        security: &NatsSecuritySettings,
        client_name: &str,
    ) -> Result<Self, NatsError> {
        let options = security.connect_options().await?;
        let client = options
            .name(client_name)
            .connection_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .retry_on_initial_connect()
            .connect(settings.url.as_str())
            .await
            .map_err(|error| NatsError::InvalidUrl {
                url: settings.url.clone(),
                reason: error.to_string(),
            })?;
        let jetstream = jetstream::new(client.clone());
        Ok(Self {
            client,
            jetstream,
            namespace: settings.namespace.clone(),
            url: settings.url.clone(),
        })
    }

    /// The core NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// The configured server URL, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the client holds a live connection now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// `subject` (e.g. `mcr.records.v1.>`) within this namespace.
    pub fn subject(&self, subject: &str) -> String {
        scoped_subject(&self.namespace, subject)
    }

    /// `stream` (e.g. `MCR_RECORDS`) within this namespace.
    pub fn stream_name(&self, stream: &str) -> String {
        if self.namespace.is_empty() {
            stream.to_owned()
        } else {
            format!("{}_{}", self.namespace, stream)
        }
    }

    /// Creates the stream when missing and returns it. `config.name` and
    /// `config.subjects` are given unscoped; the namespace is applied here.
    pub async fn ensure_stream(
        &self,
        mut config: stream::Config,
    ) -> Result<stream::Stream, NatsError> {
        config.name = self.stream_name(&config.name);
        config.subjects = config
            .subjects
            .iter()
            .map(|subject| self.subject(subject))
            .collect();
        let stream_name = config.name.clone();
        self.jetstream
            .get_or_create_stream(config)
            .await
            .map_err(|error| NatsError::Stream {
                stream: stream_name,
                reason: error.to_string(),
            })
    }
}

impl NatsBus {
    /// Creates the durable pull consumer `config.durable_name` on `stream`
    /// when missing and returns it. Names are given unscoped, as for
    /// [`NatsBus::ensure_stream`]; the filter subject is scoped here.
    pub async fn ensure_pull_consumer(
        &self,
        stream: &stream::Stream,
        mut config: jetstream::consumer::pull::Config,
    ) -> Result<jetstream::consumer::PullConsumer, NatsError> {
        let durable_name = config.durable_name.clone().unwrap_or_default();
        if !config.filter_subject.is_empty() {
            config.filter_subject = self.subject(&config.filter_subject);
        }
        stream
            .get_or_create_consumer(&durable_name, config)
            .await
            .map_err(|error| NatsError::Stream {
                stream: format!(
                    "{} (consumer {durable_name})",
                    stream.cached_info().config.name
                ),
                reason: error.to_string(),
            })
    }
}

/// Runs `consume` until `stop`, re-attaching after each failure with a
/// backoff from 200 ms to 5 s; `attached` is cleared while detached (a
/// readiness condition). `consume` sets `attached` once it is consuming and
/// returns why it stopped.
pub async fn consume_until_stopped<F, Fut>(
    what: &str,
    attached: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: tokio_util::sync::CancellationToken,
    mut consume: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut retry_delay = Duration::from_millis(200);
    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            outcome = consume() => outcome,
        };
        attached.store(false, std::sync::atomic::Ordering::Release);
        if let Err(reason) = outcome {
            tracing::warn!(%reason, retry_in_ms = retry_delay.as_millis() as u64, "{what} stopped; re-attaching");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(retry_delay) => {}
        }
        retry_delay = (retry_delay * 2).min(Duration::from_secs(5));
    }
}

/// Waits for the next message of a pull consumer's `messages`, then takes
/// more until `size` messages or `linger` has passed: one batch, so one
/// transaction commits many messages. Returns the batch and, when the
/// stream failed or ended, why (the caller re-attaches after handling the
/// batch).
pub async fn next_batch<S, E>(
    messages: &mut S,
    size: usize,
    linger: Duration,
) -> (Vec<jetstream::Message>, Option<String>)
where
    S: futures::Stream<Item = Result<jetstream::Message, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures::StreamExt;
    let first = match messages.next().await {
        Some(Ok(message)) => message,
        Some(Err(error)) => return (Vec::new(), Some(error.to_string())),
        None => {
            return (
                Vec::new(),
                Some("the consumer's message stream ended".to_owned()),
            );
        }
    };
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + linger;
    while batch.len() < size {
        match tokio::time::timeout_at(deadline, messages.next()).await {
            Ok(Some(Ok(message))) => batch.push(message),
            Ok(Some(Err(error))) => return (batch, Some(error.to_string())),
            Ok(None) => {
                return (
                    batch,
                    Some("the consumer's message stream ended".to_owned()),
                );
            }
            Err(_) => break,
        }
    }
    (batch, None)
}

/// `subject` prefixed by `namespace` when one is set.
pub fn scoped_subject(namespace: &str, subject: &str) -> String {
    if namespace.is_empty() {
        subject.to_owned()
    } else {
        format!("{namespace}.{subject}")
    }
}

#[cfg(test)]
mod tests {
    use super::scoped_subject;

    #[test]
    fn an_empty_namespace_leaves_subjects_as_designed() {
        assert_eq!(scoped_subject("", "mcr.records.v1.>"), "mcr.records.v1.>");
    }

    #[test]
    fn a_namespace_prefixes_every_subject() {
        assert_eq!(
            scoped_subject("t42", "mcr.audit.v1.view_record"),
            "t42.mcr.audit.v1.view_record"
        );
    }
}
