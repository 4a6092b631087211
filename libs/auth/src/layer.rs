//! The tower layer every service puts in front of its gRPC handlers: verifies
//! the bearer token and puts the [`Principal`] in the request's extensions,
//! or answers UNAUTHENTICATED without reaching the handler.

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::server::NamedService;

use crate::claims::Principal;
use crate::error::AuthError;
use crate::verifier::TokenVerifier;

/// Requires a valid access token on every method except `public_methods`
/// (e.g. `Authenticate`, which is how a token is obtained).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    verifier: TokenVerifier,
    public_methods: &'static [&'static str],
}

impl AuthLayer {
    /// Every method needs a token, except those named in `public_methods`.
    pub fn new(verifier: TokenVerifier, public_methods: &'static [&'static str]) -> Self {
        Self {
            verifier,
            public_methods,
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            verifier: self.verifier.clone(),
            public_methods: self.public_methods,
        }
    }
}

/// A gRPC service behind [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    verifier: TokenVerifier,
    public_methods: &'static [&'static str],
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
            return Box::pin(ready_inner.call(request));
        }
        let verifier = self.verifier.clone();
        Box::pin(async move {
            let verified = match bearer_token(request.headers()) {
                Some(token) => verifier.verify_refreshing(token).await,
                None => Err(AuthError::MissingToken),
            };
            match verified {
                Ok(principal) => {
                    tracing::Span::current().record("enduser.id", principal.subject.as_str());
                    request.extensions_mut().insert(principal);
                    ready_inner.call(request).await
                }
                Err(error) => {
                    tracing::info!(reason = %error, "request refused: no valid access token");
                    Ok(tonic::Status::from(error).into_http())
                }
            }
        })
    }
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
