//! A hung consent or patient-index: the aggregator's deadline on its call
//! fires, the caller gets UNAVAILABLE or DEADLINE_EXCEEDED within a bound,
//! and nothing hangs.

use std::time::{Duration, Instant};

use mcr_proto::common::v1::Role;
use mcr_resilience::{Stack, person, update, view};

/// The aggregator's deadline on each dependency call in these tests.
const DEPENDENCY_TIMEOUT_MS: &str = "1000";
/// What a caller may wait at most: the deadline plus token fetch and slack.
const BOUND: Duration = Duration::from_secs(5);

/// A server that accepts TCP connections and never says a word (not even
/// the HTTP/2 preface): the worst kind of hung peer.
async fn hung_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(error) => panic!("{error}"),
    };
    let address = listener
        .local_addr()
        .unwrap_or_else(|error| panic!("{error}"));
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (format!("http://{address}"), task)
}

/// Person 1 known to patient-index and allowed to `token`'s holder; ingest
/// goes through an aggregator with working dependencies.
async fn known_person(stack: &Stack, token: &str) {
    let aggregator = stack.spawn_aggregator(&[]).await;
    let report = stack.publisher().publish_all([update(1, 0, 1)]).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures.first());
    stack.wait_for_ingest(Duration::from_secs(30)).await;
    stack.allow(&person(1), token).await;
    let shown = view(aggregator.channel().await, token, &person(1)).await;
    assert!(
        matches!(&shown, Ok(record) if record.entries.len() == 1),
        "with working dependencies the view is served: {shown:?}"
    );
    if let Err(error) = aggregator.stop().await {
        panic!("{error}");
    }
}

async fn assert_fails_fast(stack: &Stack, setting: &str, hung_url: &str, token: &str, names: &str) {
    let aggregator = stack
        .spawn_aggregator(&[
            (setting, hung_url),
            ("MCR_RECORDS__DEPENDENCY_TIMEOUT_MS", DEPENDENCY_TIMEOUT_MS),
        ])
        .await;
    let channel = aggregator.channel().await;
    // Twice: the first call meets a fresh connection, the second one the
    // connection the first left hanging.
    for attempt in 1..=2 {
        let started = Instant::now();
        let outcome = view(channel.clone(), token, &person(1)).await;
        let elapsed = started.elapsed();
        let Err(status) = outcome else {
            panic!("attempt {attempt}: a view was served with {names} hung");
        };
        assert!(
            matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
            ),
            "attempt {attempt}: {status:?}"
        );
        assert!(
            status.message().contains(names),
            "attempt {attempt}: the message must name {names}: {}",
            status.message()
        );
        assert!(
            elapsed < BOUND,
            "attempt {attempt}: the call took {elapsed:?} with {names} hung"
        );
    }
    if let Err(error) = aggregator.stop().await {
        panic!("{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_consent_fails_views_unavailable_within_the_deadline() {
    let stack = Stack::start().await;
    let token = stack
        .professional("hung.consent", Role::ClinicalPractitioner)
        .await;
    known_person(&stack, &token).await;
    let (hung_url, _hung) = hung_server().await;
    assert_fails_fast(
        &stack,
        "MCR_RECORDS__CONSENT_URL",
        &hung_url,
        &token,
        "consent",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_patient_index_fails_views_unavailable_within_the_deadline() {
    let stack = Stack::start().await;
    let token = stack
        .professional("hung.index", Role::ClinicalPractitioner)
        .await;
    known_person(&stack, &token).await;
    let (hung_url, _hung) = hung_server().await;
    assert_fails_fast(
        &stack,
        "MCR_RECORDS__PATIENT_INDEX_URL",
        &hung_url,
        &token,
        "patient-index",
    )
    .await;
}
