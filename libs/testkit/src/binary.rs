//! Tests of a real service binary: start it as a process, probe it from the
//! outside as Kubernetes and operators would, stop it with SIGTERM.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcr_runtime::ServiceSpec;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use crate::TestEnvironment;
use crate::grpc;

/// A service binary running as a child process, its output captured.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
    /// The gRPC port it was told to use.
    pub grpc_port: u16,
    /// The admin port it was told to use.
    pub admin_port: u16,
    output: Arc<Mutex<Vec<String>>>,
}

impl ServiceProcess {
    /// Starts `binary` with `environment`'s settings plus `overrides`, on free ports.
    pub fn start(
        binary: &str,
        spec: &ServiceSpec,
        environment: &TestEnvironment,
        overrides: &[(&str, &str)],
    ) -> Self {
        let grpc_port = free_port();
        let admin_port = free_port();
        let mut command = Command::new(binary);
        command
            .envs(environment.variables(spec))
            .env("MCR_GRPC__PORT", grpc_port.to_string())
            .env("MCR_ADMIN__PORT", admin_port.to_string())
            .env_remove("RUST_LOG")
            .envs(overrides.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => panic!("cannot start {binary}: {error}"),
        };
        let output = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            collect_lines(stdout, Arc::clone(&output));
        }
        if let Some(stderr) = child.stderr.take() {
            collect_lines(stderr, Arc::clone(&output));
        }
        Self {
            child,
            grpc_port,
            admin_port,
            output,
        }
    }

    /// `http://127.0.0.1:<grpc port>`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        match self.output.lock() {
            Ok(lines) => lines.join("\n"),
            Err(poisoned) => poisoned.into_inner().join("\n"),
        }
    }

    /// Waits until a printed line contains every one of `needles`.
    pub async fn wait_for_output(
        &self,
        needles: &[&str],
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let found = self
                .output()
                .lines()
                .find(|line| needles.iter().all(|needle| line.contains(needle)))
                .map(str::to_owned);
            if let Some(line) = found {
                return Ok(line);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self.output())
    }

    /// SIGKILL (`kill -9`): no shutdown code runs. Waits until the process is gone.
    pub async fn kill_hard(&mut self) -> Result<(), String> {
        self.child
            .kill()
            .await
            .map_err(|error| format!("kill -9 failed: {error}"))
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub async fn terminate(
        &mut self,
        timeout: Duration,
    ) -> Result<std::process::ExitStatus, String> {
        let Some(pid) = self.child.id() else {
            return Err("the process has already exited".to_owned());
        };
        // `kill` keeps this crate free of unsafe signal calls.
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
        if !matches!(sent, Ok(status) if status.success()) {
            return Err(format!("could not send SIGTERM to {pid}"));
        }
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(error)) => Err(format!("waiting for the process failed: {error}")),
            Err(_) => Err(format!("still running {timeout:?} after SIGTERM")),
        }
    }
}

fn collect_lines<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    reader: R,
    output: Arc<Mutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if std::env::var_os("TEST_LOG").is_some() {
                println!("{line}");
            }
            match output.lock() {
                Ok(mut collected) => collected.push(line),
                Err(poisoned) => poisoned.into_inner().push(line),
            }
        }
    });
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()) {
        Ok(address) => address.port(),
        Err(error) => panic!("no free port on 127.0.0.1: {error}"),
    }
}

