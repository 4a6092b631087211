//! A tower layer around every gRPC call: one span per RPC that continues the
//! caller's trace, and Prometheus series for requests, status codes and latency.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::propagation::{context_from_http, current_trace_id};

/// Counter of finished calls, labelled `service`, `method`, `code`.
pub const REQUESTS_METRIC: &str = "mcr_rpc_server_requests_total";
/// Histogram of call latency in seconds, labelled `service`, `method`.
pub const DURATION_METRIC: &str = "mcr_rpc_server_duration_seconds";

/// Wraps a gRPC router in [`RpcObservability`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcObservabilityLayer;

impl<S> tower::Layer<S> for RpcObservabilityLayer {
    type Service = RpcObservability<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcObservability { inner }
    }
}

/// See [`RpcObservabilityLayer`].
#[derive(Debug, Clone)]
pub struct RpcObservability<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> tower::Service<http::Request<RequestBody>>
    for RpcObservability<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    RequestBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        // The clone that was polled ready must serve this call; keep a fresh one for the next.
        let fresh_inner = self.inner.clone();
        let mut ready_inner = std::mem::replace(&mut self.inner, fresh_inner);

        let (service, method) = split_grpc_path(request.uri().path());
        // Health probes and reflection arrive every few seconds: count them, but
        // keep them out of traces and logs.
        let is_infrastructure = service.starts_with("grpc.");
        let span = if is_infrastructure {
            tracing::Span::none()
        } else {
            let span = tracing::info_span!(
                "grpc.server",
                otel.name = %format!("{service}/{method}"),
                otel.kind = "server",
                rpc.system = "grpc",
                rpc.service = %service,
                rpc.method = %method,
                rpc.grpc.status_code = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
                trace_id = tracing::field::Empty,
            );
            // A span without an OpenTelemetry layer (none installed) just keeps no parent.
            let _ = span.set_parent(context_from_http(request.headers()));
            if let Some(trace_id) = span.in_scope(current_trace_id) {
                span.record("trace_id", trace_id.as_str());
            }
            span
        };

        let started = Instant::now();
        let service_label = service.to_owned();
        let method_label = method.to_owned();
        let call_span = span.clone();
        Box::pin(
            async move {
                let result = ready_inner.call(request).await;
                // tonic puts the status of a failed unary call in the response
                // headers (trailers-only); a successful one, and a stream that
                // fails midway, carry it in trailers, which this layer does not see.
                let code = match &result {
                    Ok(response) => status_code_from_headers(response.headers()),
                    Err(_) => tonic::Code::Internal,
                };
                call_span.record("rpc.grpc.status_code", code as i32);
                if code != tonic::Code::Ok {
                    call_span.record("otel.status_code", "ERROR");
                }
                metrics::counter!(
                    REQUESTS_METRIC,
                    "service" => service_label.clone(),
                    "method" => method_label.clone(),
                    "code" => code_label(code),
                )
                .increment(1);
                metrics::histogram!(DURATION_METRIC, "service" => service_label, "method" => method_label)
                    .record(started.elapsed().as_secs_f64());
                result
            }
            .instrument(span),
        )
    }
}

fn split_grpc_path(path: &str) -> (&str, &str) {
    let trimmed = path.trim_start_matches('/');
    trimmed.split_once('/').unwrap_or((trimmed, ""))
}

fn status_code_from_headers(headers: &http::HeaderMap) -> tonic::Code {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from_i32)
}

/// The canonical upper-case name of a gRPC status code, as other gRPC
/// implementations label their metrics.
pub fn code_label(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_paths_split_into_service_and_method() {
        assert_eq!(
            split_grpc_path("/mcr.identity.v1.Identity/GetUser"),
            ("mcr.identity.v1.Identity", "GetUser")
        );
        assert_eq!(split_grpc_path("/unexpected"), ("unexpected", ""));
    }

    #[test]
    fn status_comes_from_trailers_only_headers_and_defaults_to_ok() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_code_from_headers(&headers), tonic::Code::Ok);
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(status_code_from_headers(&headers), tonic::Code::NotFound);
        assert_eq!(code_label(status_code_from_headers(&headers)), "NOT_FOUND");
    }
}
