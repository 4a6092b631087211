//! RegisterPersons: a batch decided in order as if registered one at a time,
//! all or nothing.

use mcr_proto::common::v1::Role;
use mcr_proto::patient_index::v1::*;
use mcr_testkit_identity::with_token;

use crate::support::{self, Index, identifier, person};

fn registration(
    identifier: mcr_proto::common::v1::LocalIdentifier,
    demographics: Demographics,
) -> RegisterPersonRequest {
    RegisterPersonRequest {
        local_identifier: Some(identifier),
        demographics: Some(demographics),
    }
}

fn verified(mut demographics: Demographics, nhs_number: &str) -> Demographics {
    demographics.nhs_number = nhs_number.to_owned();
    demographics.nhs_number_verification_status =
        NhsNumberVerificationStatus::PresentAndVerified as i32;
    demographics
}

async fn register_all(
    index: &Index,
    registrations: Vec<RegisterPersonRequest>,
) -> Result<Vec<RegisterPersonResponse>, tonic::Status> {
    index
        .client
        .clone()
        .register_persons(with_token(
            RegisterPersonsRequest { registrations },
            &index.connector,
        ))
        .await
        .map(|response| response.into_inner().results)
}

async fn resolve(index: &Index, organisation: &str, value: &str) -> Result<String, tonic::Status> {
    index
        .client
        .clone()
        .resolve_local_identifier(with_token(
            ResolveLocalIdentifierRequest {
                local_identifier: Some(identifier(organisation, value)),
            },
            &index.clerk,
        ))
        .await
        .map(|response| response.into_inner().person_id)
}

#[tokio::test]
async fn a_batch_is_decided_in_order_as_if_registered_one_at_a_time() {
    let index = support::start().await;
    let gp = index
        .register(
            identifier("F81001", "P1"),
            verified(
                person("Amelia", "Hartley", "1984-03-12", "CM20 1QX"),
                "9434765919",
            ),
        )
        .await
        .expect("a single registration first");

    let results = register_all(
        &index,
        vec![
            // The hospital's copy of the GP's patient: her verified NHS Number.
            registration(
                identifier("RQW", "H1"),
                verified(
                    person("Amelia", "Hartley", "1984-03-12", "SG1 1AA"),
                    "943 476 5919",
                ),
            ),
            // Someone new…
            registration(
                identifier("RQW", "H2"),
                person("Josephine", "Okonkwo", "1962-11-04", "CM20 1QX"),
            ),
            // …whom the council knows too (one typo): linked to the person
            // the batch itself just created.
            registration(
                identifier("C22001", "S2"),
                person("Josephine", "Okonkow", "1962-11-04", "CM20 1QX"),
            ),
            // Her twin sister: queued for review, never linked.
            registration(
                identifier("RQW", "H3"),
                person("Margaret", "Okonkwo", "1962-11-04", "CM20 1QX"),
            ),
            // The GP's patient again: already linked.
            registration(
                identifier("F81001", "P1"),
                verified(
                    person("Amelia", "Hartley", "1984-03-12", "CM20 1QX"),
                    "9434765919",
                ),
            ),
        ],
    )
    .await
    .expect("the batch registers");

    let outcomes: Vec<i32> = results.iter().map(|result| result.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            RegisterOutcome::LinkedByNhsNumber as i32,
            RegisterOutcome::Created as i32,
            RegisterOutcome::LinkedByDemographicMatch as i32,
            RegisterOutcome::CreatedAndQueuedForReview as i32,
            RegisterOutcome::AlreadyLinked as i32,
        ]
    );
    assert_eq!(results[0].person_id, gp.person_id);
    assert_eq!(results[4].person_id, gp.person_id);
    assert_eq!(results[2].person_id, results[1].person_id);
    assert_ne!(results[3].person_id, results[1].person_id);
    let explained = results[2].candidates[0]
        .person
        .as_ref()
        .expect("the linked candidate is filled in");
    assert_eq!(explained.person_id, results[1].person_id);
    assert!(results[2].candidates[0].match_weight > 0.0);
    assert_eq!(
        results[3].candidates[0]
            .person
            .as_ref()
            .expect("the review candidate is filled in")
            .person_id,
        results[1].person_id
    );

    // What the batch wrote is what single registrations would have written.
    assert_eq!(
        resolve(&index, "C22001", "S2").await.expect("linked"),
        results[1].person_id
    );
    let josephine = index
        .person(&results[1].person_id)
        .await
        .person
        .expect("person");
    assert_eq!(josephine.local_identifiers.len(), 2);
    let amelia = index.person(&gp.person_id).await.person.expect("person");
    assert_eq!(amelia.local_identifiers.len(), 2);
    let queue = index.review_queue().await;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].review_item_id, results[3].review_item_id);

    // A later single registration sees the batch's persons.
    let after = index
        .register(
            identifier("R1L", "M9"),
            person("Josephine", "Okonkwo", "1962-11-04", "CM20 1QX"),
        )
        .await
        .expect("a single registration after the batch");
    assert_eq!(after.person_id, results[1].person_id);
}

