//! The chain: it verifies after many appends, and tampering made directly in
//! the database is found at the right sequence.

use std::time::{Duration, Instant};

use mcr_proto::audit::v1::{ChainBreakKind, VerifyChainRequest, VerifyChainResponse};
use mcr_proto::common::v1::Role;

use crate::support::{Harness, head, person, views, with_token};

async fn verify(harness: &Harness, token: &str) -> VerifyChainResponse {
    match harness
        .client
        .clone()
        .verify_chain(with_token(VerifyChainRequest::default(), token))
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("VerifyChain failed: {status}"),
    }
}

/// Runs `statement` as the table owner with the append-only trigger
/// disabled: what someone with the owner's credentials could do.
async fn tamper(harness: &Harness, statement: &str) {
    let mut transaction = match harness.database.begin().await {
        Ok(transaction) => transaction,
        Err(error) => panic!("{error}"),
    };
    for sql in [
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
        statement,
        "ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only",
    ] {
        if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut *transaction)
            .await
        {
            panic!("{sql}: {error}");
        }
    }
    if let Err(error) = transaction.commit().await {
        panic!("{error}");
    }
}

#[tokio::test]
async fn the_chain_verifies_after_many_appends() {
    let harness = Harness::start(&[]).await;
    let token = harness.token("privacy.officer", Role::PrivacyOfficer).await;
    harness.publish(&views(1_500, &person())).await;
    harness.wait_for_stored(1_500).await;

    // Identity's sign-ins are audited too: the chain holds those as well.
    let total = head(&harness.database).await;
    assert!(total >= 1_500, "{total}");
    let verified = verify(&harness, &token).await;
    assert!(verified.ok, "{verified:?}");
    assert_eq!(verified.events_verified, total);
    assert_eq!((verified.verified_from, verified.verified_to), (1, total));
    assert_eq!(verified.head_sequence, total);
    assert_eq!(verified.head_hash.len(), 32);
    let (minimum, maximum, distinct): (i64, i64, i64) = sqlx::query_as(
        "SELECT min(sequence), max(sequence), count(DISTINCT event_id) FROM audit_events",
    )
    .fetch_one(&harness.database)
    .await
    .unwrap_or((0, 0, 0));
    let total = i64::try_from(total).unwrap_or(-1);
    assert_eq!((minimum, maximum, distinct), (1, total, total));
    let first_previous: Vec<u8> =
        sqlx::query_scalar("SELECT previous_hash FROM audit_events WHERE sequence = 1")
            .fetch_one(&harness.database)
            .await
            .unwrap_or_default();
    assert_eq!(first_previous, vec![0_u8; 32]);
}

#[tokio::test]
async fn the_database_refuses_update_and_delete_of_events() {
    let harness = Harness::start(&[]).await;
    harness.publish(&views(3, &person())).await;
    harness.wait_for_stored(3).await;
    for statement in [
        "UPDATE audit_events SET organisation_code = 'EVIL' WHERE sequence = 2",
        "DELETE FROM audit_events WHERE sequence = 2",
        "TRUNCATE audit_events",
    ] {
        let refused = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&harness.database)
            .await;
        assert!(
            matches!(&refused, Err(error) if error.to_string().contains("append-only")),
            "{statement}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn a_direct_update_is_detected_at_its_sequence() {
    let harness = Harness::start(&[]).await;
    let token = harness.token("privacy.officer", Role::PrivacyOfficer).await;
    harness.publish(&views(40, &person())).await;
    harness.wait_for_stored(40).await;

    // A queryable column changed, the chained bytes left alone.
    tamper(
        &harness,
        "UPDATE audit_events SET organisation_code = 'EVIL' WHERE sequence = 17",
    )
    .await;
    let verified = verify(&harness, &token).await;
    assert!(!verified.ok);
    assert_eq!(verified.first_broken_sequence, 17, "{verified:?}");
    assert_eq!(verified.break_kind(), ChainBreakKind::HashMismatch);
    assert_eq!(verified.events_verified, 16);
}

#[tokio::test]
async fn a_direct_update_of_the_event_bytes_is_detected_at_its_sequence() {
    let harness = Harness::start(&[]).await;
    let token = harness.token("privacy.officer", Role::PrivacyOfficer).await;
    harness.publish(&views(40, &person())).await;
    harness.wait_for_stored(40).await;
    let target = head(&harness.database).await - 3;

    // entry_count (field 13) of a view rewritten from 4 to 0: the bytes change.
    tamper(
        &harness,
        &format!(
            "UPDATE audit_events SET canonical = set_byte(canonical, position('\\x6804'::bytea in canonical), 0) WHERE sequence = {target}"
        ),
    )
    .await;
    let verified = verify(&harness, &token).await;
    let found = (
        verified.ok,
        verified.first_broken_sequence,
        verified.break_kind(),
    );
    assert_eq!(
        found,
        (false, target, ChainBreakKind::HashMismatch),
        "{verified:?}"
    );
}

#[tokio::test]
async fn a_direct_delete_is_detected_as_a_gap_at_its_sequence() {
    let harness = Harness::start(&[]).await;
    let token = harness.token("privacy.officer", Role::PrivacyOfficer).await;
    harness.publish(&views(40, &person())).await;
    harness.wait_for_stored(40).await;

    tamper(&harness, "DELETE FROM audit_events WHERE sequence = 23").await;
    let verified = verify(&harness, &token).await;
    assert_eq!(
        (
            verified.ok,
            verified.first_broken_sequence,
            verified.break_kind()
        ),
        (false, 23, ChainBreakKind::SequenceGap),
        "{verified:?}"
    );
}

#[tokio::test]
async fn a_truncated_tail_is_detected_against_the_last_checkpoint() {
    let harness = Harness::start(&[]).await;
    let token = harness.token("privacy.officer", Role::PrivacyOfficer).await;
    harness.publish(&views(30, &person())).await;
    harness.wait_for_stored(30).await;
    let last = head(&harness.database).await;
    // Checkpoints are taken every 200 ms in tests.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let verified = verify(&harness, &token).await;
        let checkpointed = verified
            .latest_checkpoint
            .as_ref()
            .map(|checkpoint| checkpoint.sequence);
        if checkpointed == Some(last) {
            assert!(verified.ok, "{verified:?}");
            assert!(verified.checkpoints_verified >= 1, "{verified:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of sequence {last} was taken"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The newest five removed: what is left is a consistent, shorter chain.
    let kept = last - 5;
    tamper(
        &harness,
        &format!("DELETE FROM audit_events WHERE sequence > {kept}"),
    )
    .await;
    let verified = verify(&harness, &token).await;
    let found = (
        verified.ok,
        verified.first_broken_sequence,
        verified.break_kind(),
    );
    assert_eq!(
        found,
        (false, kept + 1, ChainBreakKind::Truncated),
        "{verified:?}"
    );
    assert_eq!(verified.head_sequence, kept);
    let checkpoint = verified.latest_checkpoint.unwrap_or_default();
    assert_eq!(checkpoint.signature.len(), 64);
    assert_eq!(checkpoint.public_key.len(), 32);
}
