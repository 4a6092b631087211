//! Ingest: redelivery never duplicates, bad messages are dead-lettered with a
//! reason, alerts are raised.

use std::time::Duration;

use futures::StreamExt;
use mcr_proto::audit::v1::{AuditAction, UnusualAccessAlert};
use mcr_proto::consent::v1::BreakGlassAlert;
use prost::Message;

use crate::support::{Harness, event, person, stored_count, views};

/// Publishes `payload` as JetStream would redeliver it: a new `Nats-Msg-Id`,
/// so JetStream's own de-duplication does not catch it.
async fn publish_raw(harness: &Harness, subject: &str, payload: Vec<u8>) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", uuid::Uuid::new_v4().to_string().as_str());
    let acknowledged = match harness
        .nats
        .jetstream()
        .publish_with_headers(harness.nats.subject(subject), headers, payload.into())
        .await
    {
        Ok(acknowledgement) => acknowledgement.await,
        Err(error) => panic!("{error}"),
    };
    assert!(acknowledged.is_ok(), "{acknowledged:?}");
}

#[tokio::test]
async fn a_duplicate_delivery_stores_one_event() {
    let harness = Harness::start(&[]).await;
    let person = person();
    let first = event(AuditAction::ViewRecord, "nurse-1", "RQW", &person);
    let second = event(AuditAction::ViewEntry, "nurse-1", "RQW", &person);
    harness.publish(&[first.clone(), second]).await;
    harness.wait_for_stored(2).await;
    for _ in 0..3 {
        publish_raw(&harness, "mcr.audit.v1.view_record", first.encode_to_vec()).await;
    }
    // A marker after the copies: once it is stored, the copies were processed.
    let marker = event(AuditAction::ViewRecord, "nurse-1", "RQW", &person);
    harness.publish(&[marker]).await;
    harness.wait_for_stored(3).await;
    let copies: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE event_id = $1")
        .bind(uuid::Uuid::parse_str(&first.event_id).unwrap_or_default())
        .fetch_one(&harness.database)
        .await
        .unwrap_or(-1);
    assert_eq!(copies, 1);
    assert_eq!(stored_count(&harness.database).await, 3);
}

#[tokio::test]
async fn undecodable_and_invalid_events_are_dead_lettered_with_a_reason() {
    let harness = Harness::start(&[]).await;
    let mut dead_letters = match harness
        .nats
        .client()
        .subscribe(harness.nats.subject(mcr_audit::DEADLETTER_SUBJECT))
        .await
    {
        Ok(subscriber) => subscriber,
        Err(error) => panic!("{error}"),
    };
    publish_raw(
        &harness,
        "mcr.audit.v1.view_record",
        b"\xff\xff not protobuf".to_vec(),
    )
    .await;
    let mut without_actor = event(AuditAction::ViewRecord, "nurse-1", "RQW", &person());
    without_actor.actor = None;
    publish_raw(
        &harness,
        "mcr.audit.v1.view_record",
        without_actor.encode_to_vec(),
    )
    .await;

    let mut reasons = Vec::new();
    for _ in 0..2 {
        match tokio::time::timeout(Duration::from_secs(20), dead_letters.next()).await {
            Ok(Some(message)) => reasons.push(
                message
                    .headers
                    .and_then(|headers| headers.get("Mcr-Reason").map(|value| value.to_string()))
                    .unwrap_or_default(),
            ),
            other => panic!("expected a dead letter: {other:?}"),
        }
    }
    reasons.sort();
    assert!(reasons[0].starts_with("actor: required"), "{reasons:?}");
    assert!(
        reasons[1].starts_with("payload is not an AuditEvent"),
        "{reasons:?}"
    );
    // Nothing bad was stored, and good events still flow.
    harness.publish(&views(1, &person())).await;
    harness.wait_for_stored(1).await;
}

