//! `auth.caller_limits` reaches a running service: identity (the lightest
//! service, and one that builds its layer with `AuthLayer::for_service`)
//! started with a tiny user budget refuses one user who hammers it while
//! another user is still served.

use mcr_proto::common::v1::Role;
use mcr_proto::identity::v1::GetOrganisationRequest;
use mcr_testkit_identity::{PASSWORD, with_token};

const ORGANISATION: &str = "RQW";
const BURST: usize = 5;

#[tokio::test]
async fn a_user_over_the_configured_limit_is_refused_while_another_is_served() {
    let burst = BURST.to_string();
    let identity = mcr_testkit_identity::start(&[
        ("MCR_AUTH__CALLER_LIMITS__USERS__REQUESTS_PER_SECOND", "1"),
        ("MCR_AUTH__CALLER_LIMITS__USERS__BURST", &burst),
    ])
    .await;
    // The administrator is a user too: four calls, within its own burst.
    let admin = identity.admin_token().await;
    identity.ensure_organisation(&admin, ORGANISATION).await;
    for username in ["greedy.nurse", "quiet.nurse"] {
        identity
            .create_user(&admin, username, &[(ORGANISATION, Role::Nurse)])
            .await;
    }
    let greedy = identity
        .tokens("greedy.nurse", PASSWORD, "")
        .await
        .access_token;
    let quiet = identity
        .tokens("quiet.nurse", PASSWORD, "")
        .await
        .access_token;
    let read_organisation = |token: String| {
        let mut client = identity.client.clone();
        async move {
            client
                .get_organisation(with_token(
                    GetOrganisationRequest {
                        organisation_code: ORGANISATION.to_owned(),
                    },
                    &token,
                ))
                .await
        }
    };

    let mut answers = Vec::new();
    for _ in 0..3 * BURST {
        answers.push(read_organisation(greedy.clone()).await);
    }
    for (call, answer) in answers.iter().take(BURST).enumerate() {
        assert!(
            answer.is_ok(),
            "call {call} is within the burst: {answer:?}"
        );
    }
    let refused = answers
        .iter()
        .filter_map(|answer| answer.as_ref().err())
        .collect::<Vec<_>>();
    // At one call a second the bucket refills at most a few times while the
    // calls run; most of the 2 × BURST calls past the burst must be refused.
    assert!(
        refused.len() >= BURST,
        "{} refused: {refused:?}",
        refused.len()
    );
    for status in &refused {
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert!(
            status
                .message()
                .starts_with(&format!("too many requests from this caller: at most 1 per second (bursts of {BURST}); retry in ")),
            "{status:?}"
        );
        assert!(
            status.metadata().get("retry-after-ms").is_some(),
            "{status:?}"
        );
    }

    let served = read_organisation(quiet).await;
    assert!(
        served.is_ok(),
        "another user has a budget of their own: {served:?}"
    );
    identity
        .service
        .stop()
        .await
        .expect("identity stops cleanly");
}
