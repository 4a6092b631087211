//! W3C trace context (`traceparent`, `tracestate`) across every hop: gRPC
//! metadata going out, HTTP/2 headers coming in, and NATS message headers
//! both ways, so one trace spans client → services → NATS → consumers.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct GrpcMetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for GrpcMetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let Ok(key) = tonic::metadata::MetadataKey::from_bytes(key.as_bytes()) else {
            return;
        };
        if let Ok(value) = tonic::metadata::MetadataValue::try_from(value.as_str()) {
            self.0.insert(key, value);
        }
    }
}

struct GrpcMetadataExtractor<'a>(&'a tonic::metadata::MetadataMap);

impl Extractor for GrpcMetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                tonic::metadata::KeyRef::Ascii(key) => Some(key.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

struct HttpHeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HttpHeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct NatsHeaderInjector<'a>(&'a mut async_nats::HeaderMap);

impl Injector for NatsHeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value);
    }
}

struct NatsHeaderExtractor<'a>(&'a async_nats::HeaderMap);

impl Extractor for NatsHeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(async_nats::HeaderValue::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject_current_into_grpc(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut GrpcMetadataInjector(metadata));
}

/// Reads a caller's trace context from gRPC metadata.
pub fn context_from_grpc(metadata: &tonic::metadata::MetadataMap) -> Context {
    TraceContextPropagator::new().extract(&GrpcMetadataExtractor(metadata))
}

/// Reads a caller's trace context from HTTP/2 request headers (the server side of gRPC).
pub fn context_from_http(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HttpHeaderExtractor(headers))
}

/// Writes the current span's trace context into NATS message headers.
pub fn inject_current_into_nats(headers: &mut async_nats::HeaderMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut NatsHeaderInjector(headers));
}

/// Reads a publisher's trace context from NATS message headers.
pub fn context_from_nats(headers: &async_nats::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&NatsHeaderExtractor(headers))
}

/// The trace a NATS message carries, if it carries one.
pub fn trace_of_nats_message(headers: &async_nats::HeaderMap) -> Option<Context> {
    // Extracted onto an empty context: without a `traceparent` header,
    // extraction returns the context it started from, which inside a span
    // is that span's, and the message would seem to carry it.
    let context = TraceContextPropagator::new()
        .extract_with_context(&Context::new(), &NatsHeaderExtractor(headers));
    context.span().span_context().is_valid().then_some(context)
}

/// Links `span` to the trace a NATS message carries, if any: how a span
/// that handles a batch of messages shows where each came from (a span has
/// one parent, a batch many origins).
pub fn link_to_nats_message(span: &tracing::Span, headers: &async_nats::HeaderMap) {
    if let Some(origin) = trace_of_nats_message(headers) {
        span.add_link(origin.span().span_context().clone());
    }
}

/// The current span's trace id as 32 hex digits, or `None` outside any trace.
pub fn current_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// A client interceptor that sends the current trace context with every call.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextInterceptor;

impl tonic::service::Interceptor for TraceContextInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject_current_into_grpc(request.metadata_mut());
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    /// Runs `body` inside a span of a subscriber that records OpenTelemetry ids.
    fn within_traced_span<T>(body: impl FnOnce() -> T) -> T {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("propagation-test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("outgoing");
            let _entered = span.enter();
            body()
        })
    }

    fn trace_id_of(context: &Context) -> String {
        context.span().span_context().trace_id().to_string()
    }

    #[test]
    fn grpc_metadata_round_trip_keeps_the_trace_id() {
        let (sent_trace_id, received) = within_traced_span(|| {
            let mut metadata = tonic::metadata::MetadataMap::new();
            inject_current_into_grpc(&mut metadata);
            (current_trace_id(), context_from_grpc(&metadata))
        });
        let sent_trace_id = sent_trace_id.expect("the span must have a trace id");
        assert_eq!(sent_trace_id.len(), 32);
        assert_eq!(trace_id_of(&received), sent_trace_id);
        assert!(received.span().span_context().is_remote());
    }

    #[test]
    fn http_headers_carry_what_grpc_metadata_injected() {
        let (sent_trace_id, metadata) = within_traced_span(|| {
            let mut metadata = tonic::metadata::MetadataMap::new();
            inject_current_into_grpc(&mut metadata);
            (current_trace_id(), metadata)
        });
        let headers = metadata.into_headers();
        assert!(headers.contains_key("traceparent"));
        assert_eq!(
            Some(trace_id_of(&context_from_http(&headers))),
            sent_trace_id
        );
    }

    #[test]
    fn nats_headers_round_trip_keeps_the_trace_id() {
        let (sent_trace_id, received) = within_traced_span(|| {
            let mut headers = async_nats::HeaderMap::new();
            inject_current_into_nats(&mut headers);
            (current_trace_id(), context_from_nats(&headers))
        });
        assert_eq!(Some(trace_id_of(&received)), sent_trace_id);
    }

    #[test]
    fn no_trace_context_extracts_an_invalid_span() {
        let received = context_from_nats(&async_nats::HeaderMap::new());
        assert!(!received.span().span_context().is_valid());
    }
}
