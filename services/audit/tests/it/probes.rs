//! Enumeration: denied views of references that name nobody count toward
//! the unusual-access alert, one per distinct reference.

use std::time::Duration;

use futures::StreamExt;
use mcr_proto::audit::v1::{AuditAction, AuditOutcome, UnusualAccessAlert};
use mcr_proto::common::v1::PersonReference;
use mcr_proto::common::v1::person_reference::Reference;
use prost::Message;

use crate::support::{Harness, event};

/// A denied view of an NHS Number that resolved to nobody.
fn probe(actor: &str, nhs_number: &str) -> mcr_proto::audit::v1::AuditEvent {
    let mut probe = event(AuditAction::ViewRecord, actor, "RGT", "");
    probe.outcome = AuditOutcome::Denied as i32;
    probe.entry_count = 0;
    probe.categories.clear();
    probe.requested_person = Some(PersonReference {
        reference: Some(Reference::NhsNumber(nhs_number.to_owned())),
    });
    probe
}

#[tokio::test]
async fn probing_unregistered_persons_raises_the_alert_repeats_do_not() {
    let harness = Harness::start(&[("MCR_AUDIT__UNUSUAL_ACCESS_THRESHOLD", "5")]).await;
    let mut alerts = harness
        .nats
        .client()
        .subscribe(harness.nats.subject(mcr_audit::UNUSUAL_ACCESS_SUBJECT))
        .await
        .unwrap();

    // One mistyped number retried many times is one reference, not many.
    let retries: Vec<_> = (0..8).map(|_| probe("careful-1", "9434765919")).collect();
    harness.publish(&retries).await;
    harness.wait_for_stored(8).await;
    let quiet = tokio::time::timeout(Duration::from_secs(2), alerts.next()).await;
    assert!(
        quiet.is_err(),
        "retries of one reference alerted: {quiet:?}"
    );

    let numbers = [
        "9434765870",
        "9434765889",
        "9434765897",
        "9434765900",
        "9434765919",
        "9434765927",
    ];
    for number in numbers {
        harness.publish(&[probe("prober-1", number)]).await;
    }
    let alert = match tokio::time::timeout(Duration::from_secs(20), alerts.next()).await {
        Ok(Some(message)) => UnusualAccessAlert::decode(message.payload.as_ref()).unwrap(),
        other => panic!("expected an unusual-access alert: {other:?}"),
    };
    assert_eq!(
        alert.actor.map(|actor| actor.user_id).as_deref(),
        Some("prober-1")
    );
    assert_eq!(alert.threshold, 5);
    assert_eq!(alert.distinct_persons, 6);
    assert!(!alert.event_ids.is_empty());
}