#[tokio::test]
async fn a_bad_batch_is_refused_whole_naming_the_registration() {
    let index = support::start().await;
    let mut bad_number = person("Amelia", "Hartley", "1984-03-12", "CM20 1QX");
    bad_number.nhs_number = "9434765918".to_owned();
    let refused = register_all(
        &index,
        vec![
            registration(
                identifier("RQW", "OK-1"),
                person("Josephine", "Okonkwo", "1962-11-04", "CM20 1QX"),
            ),
            registration(identifier("RQW", "BAD-1"), bad_number),
        ],
    )
    .await
    .expect_err("an invalid NHS Number");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("item 1"),
        "{}",
        refused.message()
    );
    assert!(
        refused.message().contains("nhs_number"),
        "{}",
        refused.message()
    );
    let unwritten = resolve(&index, "RQW", "OK-1")
        .await
        .expect_err("nothing of a refused batch is written");
    assert_eq!(unwritten.code(), tonic::Code::NotFound);

    let repeated = register_all(
        &index,
        vec![
            registration(
                identifier("RQW", "SAME"),
                person("Josephine", "Okonkwo", "1962-11-04", "CM20 1QX"),
            ),
            registration(
                identifier("RQW", "SAME"),
                person("Josephine", "Okonkwo", "1962-11-04", "CM20 1QX"),
            ),
        ],
    )
    .await
    .expect_err("one identifier twice");
    assert_eq!(repeated.code(), tonic::Code::InvalidArgument);
    assert!(
        repeated
            .message()
            .contains("item 1 repeats the local_identifier of item 0"),
        "{}",
        repeated.message()
    );

    for size in [0, 1_001] {
        let registrations = (0..size)
            .map(|n| {
                registration(
                    identifier("RQW", &format!("N{n}")),
                    person("Josephine", "Okonkwo", "1962-11-04", "CM20 1QX"),
                )
            })
            .collect();
        let status = register_all(&index, registrations)
            .await
            .expect_err("out of bounds");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{size}");
        assert!(status.message().contains("1-1000"), "{}", status.message());
    }

    let foreign = index
        .client
        .clone()
        .register_persons(with_token(
            RegisterPersonsRequest {
                registrations: vec![
                    registration(
                        identifier("RQW", "OWN-1"),
                        person("Josephine", "Okonkwo", "1962-11-04", "CM20 1QX"),
                    ),
                    registration(
                        identifier("F81001", "NOT-OURS"),
                        person("Josephine", "Okonkwo", "1962-11-04", "CM20 1QX"),
                    ),
                ],
            },
            &index.clerk,
        ))
        .await
        .expect_err("a clerk of RQW registering another organisation's identifier");
    assert_eq!(foreign.code(), tonic::Code::PermissionDenied);
    assert!(
        foreign.message().starts_with("item 1: "),
        "{}",
        foreign.message()
    );
    assert_eq!(
        resolve(&index, "RQW", "OWN-1")
            .await
            .expect_err("nothing written")
            .code(),
        tonic::Code::NotFound
    );

    let nurse = index
        .identity
        .token_for("nurse.bulk", "RQW", Role::Nurse)
        .await;
    let denied = index
        .client
        .clone()
        .register_persons(with_token(
            RegisterPersonsRequest {
                registrations: vec![registration(
                    identifier("RQW", "N-1"),
                    person("Josephine", "Okonkwo", "1962-11-04", "CM20 1QX"),
                )],
            },
            &nurse,
        ))
        .await
        .expect_err("a nurse has no index:write");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
}

const FAMILIES: [&str; 8] = [
    "Abbott", "Baxter", "Carver", "Dalton", "Ellison", "Fenwick", "Garner", "Hobbs",
];

#[tokio::test]
async fn concurrent_batches_naming_one_new_person_create_it_once() {
    let index = support::start().await;
    // Eight providers load their lists at once; each list holds the same
    // new patient under its own identifier, among others.
    let loads = (0..8).map(|provider| {
        let index = &index;
        async move {
            let organisation = format!("ORG{provider:02}");
            let mut registrations = vec![registration(
                identifier(&organisation, "SHARED"),
                person("Josephine", "Okonkwo", "1962-11-04", "CM20 1QX"),
            )];
            registrations.extend((0..20).map(|n| {
                registration(
                    identifier(&organisation, &format!("OWN-{n}")),
                    person(
                        "Ann",
                        FAMILIES[provider],
                        &format!("19{}-{:02}-{:02}", 40 + provider, 1 + n % 12, 1 + n),
                        "SG1 1AA",
                    ),
                )
            }));
            register_all(index, registrations).await
        }
    });
    let results = futures::future::join_all(loads).await;
    let shared: Vec<String> = results
        .into_iter()
        .map(|result| result.expect("each batch registers")[0].person_id.clone())
        .collect();
    assert!(
        shared.iter().all(|person| *person == shared[0]),
        "one person, whoever committed first: {shared:?}"
    );
}
