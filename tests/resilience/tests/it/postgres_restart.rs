//! PostgreSQL restarted under the running platform: every service reports
//! NOT_SERVING while it is away, then SERVING again and answers reads and
//! ingests updates, without a restart of its own.

use std::time::Duration;

use mcr_proto::common::v1::Role;
use mcr_resilience::{Stack, person, summary, update, view};
use mcr_testkit::RunningService;
use mcr_testkit::grpc;

async fn assert_health(services: &[(&str, &RunningService)], serving: bool, within: Duration) {
    for (name, service) in services {
        let channel = service.channel().await;
        if let Err(last) = grpc::wait_for_health(channel, "", serving, within).await {
            let wanted = if serving { "SERVING" } else { "NOT_SERVING" };
            panic!("{name} did not report {wanted} within {within:?} (last {last})");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_report_not_serving_without_postgres_and_recover_by_themselves() {
    let mut stack = Stack::start().await;
    let aggregator = stack.spawn_aggregator(&[]).await;
    let audit = stack.spawn_audit().await;
    let report = stack.publisher().publish_all([update(1, 0, 1)]).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures.first());
    stack.wait_for_ingest(Duration::from_secs(30)).await;
    let token = stack
        .professional("pg.viewer", Role::ClinicalPractitioner)
        .await;
    stack.allow(&person(1), &token).await;
    let channel = aggregator.channel().await;
    assert!(view(channel.clone(), &token, &person(1)).await.is_ok());

    stack.servers.postgres.stop().await;
    {
        let services = [
            ("identity", &stack.identity.service),
            ("patient-index", &stack.patient_index),
            ("consent", &stack.consent),
            ("record-aggregator", &aggregator),
            ("audit", &audit),
        ];
        assert_health(&services, false, Duration::from_secs(15)).await;
        let refused = view(channel.clone(), &token, &person(1)).await;
        assert!(
            matches!(&refused, Err(status) if status.code() == tonic::Code::Unavailable),
            "a view without PostgreSQL must fail UNAVAILABLE: {refused:?}"
        );
    }

    stack.servers.postgres.restart().await;
    let services = [
        ("identity", &stack.identity.service),
        ("patient-index", &stack.patient_index),
        ("consent", &stack.consent),
        ("record-aggregator", &aggregator),
        ("audit", &audit),
    ];
    assert_health(&services, true, Duration::from_secs(30)).await;
    // Reads and ingest work on fresh connections.
    let report = stack.publisher().publish_all([update(1, 0, 2)]).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures.first());
    stack.wait_for_ingest(Duration::from_secs(30)).await;
    let record = match view(channel, &token, &person(1)).await {
        Ok(record) => record,
        Err(status) => panic!("the view after PostgreSQL came back failed: {status}"),
    };
    assert_eq!(record.entries.len(), 1);
    assert_eq!(record.entries[0].display_summary, summary(1, 0, 2));
    if let Err(error) = aggregator.stop().await {
        panic!("{error}");
    }
    if let Err(error) = audit.stop().await {
        panic!("{error}");
    }
}
