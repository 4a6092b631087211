//! The two binaries as a provider team would run them.

use std::process::Stdio;

use mcr_connector::stream::RECORDS_STREAM;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

async fn run(binary: &str, arguments: &[&str], stdin: &str) -> Run {
    run_with(binary, arguments, &[], stdin).await
}

async fn run_with(
    binary: &str,
    arguments: &[&str],
    environment: &[(&str, &str)],
    stdin: &str,
) -> Run {
    let mut child = Command::new(binary)
        .args(arguments)
        .envs(environment.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{binary} could not start: {error}"));
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    }
    let output = child
        .wait_with_output()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn stored(namespace: &str) -> u64 {
    let client = async_nats::connect("nats://127.0.0.1:4222")
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    stored_on(client, namespace).await
}

async fn stored_on(client: async_nats::Client, namespace: &str) -> u64 {
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream
        .get_stream(format!("{namespace}_{RECORDS_STREAM}"))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    stream
        .info()
        .await
        .unwrap_or_else(|error| panic!("{error}"))
        .state
        .messages
}

const BUNDLE: &str = r#"{"resourceType": "Bundle", "type": "collection", "entry": [
  {"resource": {"resourceType": "MedicationStatement", "id": "m1", "status": "active",
    "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
    "subject": {"reference": "Patient/H1"}, "effectiveDateTime": "2024-05-17"}},
  {"resource": {"resourceType": "AllergyIntolerance", "id": "a1",
    "code": {"text": "Penicillin"}, "patient": {"reference": "Patient/H1"}}}
]}"#;

#[tokio::test]
async fn the_example_connector_publishes_a_bundle_from_stdin() {
    let environment = mcr_testkit::TestEnvironment::new().await;
    let arguments = [
        "--org",
        "RQW",
        "--system",
        "PAS",
        "--patient-id",
        "PAS|H1",
        "--nhs-number",
        "943 476 5919",
        "--namespace",
        &environment.id,
        "--ensure-streams",
    ];
    let first = run(env!("CARGO_BIN_EXE_mcr-connector"), &arguments, BUNDLE).await;
    assert!(first.success, "{}", first.stderr);
    assert_eq!(
        first.stdout.matches("published RQW:PAS:").count(),
        2,
        "{}",
        first.stdout
    );
    assert!(
        first
            .stdout
            .contains("(AllergyIntolerance, plans_and_alerts)")
    );
    assert_eq!(stored(&environment.id).await, 2);
    crate::remove_streams(&environment.id).await;
}

#[tokio::test]
async fn the_example_connector_presents_the_nats_token_it_is_given_and_no_other() {
    const TOKEN: &str = "connector-Tok3n";
    let nats = mcr_testkit::servers::OwnedNats::start_with_token(TOKEN).await;
    let url = nats.url();
    let arguments = [
        "--org",
        "RQW",
        "--system",
        "PAS",
        "--patient-id",
        "PAS|H1",
        "--nhs-number",
        "943 476 5919",
        "--namespace",
        "auth",
        "--ensure-streams",
        "--nats-url",
        &url,
    ];
    let connector = env!("CARGO_BIN_EXE_mcr-connector");
    let without = run(connector, &arguments, BUNDLE).await;
    assert!(!without.success, "no token, no connection");
    assert!(
        without
            .stderr
            .contains(&format!("could not reach NATS at {url}")),
        "{}",
        without.stderr
    );
    let wrong = run_with(
        connector,
        &arguments,
        &[("MCR_NATS__TOKEN", "guess")],
        BUNDLE,
    )
    .await;
    assert!(!wrong.success, "a wrong token is refused");
    assert!(!wrong.stderr.contains("guess"), "{}", wrong.stderr);

    let published = run_with(connector, &arguments, &[("MCR_NATS__TOKEN", TOKEN)], BUNDLE).await;
    assert!(published.success, "{}", published.stderr);
    let client = async_nats::ConnectOptions::with_token(TOKEN.to_owned())
        .connect(url.as_str())
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(stored_on(client, "auth").await, 2);
}

#[tokio::test]
async fn the_example_connector_explains_what_it_refused() {
    let environment = mcr_testkit::TestEnvironment::new().await;
    let arguments = [
        "--org",
        "RQW",
        "--system",
        "PAS",
        "--patient-id",
        "H1",
        "--nhs-number",
        "9434765918",
        "--namespace",
        &environment.id,
        "--dry-run",
    ];
    let refused = run(env!("CARGO_BIN_EXE_mcr-connector"), &arguments, BUNDLE).await;
    assert!(!refused.success);
    assert!(
        refused
            .stderr
            .contains("stdin: Bundle entry 1: demographics.nhs_number check digit does not match"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("9434765918"),
        "record content must not be echoed"
    );
}

#[tokio::test]
async fn the_synthetic_region_is_published_whole() {
    let environment = mcr_testkit::TestEnvironment::new().await;
    let arguments = [
        "--persons",
        "40",
        "--seed",
        "5",
        "--namespace",
        &environment.id,
    ];
    let published = run(env!("CARGO_BIN_EXE_mcr-synth"), &arguments, "").await;
    assert!(published.success, "{}", published.stderr);
    let line = published.stdout.lines().next().unwrap_or_default();
    let count: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(count > 40, "{line}");
    assert!(
        published.stdout.contains("failed 0"),
        "{}",
        published.stdout
    );
    assert_eq!(stored(&environment.id).await, count);
    crate::remove_streams(&environment.id).await;
}
