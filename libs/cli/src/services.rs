//! Where the services are, and calls to them: each request carries the
//! command's W3C trace context (so one trace runs from the CLI through every
//! service) and, when signed in, the access token.

use std::path::PathBuf;
use std::time::Duration;

use mcr_runtime::tls::ClientTlsSettings;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::error::CliError;

/// One of the five services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Identity,
    PatientIndex,
    Consent,
    RecordAggregator,
    Audit,
}

impl Service {
    /// Every service, in port order.
    pub const ALL: [Service; 5] = [
        Service::Identity,
        Service::PatientIndex,
        Service::Consent,
        Service::RecordAggregator,
        Service::Audit,
    ];

    /// Its name, as in the flags (`--<name>-url`) and the logs.
    pub fn name(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::PatientIndex => "patient-index",
            Service::Consent => "consent",
            Service::RecordAggregator => "record-aggregator",
            Service::Audit => "audit",
        }
    }

    /// Its gRPC service name, as gRPC health knows it.
    pub fn grpc_name(self) -> &'static str {
        match self {
            Service::Identity => "mcr.identity.v1.Identity",
            Service::PatientIndex => "mcr.patient_index.v1.PatientIndex",
            Service::Consent => "mcr.consent.v1.Consent",
            Service::RecordAggregator => "mcr.records.v1.RecordAggregator",
            Service::Audit => "mcr.audit.v1.Audit",
        }
    }
}

/// The services' addresses.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub identity: String,
    pub patient_index: String,
    pub consent: String,
    pub record_aggregator: String,
    pub audit: String,
}

impl Endpoints {
    /// The address of `service`.
    pub fn url(&self, service: Service) -> &str {
        match service {
            Service::Identity => &self.identity,
            Service::PatientIndex => &self.patient_index,
            Service::Consent => &self.consent,
            Service::RecordAggregator => &self.record_aggregator,
            Service::Audit => &self.audit,
        }
    }

    /// A connected channel to `service`, or a sentence saying it is not there.
    pub async fn channel(&self, service: Service) -> Result<Channel, CliError> {
        let url = self.url(service).to_owned();
        let unreachable = |reason: String| CliError::Unreachable {
            service: service.name(),
            url: url.clone(),
            reason,
        };
        let setting = format!("--{}-url", service.name());
        let endpoint = mcr_runtime::tls::endpoint(&setting, &url, &client_tls_from_environment())
            .map_err(|error| unreachable(error.to_string()))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(60));
        endpoint
            .connect()
            .await
            .map_err(|error| unreachable(transport_reason(&error)))
    }
}

/// TLS for `https://` URLs, from the variables the services read too:
/// `MCR_GRPC__CLIENT_TLS__CA_PATH` (the CA that signed the services'
/// certificates) and, for mutual TLS, `MCR_GRPC__CLIENT_TLS__CERT_PATH` and
/// `MCR_GRPC__CLIENT_TLS__KEY_PATH`.
fn client_tls_from_environment() -> ClientTlsSettings {
    let path = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    ClientTlsSettings {
        ca_path: path("MCR_GRPC__CLIENT_TLS__CA_PATH"),
        cert_path: path("MCR_GRPC__CLIENT_TLS__CERT_PATH"),
        key_path: path("MCR_GRPC__CLIENT_TLS__KEY_PATH"),
        require_tls: false,
    }
}

/// The innermost cause of a transport error, which says what happened
/// ("Connection refused (os error 111)") where the outer ones do not.
fn transport_reason(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let reason = innermost.to_string();
    if reason.is_empty() {
        "the connection failed".to_owned()
    } else {
        reason
    }
}

/// `message` as a request carrying the current trace context and, when
/// given, `authorization: Bearer <token>`.
pub fn request<T>(message: T, token: Option<&str>) -> Result<Request<T>, CliError> {
    let mut request = Request::new(message);
    mcr_runtime::propagation::inject_current_into_grpc(request.metadata_mut());
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {token}")
            .parse()
            .map_err(|_| CliError::SessionEnded("the stored token is damaged".to_owned()))?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcr_runtime::settings::{LogFormat, TelemetrySettings};
    use mcr_runtime::telemetry::{self, LogOutput};

    #[test]
    fn requests_carry_the_commands_trace_and_the_token() {
        let settings = TelemetrySettings {
            log_format: LogFormat::Human,
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
        };
        let _guard = telemetry::init("mcr-test", &settings, LogOutput::Discard);
        let span = tracing::info_span!("mcr", command = "record");
        let _entered = span.enter();
        let first = request((), Some("a-token"))
            .ok()
            .unwrap_or_else(|| Request::new(()));
        let second = request((), None).ok().unwrap_or_else(|| Request::new(()));
        let trace_of = |request: &Request<()>| {
            request
                .metadata()
                .get("traceparent")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split('-').nth(1))
                .map(str::to_owned)
        };
        assert!(trace_of(&first).is_some(), "{:?}", first.metadata());
        assert_eq!(trace_of(&first), trace_of(&second), "one trace per command");
        assert_eq!(
            first
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer a-token")
        );
        assert!(second.metadata().get("authorization").is_none());
    }
}