#[tokio::test]
async fn break_glass_and_unusual_access_raise_alerts() {
    let harness = Harness::start(&[("MCR_AUDIT__UNUSUAL_ACCESS_THRESHOLD", "3")]).await;
    let subscribe = |subject: &'static str| {
        let nats = harness.nats.clone();
        async move {
            match nats.client().subscribe(nats.subject(subject)).await {
                Ok(subscriber) => subscriber,
                Err(error) => panic!("{error}"),
            }
        }
    };
    let mut break_glass = subscribe(mcr_audit::BREAK_GLASS_SUBJECT).await;
    let mut unusual = subscribe(mcr_audit::UNUSUAL_ACCESS_SUBJECT).await;

    let mut emergency = event(AuditAction::BreakGlass, "paramedic-1", "RYC", &person());
    emergency.break_glass_grant_id = uuid::Uuid::now_v7().to_string();
    harness.publish(&[emergency.clone()]).await;
    let alert = match tokio::time::timeout(Duration::from_secs(20), break_glass.next()).await {
        Ok(Some(message)) => BreakGlassAlert::decode(message.payload.as_ref()).ok(),
        other => panic!("expected a break-glass alert: {other:?}"),
    };
    let grant = alert.and_then(|alert| alert.grant).unwrap_or_default();
    assert_eq!(grant.grant_id, emergency.break_glass_grant_id);
    assert_eq!(grant.person_id, emergency.person_id);

    // Five distinct persons viewed by one actor; the threshold is 3.
    let snooping: Vec<_> = (0..5)
        .map(|_| event(AuditAction::ViewRecord, "curious-1", "RQW", &person()))
        .collect();
    for one in &snooping {
        harness.publish(std::slice::from_ref(one)).await;
    }
    let alert = match tokio::time::timeout(Duration::from_secs(20), unusual.next()).await {
        Ok(Some(message)) => UnusualAccessAlert::decode(message.payload.as_ref()).ok(),
        other => panic!("expected an unusual-access alert: {other:?}"),
    };
    let alert = alert.unwrap_or_default();
    assert_eq!(
        alert.actor.map(|actor| actor.user_id).as_deref(),
        Some("curious-1")
    );
    assert_eq!(alert.threshold, 3);
    assert!(alert.distinct_persons > 3, "{}", alert.distinct_persons);
    assert!(!alert.event_ids.is_empty());
    // Raised once per window, however many more views follow.
    harness.wait_for_stored(6).await;
    let again = tokio::time::timeout(Duration::from_secs(2), unusual.next()).await;
    assert!(
        again.is_err(),
        "a second alert in the same window: {again:?}"
    );
}

#[tokio::test]
async fn two_replicas_share_the_stream_and_keep_one_chain() {
    let harness = Harness::start(&[("MCR_AUDIT__BATCH_SIZE", "50")]).await;
    let identity_url = harness.identity.identity_url();
    // A second replica: same database, same durable consumer.
    let second = mcr_testkit::spawn_service::<mcr_audit::AuditService>(
        &harness.identity.environment,
        &[
            ("MCR_AUTH__IDENTITY_URL", identity_url.as_str()),
            ("MCR_AUDIT__BATCH_SIZE", "50"),
        ],
    )
    .await;
    let token = harness
        .token(
            "privacy.officer",
            mcr_proto::common::v1::Role::PrivacyOfficer,
        )
        .await;
    let events = views(1_000, &person());
    let (first_half, second_half) = events.split_at(500);
    tokio::join!(harness.publish(first_half), harness.publish(second_half));
    harness.wait_for_stored(1_000).await;

    let verified = harness
        .client
        .clone()
        .verify_chain(crate::support::with_token(
            mcr_proto::audit::v1::VerifyChainRequest::default(),
            &token,
        ))
        .await
        .map(tonic::Response::into_inner);
    let verified = verified.unwrap_or_else(|status| panic!("{status}"));
    assert!(verified.ok, "{verified:?}");
    assert_eq!(verified.events_verified, verified.head_sequence);
    let distinct: i64 = sqlx::query_scalar("SELECT count(DISTINCT event_id) FROM audit_events")
        .fetch_one(&harness.database)
        .await
        .unwrap_or(-1);
    assert_eq!(u64::try_from(distinct).ok(), Some(verified.head_sequence));
    if let Err(error) = second.stop().await {
        panic!("the second replica did not stop cleanly: {error}");
    }
}
