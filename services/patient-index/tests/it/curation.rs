//! Merge, unmerge and relink: exact, announced, and guarded.

use std::time::Duration;

use futures::StreamExt;
use mcr_proto::patient_index::v1::*;
use mcr_testkit_identity::with_token;
use prost::Message;

use crate::support::{self, identifier, person};

fn identifiers_of(person: &Person) -> Vec<String> {
    let mut identifiers: Vec<String> = person
        .local_identifiers
        .iter()
        .filter_map(|linked| linked.identifier.as_ref())
        .map(|identifier| format!("{}|{}", identifier.organisation_code, identifier.value))
        .collect();
    identifiers.sort();
    identifiers
}

#[tokio::test]
async fn merge_then_unmerge_restores_exactly_the_previous_state_and_both_are_announced() {
    let index = support::start().await;
    let nats = async_nats::connect("nats://127.0.0.1:4222")
        .await
        .expect("nats");
    let mut announcements = nats
        .subscribe(index.environment.subject("mcr.index.v1.person.>"))
        .await
        .expect("subscribe");

    let survivor = index
        .register(
            identifier("F81001", "M1"),
            person("Grace", "Adeyemi", "1971-05-09", "CM20 1QX"),
        )
        .await
        .expect("a");
    index
        .register(
            identifier("RQW", "M1-H"),
            person("Grace", "Adeyemi", "1971-05-09", "CM20 1QX"),
        )
        .await
        .expect("linked to a");
    let other = index
        .register(
            identifier("RWR", "MH-9"),
            person("Gracie", "Adeyemi-Cole", "1971-09-05", "SG1 1AA"),
        )
        .await
        .expect("b");
    assert_ne!(other.person_id, survivor.person_id);
    let survivor_before = identifiers_of(
        &index
            .person(&survivor.person_id)
            .await
            .person
            .expect("survivor"),
    );
    let other_before = identifiers_of(&index.person(&other.person_id).await.person.expect("other"));

    let merged = index
        .client
        .clone()
        .merge_persons(with_token(
            MergePersonsRequest {
                surviving_person_id: survivor.person_id.clone(),
                merged_person_id: other.person_id.clone(),
                reason: "same person, confirmed with the patient".to_owned(),
                review_item_id: String::new(),
            },
            &index.admin,
        ))
        .await
        .expect("merge")
        .into_inner();
    let surviving = merged.surviving_person.expect("survivor");
    assert_eq!(
        identifiers_of(&surviving).len(),
        survivor_before.len() + other_before.len(),
        "the survivor keeps every identifier"
    );
    let through_merge = index.person(&other.person_id).await;
    assert!(through_merge.resolved_through_merge);
    assert_eq!(
        through_merge.person.expect("person").person_id,
        survivor.person_id
    );

    let message = tokio::time::timeout(Duration::from_secs(5), announcements.next())
        .await
        .expect("merge announced")
        .expect("message");
    assert!(
        message
            .subject
            .as_str()
            .ends_with("mcr.index.v1.person.merged"),
        "{}",
        message.subject
    );
    let event = PersonMerged::decode(message.payload.as_ref()).expect("a PersonMerged");
    assert_eq!(event.merge_id, merged.merge_id);
    assert_eq!(event.moved_identifiers.len(), other_before.len());

    // A merged-away person cannot be merged again.
    let again = index
        .client
        .clone()
        .merge_persons(with_token(
            MergePersonsRequest {
                surviving_person_id: survivor.person_id.clone(),
                merged_person_id: other.person_id.clone(),
                reason: "again".to_owned(),
                review_item_id: String::new(),
            },
            &index.admin,
        ))
        .await
        .expect_err("already merged");
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);

    let unmerged = index
        .client
        .clone()
        .unmerge_person(with_token(
            UnmergePersonRequest {
                target: Some(unmerge_person_request::Target::MergeId(
                    merged.merge_id.clone(),
                )),
                reason: "different people after all".to_owned(),
            },
            &index.admin,
        ))
        .await
        .expect("unmerge")
        .into_inner();
    assert_eq!(
        identifiers_of(&unmerged.surviving_person.expect("survivor")),
        survivor_before
    );
    let restored = unmerged.restored_person.expect("restored");
    assert_eq!(identifiers_of(&restored), other_before);
    assert_eq!(restored.status, PersonStatus::Active as i32);
    assert!(!index.person(&other.person_id).await.resolved_through_merge);

    let message = tokio::time::timeout(Duration::from_secs(5), announcements.next())
        .await
        .expect("unmerge announced")
        .expect("message");
    assert!(
        message
            .subject
            .as_str()
            .ends_with("mcr.index.v1.person.unmerged"),
        "{}",
        message.subject
    );
    let event = PersonUnmerged::decode(message.payload.as_ref()).expect("a PersonUnmerged");
    assert_eq!(event.restored_person_id, other.person_id);

    let twice = index
        .client
        .clone()
        .unmerge_person(with_token(
            UnmergePersonRequest {
                target: Some(unmerge_person_request::Target::MergeId(merged.merge_id)),
                reason: "again".to_owned(),
            },
            &index.admin,
        ))
        .await
        .expect_err("already undone");
    assert_eq!(twice.code(), tonic::Code::FailedPrecondition);

    let history = index
        .person(&survivor.person_id)
        .await
        .person
        .expect("person")
        .history;
    let kinds: Vec<i32> = history.iter().map(|entry| entry.kind).collect();
    assert!(
        kinds.contains(&(PersonEventKind::MergedFrom as i32))
            && kinds.contains(&(PersonEventKind::Unmerged as i32)),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn relinking_moves_an_identifier_only_when_asked_and_allowed() {
    let index = support::start().await;
    let first = index
        .register(
            identifier("F81001", "L1"),
            person("Noor", "Haddad", "1999-12-01", "CM20 1QX"),
        )
        .await
        .expect("first");
    let second = index
        .register(
            identifier("F81001", "L2"),
            person("Yusuf", "Rahman", "1980-01-15", "SG1 1AA"),
        )
        .await
        .expect("second");
    let link = |relink: bool, token: &str| {
        with_token(
            LinkLocalIdentifierRequest {
                local_identifier: Some(identifier("F81001", "L1")),
                person_id: second.person_id.clone(),
                relink,
                reason: "keyed against the wrong patient".to_owned(),
                review_item_id: String::new(),
            },
            token,
        )
    };
    let refused = index
        .client
        .clone()
        .link_local_identifier(link(false, &index.admin))
        .await
        .expect_err("linked elsewhere");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    let clerk_refused = index
        .client
        .clone()
        .link_local_identifier(link(true, &index.clerk))
        .await
        .expect_err("clerks cannot move links");
    assert_eq!(clerk_refused.code(), tonic::Code::FailedPrecondition);
    let moved = index
        .client
        .clone()
        .link_local_identifier(link(true, &index.admin))
        .await
        .expect("relink")
        .into_inner();
    assert_eq!(moved.previous_person_id, first.person_id);
    let resolved = index
        .client
        .clone()
        .resolve_local_identifier(with_token(
            ResolveLocalIdentifierRequest {
                local_identifier: Some(identifier("F81001", "L1")),
            },
            &index.clerk,
        ))
        .await
        .expect("resolve")
        .into_inner();
    assert_eq!(resolved.person_id, second.person_id);
}

#[tokio::test]
async fn an_unknown_review_item_is_refused_before_anything_changes() {
    let index = support::start().await;
    let first = index
        .register(
            identifier("F81001", "R1"),
            person("Ines", "Carvalho", "1988-02-14", "CM20 1QX"),
        )
        .await
        .expect("first");
    let second = index
        .register(
            identifier("F81001", "R2"),
            person("Tariq", "Aziz", "1975-07-07", "SG1 1AA"),
        )
        .await
        .expect("second");
    let refused = index
        .client
        .clone()
        .merge_persons(with_token(
            MergePersonsRequest {
                surviving_person_id: first.person_id.clone(),
                merged_person_id: second.person_id.clone(),
                reason: "same person".to_owned(),
                review_item_id: uuid::Uuid::new_v4().to_string(),
            },
            &index.admin,
        ))
        .await
        .expect_err("an unknown review item");
    assert_eq!(refused.code(), tonic::Code::NotFound);
    let untouched = index.person(&second.person_id).await;
    assert!(!untouched.resolved_through_merge, "nothing was merged");
}
