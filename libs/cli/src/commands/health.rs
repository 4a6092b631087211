//! `mcr health`: every service's gRPC health at a glance.

use std::time::{Duration, Instant};

use clap::Args;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::Context;
use crate::error::CliError;
use crate::services::{Service, request};

/// Health options.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Keep asking until every service is SERVING, for at most this many seconds.
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
    /// Print nothing; only the exit code tells.
    #[arg(long, short)]
    pub quiet: bool,
}

/// One service's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub service: &'static str,
    pub url: String,
    pub status: String,
    pub milliseconds: Option<u128>,
}

impl Row {
    fn serving(&self) -> bool {
        self.status == "SERVING"
    }
}

/// The table, aligned.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<18} {:<24} {:<26} {}\n",
        "SERVICE", "ADDRESS", "STATUS", "TIME"
    );
    for row in rows {
        let time = row
            .milliseconds
            .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"));
        out.push_str(&format!(
            "{:<18} {:<24} {:<26} {time}\n",
            row.service, row.url, row.status
        ));
    }
    out
}

async fn check(context: &Context, service: Service) -> Row {
    let url = context.endpoints.url(service).to_owned();
    let started = Instant::now();
    let status = match context.endpoints.channel(service).await {
        Err(_) => "UNREACHABLE".to_owned(),
        Ok(channel) => {
            let asked = request(
                HealthCheckRequest {
                    service: service.grpc_name().to_owned(),
                },
                None,
            );
            match asked {
                Err(_) => "UNKNOWN".to_owned(),
                Ok(asked) => match HealthClient::new(channel).check(asked).await {
                    Ok(answer) => ServingStatus::try_from(answer.into_inner().status)
                        .unwrap_or_default()
                        .as_str_name()
                        .to_owned(),
                    Err(status) => {
                        format!("ERROR ({})", crate::error::code_in_words(status.code()))
                    }
                },
            }
        }
    };
    Row {
        service: service.name(),
        url,
        status,
        milliseconds: Some(started.elapsed().as_millis()),
    }
}

/// Checks every service (waiting up to `--wait`), prints the table.
pub async fn run(context: &Context, arguments: HealthArgs) -> Result<(), CliError> {
    let deadline = Instant::now() + Duration::from_secs(arguments.wait);
    loop {
        let rows =
            futures::future::join_all(Service::ALL.map(|service| check(context, service))).await;
        let all_serving = rows.iter().all(Row::serving);
        if all_serving || Instant::now() >= deadline {
            if !arguments.quiet {
                crate::say_raw!("{}", table(&rows));
            }
            if all_serving {
                return Ok(());
            }
            let down: Vec<&str> = rows
                .iter()
                .filter(|row| !row.serving())
                .map(|row| row.service)
                .collect();
            return Err(CliError::Reported(format!(
                "not serving: {}; their logs say what is missing",
                down.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up() {
        let text = table(&[Row {
            service: "identity",
            url: "http://127.0.0.1:50051".to_owned(),
            status: "SERVING".to_owned(),
            milliseconds: Some(3),
        }]);
        let header = text.lines().next().unwrap_or_default();
        let row = text.lines().nth(1).unwrap_or_default();
        assert_eq!(header.find("STATUS"), row.find("SERVING"), "{text}");
        assert_eq!(header.find("TIME"), row.find("3 ms"), "{text}");
    }
}
