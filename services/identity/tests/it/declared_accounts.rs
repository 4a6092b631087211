//! Service accounts declared in settings (`identity.bootstrap_service_accounts`).

use std::time::Duration;

use mcr_proto::identity::v1::IssueServiceTokenRequest;
use mcr_testkit_identity::{self as support, Identity};

const AGGREGATOR_SECRET: &str = "local-only aggregator secret 0001";
const ROTATED_SECRET: &str = "local-only aggregator secret 0002";

fn declared(secret: &'static str, scopes: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "MCR_IDENTITY__BOOTSTRAP_SERVICE_ACCOUNTS__RECORD_AGGREGATOR__CLIENT_ID",
            "svc-record-aggregator",
        ),
        (
            "MCR_IDENTITY__BOOTSTRAP_SERVICE_ACCOUNTS__RECORD_AGGREGATOR__CLIENT_SECRET",
            secret,
        ),
        (
            "MCR_IDENTITY__BOOTSTRAP_SERVICE_ACCOUNTS__RECORD_AGGREGATOR__ORGANISATION_CODE",
            "MCR001",
        ),
        (
            "MCR_IDENTITY__BOOTSTRAP_SERVICE_ACCOUNTS__RECORD_AGGREGATOR__SCOPES",
            scopes,
        ),
        // An account that can never work: too short a secret. It is
        // reported and skipped; identity still starts.
        (
            "MCR_IDENTITY__BOOTSTRAP_SERVICE_ACCOUNTS__BROKEN__CLIENT_ID",
            "svc-broken",
        ),
        (
            "MCR_IDENTITY__BOOTSTRAP_SERVICE_ACCOUNTS__BROKEN__CLIENT_SECRET",
            "short",
        ),
        (
            "MCR_IDENTITY__BOOTSTRAP_SERVICE_ACCOUNTS__BROKEN__ORGANISATION_CODE",
            "MCR001",
        ),
        (
            "MCR_IDENTITY__BOOTSTRAP_SERVICE_ACCOUNTS__BROKEN__SCOPES",
            "index:read",
        ),
    ]
}

async fn issue(
    identity: &Identity,
    client_id: &str,
    secret: &str,
) -> Result<Vec<String>, tonic::Status> {
    identity
        .client
        .clone()
        .issue_service_token(IssueServiceTokenRequest {
            client_id: client_id.to_owned(),
            client_secret: secret.to_owned(),
            scopes: Vec::new(),
        })
        .await
        .map(|response| response.into_inner().scopes)
}

/// The bootstrap runs in the background: wait until `secret` is accepted.
async fn scopes_once_applied(identity: &Identity, secret: &str) -> Vec<String> {
    for _ in 0..100 {
        if let Ok(scopes) = issue(identity, "svc-record-aggregator", secret).await {
            return scopes;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the declared service account was never applied");
}

#[tokio::test]
async fn declared_accounts_are_created_then_follow_their_settings_across_restarts() {
    let first = support::start(&declared(AGGREGATOR_SECRET, "index:read consent:decide")).await;
    let mut scopes = scopes_once_applied(&first, AGGREGATOR_SECRET).await;
    scopes.sort();
    assert_eq!(scopes, ["consent:decide", "index:read"]);
    let broken = issue(&first, "svc-broken", "short")
        .await
        .expect_err("an invalid declared account is not created");
    assert_eq!(broken.code(), tonic::Code::Unauthenticated);

    // A second replica with the same settings changes nothing; a restart
    // with a rotated secret and more scopes updates the account in place.
    let same = support::start_in(
        first.environment.clone(),
        &declared(AGGREGATOR_SECRET, "index:read consent:decide"),
    )
    .await;
    scopes_once_applied(&same, AGGREGATOR_SECRET).await;
    drop(same);
    let rotated = support::start_in(
        first.environment.clone(),
        &declared(ROTATED_SECRET, "index:read,index:write,consent:decide"),
    )
    .await;
    let mut scopes = scopes_once_applied(&rotated, ROTATED_SECRET).await;
    scopes.sort();
    assert_eq!(scopes, ["consent:decide", "index:read", "index:write"]);
    let old = issue(&rotated, "svc-record-aggregator", AGGREGATOR_SECRET)
        .await
        .expect_err("the old secret no longer works");
    assert_eq!(old.code(), tonic::Code::Unauthenticated);
}
