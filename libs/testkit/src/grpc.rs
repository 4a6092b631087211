//! gRPC helpers for tests: connect, health, reflection.

use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// Connects to `endpoint`, retrying for a few seconds while the server starts.
pub async fn connect(endpoint: &str) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = match tonic::transport::Endpoint::from_shared(endpoint.to_owned()) {
            Ok(builder) => {
                builder
                    .connect_timeout(Duration::from_secs(1))
                    .connect()
                    .await
            }
            Err(error) => panic!("{endpoint} is not a valid endpoint: {error}"),
        };
        match attempt {
            Ok(channel) => return channel,
            Err(error) if Instant::now() > deadline => {
                panic!("cannot connect to {endpoint}: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The health status the server reports for `service` now.
pub async fn health_status(
    channel: Channel,
    service: &str,
) -> Result<ServingStatus, tonic::Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(response.into_inner().status())
}

/// Polls until `service` is SERVING (`want_serving`) or NOT_SERVING; on
/// timeout returns the last status seen, as text.
pub async fn wait_for_health(
    channel: Channel,
    service: &str,
    want_serving: bool,
    timeout: Duration,
) -> Result<(), String> {
    let wanted = if want_serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match health_status(channel.clone(), service).await {
            Ok(status) if status == wanted => return Ok(()),
            Ok(status) => last = format!("{status:?}"),
            Err(status) => last = format!("error {status}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last)
}

/// The services the server lists through gRPC reflection (v1).
pub async fn reflected_services(channel: Channel) -> Result<Vec<String>, tonic::Status> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let Some(response) = responses.next().await else {
        return Err(tonic::Status::unknown(
            "reflection closed the stream without answering",
        ));
    };
    match response?.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => Ok(list
            .service
            .into_iter()
            .map(|service| service.name)
            .collect()),
        other => Err(tonic::Status::unknown(format!(
            "unexpected reflection answer: {other:?}"
        ))),
    }
}

/// `GET path` on the admin port over plain HTTP/1.1; returns status and body.
pub async fn admin_get(admin_port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", admin_port)).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:.80}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Sends `request`'s bytes to `path` exactly as given — what a hostile or
/// broken client can send (invalid UTF-8, truncated or oversized messages)
/// — and returns the server's answer as bytes.
pub async fn unary_raw(
    channel: Channel,
    path: &'static str,
    request: tonic::Request<Vec<u8>>,
) -> Result<tonic::Response<Vec<u8>>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    grpc.unary(
        request,
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
}

/// A codec passing message bytes through untouched.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        buffer: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        buffer.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        buffer: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf;
        Ok(Some(buffer.copy_to_bytes(buffer.remaining()).to_vec()))
    }
}
