//! The tower layer every service puts in front of its gRPC handlers: verifies
//! the bearer token and puts the [`Principal`] in the request's extensions,
//! or answers UNAUTHENTICATED without reaching the handler.
//!
//! Optionally it also audits every refusal ([`RefusalAudit`]), holds each
//! verified caller to its limits ([`CallerLimiter`]: RESOURCE_EXHAUSTED
//! past them), and turns the statuses tonic gives for requests it cannot
//! read — a message over `grpc.max_message_bytes` (OUT_OF_RANGE) or bytes
//! that are not the request message, such as invalid UTF-8 in a string
//! field (INTERNAL) — into INVALID_ARGUMENT: the caller sent something
//! wrong, and INTERNAL would send an operator looking for a bug.

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::claims::Principal;
use crate::error::AuthError;
use crate::limits::{CallerLimiter, CallerLimits};
use crate::refusals::{ClaimedCaller, Refusal, RefusalAudit};
use crate::verifier::TokenVerifier;

/// Requires a valid access token on every method except `public_methods`
/// (e.g. `Authenticate`, which is how a token is obtained).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    verifier: TokenVerifier,
    public_methods: &'static [&'static str],
    refusals: Option<RefusalAudit>,
    limiter: Option<CallerLimiter>,
}

impl AuthLayer {
    /// Every method needs a token, except those named in `public_methods`.
    pub fn new(verifier: TokenVerifier, public_methods: &'static [&'static str]) -> Self {
        Self {
            verifier,
            public_methods,
            refusals: None,
            limiter: None,
        }
    }

    /// The layer as every service runs it: refusals audited on the
    /// service's audit stream (published as `source_service`) and callers
    /// held to the service's `auth.caller_limits` settings ([`CallerLimits`]).
    pub fn for_service<C>(
        context: &mcr_runtime::ServiceContext<C>,
        source_service: &'static str,
        verifier: TokenVerifier,
        public_methods: &'static [&'static str],
    ) -> Self {
        let refusals = RefusalAudit::start(
            mcr_audit_client::AuditPublisher::new(context.nats.clone()),
            source_service,
            crate::refusals::DEFAULT_QUEUE_CAPACITY,
            &context.tasks,
            context.shutdown.clone(),
        );
        Self::new(verifier, public_methods)
            .audit_refusals(refusals)
            .limit_callers(context.settings.runtime.auth.caller_limits)
    }

    /// Records every refused token on the audit trail through `refusals`.
    pub fn audit_refusals(mut self, refusals: RefusalAudit) -> Self {
        self.refusals = Some(refusals);
        self
    }

    /// Holds each verified caller to `limits` (per replica).
    pub fn limit_callers(mut self, limits: CallerLimits) -> Self {
        self.limiter = Some(CallerLimiter::new(limits));
        self
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            verifier: self.verifier.clone(),
            public_methods: self.public_methods,
            refusals: self.refusals.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

/// A gRPC service behind [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    verifier: TokenVerifier,
    public_methods: &'static [&'static str],
    refusals: Option<RefusalAudit>,
    limiter: Option<CallerLimiter>,
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, RequestBody> tower::Service<http::Request<RequestBody>> for Authenticated<S>
where
    S: tower::Service<
            http::Request<RequestBody>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    RequestBody: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<RequestBody>) -> Self::Future {
        let fresh_inner = self.inner.clone();
        let mut ready_inner = std::mem::replace(&mut self.inner, fresh_inner);
        let method = request.uri().path().rsplit('/').next().unwrap_or_default();
        if self.public_methods.contains(&method) {
            let answer = ready_inner.call(request);
            return Box::pin(async move { answer.await.map(readable_status) });
        }
        let verifier = self.verifier.clone();
        let refusals = self.refusals.clone();
        let limiter = self.limiter.clone();
        Box::pin(async move {
            let token = bearer_token(request.headers());
            let verified = match token {
                Some(token) => verifier.verify_refreshing(token).await,
                None => Err(AuthError::MissingToken),
            };
            let principal = match verified {
                Ok(principal) => principal,
                Err(error) => {
                    tracing::info!(reason = %error, "request refused: no valid access token");
                    if let Some(refusals) = &refusals {
                        refusals.record(Refusal {
                            claimed: ClaimedCaller::peek(token, &error),
                            reason: error.clone(),
                            method: request.uri().path().chars().take(200).collect(),
                            client_address: client_address(&request),
                        });
                    }
                    return Ok(tonic::Status::from(error).into_http());
                }
            };
            let _in_flight = match limiter.as_ref().map(|limiter| limiter.admit(&principal)) {
                None => None,
                Some(Ok(guard)) => Some(guard),
                Some(Err(exceeded)) => {
                    tracing::info!(enduser.id = %principal.subject, ?exceeded, "request refused: caller over its limit");
                    return Ok(exceeded.status().into_http());
                }
            };
            tracing::Span::current().record("enduser.id", principal.subject.as_str());
            request.extensions_mut().insert(principal);
            ready_inner.call(request).await.map(readable_status)
        })
    }
}

/// The client's IP address, over plain TCP or TLS.
fn client_address<B>(request: &http::Request<B>) -> String {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
        .map(|address| address.ip().to_string())
        .unwrap_or_default()
}

/// INVALID_ARGUMENT instead of the status tonic gives when it cannot read
/// the request message. Such answers carry their status in the headers
/// (trailers-only), which is all this looks at: a handler's own answers
/// pass untouched.
fn readable_status(
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let Some(status) = tonic::Status::from_header_map(response.headers()) else {
        return response;
    };
    let replacement = match status.code() {
        tonic::Code::OutOfRange
            if status
                .message()
                .starts_with("Error, decoded message length too large") =>
        {
            let detail = status
                .message()
                .trim_start_matches("Error, decoded message length too large: ");
            format!(
                "the request message is too large ({detail}); send less per call (the server's limit is grpc.max_message_bytes)"
            )
        }
        tonic::Code::Internal
            if status
                .message()
                .starts_with("failed to decode Protobuf message") =>
        {
            let detail = status
                .message()
                .trim_start_matches("failed to decode Protobuf message: ");
            format!(
                "the request is not a valid message of this method ({detail}); strings must be UTF-8"
            )
        }
        _ => return response,
    };
    let headers = response.headers_mut();
    headers.remove("grpc-status");
    headers.remove("grpc-message");
    headers.remove("grpc-status-details-bin");
    if let Err(error) = tonic::Status::invalid_argument(replacement).add_header(headers) {
        tracing::warn!(%error, "rewriting an unreadable-request status failed");
    }
    response
}

fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The verified caller of `request`; UNAUTHENTICATED when the auth layer did
/// not run (a wiring mistake must deny, never allow).
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, tonic::Status> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| tonic::Status::unauthenticated(AuthError::MissingToken.to_string()))
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_required() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("bearer abc.def.ghi"),
        );
        assert_eq!(bearer_token(&headers), Some("abc.def.ghi"));
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Basic dXNlcg=="),
        );
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer "),
        );
        assert_eq!(bearer_token(&headers), None);
    }
}