/// The whole life of a healthy binary: starts, reports SERVING, lists its
/// service through reflection, answers `/metrics` and `/healthz`, and exits 0
/// within 5 s of SIGTERM.
pub async fn assert_binary_lifecycle(binary: &str, spec: &ServiceSpec) {
    let environment = TestEnvironment::new().await;
    let mut process = ServiceProcess::start(binary, spec, &environment, &[]);
    let channel = grpc::connect(&process.grpc_endpoint()).await;

    if let Err(last) = grpc::wait_for_health(
        channel.clone(),
        spec.grpc_service_name,
        true,
        Duration::from_secs(30),
    )
    .await
    {
        panic!(
            "{} never reported SERVING (last: {last}); output:\n{}",
            spec.name,
            process.output()
        );
    }
    let overall = grpc::health_status(channel.clone(), "").await;
    assert!(
        matches!(
            overall,
            Ok(tonic_health::pb::health_check_response::ServingStatus::Serving)
        ),
        "the whole server (service \"\") must be SERVING too: {overall:?}"
    );

    let services = grpc::reflected_services(channel.clone()).await;
    let services = match services {
        Ok(services) => services,
        Err(status) => panic!("reflection failed: {status}"),
    };
    assert!(
        services
            .iter()
            .any(|service| service == spec.grpc_service_name),
        "reflection must list {}; it listed {services:?}",
        spec.grpc_service_name
    );
    assert!(
        services
            .iter()
            .any(|service| service == "grpc.health.v1.Health"),
        "{services:?}"
    );

    let (status, body) = match grpc::admin_get(process.admin_port, "/metrics").await {
        Ok(answer) => answer,
        Err(error) => panic!("/metrics did not answer: {error}"),
    };
    assert_eq!(status, 200, "/metrics body: {body}");
    assert!(
        body.contains(mcr_runtime::rpc_layer::REQUESTS_METRIC)
            && body.contains("grpc.health.v1.Health"),
        "/metrics must count the health checks just made:\n{body}"
    );
    let healthz = grpc::admin_get(process.admin_port, "/healthz").await;
    assert!(
        matches!(&healthz, Ok((200, body)) if body.starts_with("SERVING")),
        "{healthz:?}"
    );

    match process.terminate(Duration::from_secs(5)).await {
        Ok(status) => assert!(
            status.success(),
            "exit status after SIGTERM: {status}; output:\n{}",
            process.output()
        ),
        Err(problem) => panic!("{problem}; output:\n{}", process.output()),
    }
    // The pipes may still hold the last lines after the exit: give the readers a moment.
    if let Err(output) = process
        .wait_for_output(&["stopped"], Duration::from_secs(2))
        .await
    {
        panic!("the log must record the clean stop:\n{output}");
    }
}

/// With NATS unreachable the binary still starts, reports NOT_SERVING on
/// gRPC health and `/healthz`, and its log names NATS and where it looked.
pub async fn assert_not_serving_without_nats(binary: &str, spec: &ServiceSpec) {
    let environment = TestEnvironment::new().await;
    let closed_port = free_port();
    let nats_url = format!("nats://127.0.0.1:{closed_port}");
    let mut process = ServiceProcess::start(
        binary,
        spec,
        &environment,
        &[("MCR_NATS__URL", nats_url.as_str())],
    );
    let channel = grpc::connect(&process.grpc_endpoint()).await;

    let expected = format!("nats at {nats_url}");
    if let Err(output) = process
        .wait_for_output(&["NOT_SERVING", expected.as_str()], Duration::from_secs(20))
        .await
    {
        panic!("the log must name the missing dependency ({expected}); output:\n{output}");
    }
    // Give the database time to be created, so NATS is the only thing missing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = grpc::health_status(channel.clone(), spec.grpc_service_name).await;
    assert!(
        matches!(
            status,
            Ok(tonic_health::pb::health_check_response::ServingStatus::NotServing)
        ),
        "health must be NOT_SERVING without NATS: {status:?}"
    );
    let healthz = grpc::admin_get(process.admin_port, "/healthz").await;
    match healthz {
        Ok((503, body)) => assert!(
            body.contains(&expected) && !body.contains("postgresql"),
            "{body}"
        ),
        other => panic!("/healthz must answer 503 naming NATS: {other:?}"),
    }
    match process.terminate(Duration::from_secs(5)).await {
        Ok(status) => assert!(status.success(), "exit status after SIGTERM: {status}"),
        Err(problem) => panic!("{problem}; output:\n{}", process.output()),
    }
}
