//! Calling other services as this service: a service token from identity
//! (OAuth 2.0 client credentials), cached until shortly before it expires.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mcr_proto::identity::v1::IssueServiceTokenRequest;
use mcr_proto::identity::v1::identity_client::IdentityClient;
use mcr_runtime::ServiceContext;
use mcr_runtime::propagation::inject_current_into_grpc;
use mcr_runtime::settings::AuthSettings;
use mcr_runtime::tls::ClientTlsSettings;
use tokio::sync::Mutex;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::error::AuthError;

/// A token is renewed this long before it expires, so a call never leaves
/// with a token that expires in flight.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(30);

/// This service's own access token for the services it calls.
///
/// Cheap to clone; clones share the cached token, and concurrent callers
/// that find it stale fetch one new token between them.
#[derive(Clone)]
pub struct ServiceTokens {
    inner: Arc<Inner>,
}

struct Inner {
    client: IdentityClient<Channel>,
    client_id: String,
    client_secret: String,
    cached: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    header: MetadataValue<tonic::metadata::Ascii>,
    renew_at: SystemTime,
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ServiceTokens")
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

impl ServiceTokens {
    /// Tokens for the service account configured in `auth.client_id` and
    /// `auth.client_secret`, issued by identity at `auth.identity_url`.
    pub fn for_service<C>(context: &ServiceContext<C>) -> Result<Self, AuthError> {
        let runtime = &context.settings.runtime;
        Self::with_client_tls(&runtime.auth, &runtime.grpc.client_tls)
    }

    /// Tokens for the service account in `settings`; identity is reached
    /// lazily, on the first call. Without credentials the service still
    /// starts (health, reflection, metrics), and every call that needs a
    /// token fails UNAVAILABLE saying which settings to set.
    pub fn new(settings: &AuthSettings) -> Result<Self, AuthError> {
        Self::with_client_tls(settings, &ClientTlsSettings::default())
    }

    /// As [`ServiceTokens::new`], with TLS for an `https://` identity URL.
    pub fn with_client_tls(
        settings: &AuthSettings,
        tls: &ClientTlsSettings,
    ) -> Result<Self, AuthError> {
        if settings.client_id.is_empty() || settings.client_secret.is_empty() {
            tracing::warn!("{}", AuthError::NoServiceCredentials);
        }
        let channel = mcr_runtime::tls::endpoint("auth.identity_url", &settings.identity_url, tls)
            .map_err(|error| AuthError::KeysUnavailable(format!("invalid settings: {error}")))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        Ok(Self {
            inner: Arc::new(Inner {
                client: IdentityClient::new(channel),
                client_id: settings.client_id.clone(),
                client_secret: settings.client_secret.clone(),
                cached: Mutex::new(None),
            }),
        })
    }

    /// `message` as a request carrying this service's token and the current
    /// trace context. UNAVAILABLE when identity cannot issue a token.
    pub async fn request<T>(&self, message: T) -> Result<tonic::Request<T>, tonic::Status> {
        let header = self.authorization().await?;
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", header);
        inject_current_into_grpc(request.metadata_mut());
        Ok(request)
    }

    /// The `authorization` header value, from the cache or freshly issued.
    #[tracing::instrument(name = "service_token", skip(self), fields(client_id = %self.inner.client_id))]
    pub async fn authorization(
        &self,
    ) -> Result<MetadataValue<tonic::metadata::Ascii>, tonic::Status> {
        let mut cached = self.inner.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && SystemTime::now() < token.renew_at
        {
            return Ok(token.header.clone());
        }
        let token = self.issue().await?;
        let header = token.header.clone();
        *cached = Some(token);
        Ok(header)
    }

    async fn issue(&self) -> Result<CachedToken, tonic::Status> {
        if self.inner.client_id.is_empty() || self.inner.client_secret.is_empty() {
            return Err(AuthError::NoServiceCredentials.into());
        }
        let mut request = tonic::Request::new(IssueServiceTokenRequest {
            client_id: self.inner.client_id.clone(),
            client_secret: self.inner.client_secret.clone(),
            scopes: Vec::new(),
        });
        inject_current_into_grpc(request.metadata_mut());
        let response = self
            .inner
            .client
            .clone()
            .issue_service_token(request)
            .await
            .map_err(|status| match status.code() {
                // Wrong credentials are a deployment error, not the caller's.
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                    tonic::Status::unavailable(format!(
                        "identity refused this service's credentials ({}): check auth.client_id and auth.client_secret",
                        status.message()
                    ))
                }
                _ => tonic::Status::unavailable(format!(
                    "identity could not issue a service token: {}",
                    status.message()
                )),
            })?
            .into_inner();
        let header = format!("Bearer {}", response.access_token)
            .parse()
            .map_err(|_| tonic::Status::unavailable("identity issued a token that is not ASCII"))?;
        let expires_at = response
            .expires_at
            .and_then(|at| u64::try_from(at.seconds).ok())
            .map(|seconds| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
            .unwrap_or_else(SystemTime::now);
        Ok(CachedToken {
            header,
            renew_at: expires_at
                .checked_sub(RENEW_BEFORE_EXPIRY)
                .unwrap_or(expires_at),
        })
    }
}
