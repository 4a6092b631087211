//! Retention: old events are removed as an audited, checkpointed operation,
//! and what remains still verifies.

use std::time::{Duration, Instant};

use mcr_proto::audit::v1::{
    AuditAction, ExportEventsRequest, QueryEventsRequest, VerifyChainRequest,
};
use mcr_proto::common::v1::Role;

use crate::support::{Harness, person, views, with_token};

async fn oldest(harness: &Harness) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>("SELECT min(sequence) FROM audit_events")
        .fetch_one(&harness.database)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

#[tokio::test]
async fn events_past_retention_are_removed_audited_and_the_rest_verifies() {
    let harness = Harness::start(&[
        ("MCR_AUDIT__RETENTION_SECONDS", "2"),
        ("MCR_AUDIT__RETENTION_CHECK_INTERVAL_MS", "300"),
    ])
    .await;
    let officer = harness.token("privacy.officer", Role::PrivacyOfficer).await;
    let administrator = harness
        .token("system.admin", Role::SystemAdministrator)
        .await;
    harness.publish(&views(20, &person())).await;
    harness.wait_for_stored(20).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    while oldest(&harness).await <= 20 {
        assert!(
            Instant::now() < deadline,
            "nothing was removed past retention"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let verified = harness
        .client
        .clone()
        .verify_chain(with_token(VerifyChainRequest::default(), &officer))
        .await
        .map(tonic::Response::into_inner);
    let verified = verified.unwrap_or_else(|status| panic!("{status}"));
    assert!(verified.ok, "{verified:?}");
    assert!(verified.verified_from > 20, "{verified:?}");

    let purges = harness
        .client
        .clone()
        .query_events(with_token(
            QueryEventsRequest {
                actions: vec![AuditAction::RetentionPurge as i32],
                ..Default::default()
            },
            &officer,
        ))
        .await
        .map(|response| response.into_inner().events);
    let purges = purges.unwrap_or_else(|status| panic!("{status}"));
    assert!(!purges.is_empty(), "the removal must be audited");

    let exported = harness
        .client
        .clone()
        .export_events(with_token(
            ExportEventsRequest {
                from_sequence: 1,
                ..Default::default()
            },
            &administrator,
        ))
        .await;
    assert_eq!(
        exported.map(|_| ()).map_err(|status| status.code()),
        Err(tonic::Code::OutOfRange)
    );

    // Outside a purge, deleting is still refused.
    let refused = sqlx::query(
        "DELETE FROM audit_events WHERE sequence = (SELECT min(sequence) FROM audit_events)",
    )
    .execute(&harness.database)
    .await;
    assert!(refused.is_err(), "{refused:?}");
}
