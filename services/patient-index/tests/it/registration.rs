//! RegisterPerson's outcomes, resolution and search.

use mcr_proto::common::v1::{PersonReference, Role, person_reference::Reference};
use mcr_proto::patient_index::v1::*;
use mcr_testkit_identity::with_token;

use crate::support::{self, identifier, person};

#[tokio::test]
async fn registration_creates_links_by_nhs_number_and_is_idempotent() {
    let index = support::start().await;
    let mut gp_record = person("Amelia", "Hartley", "1984-03-12", "cm20 1qx");
    gp_record.nhs_number = "943 476 5919".to_owned();
    gp_record.nhs_number_verification_status =
        NhsNumberVerificationStatus::PresentAndVerified as i32;
    let created = index
        .register(identifier("F81001", "P1001"), gp_record.clone())
        .await
        .expect("first registration");
    assert_eq!(created.outcome, RegisterOutcome::Created as i32);

    // The hospital knows her by another number and a different address, but the same verified NHS Number.
    let mut hospital_record = person("Amelia", "Hartley", "1984-03-12", "SG1 1AA");
    hospital_record.nhs_number = "9434765919".to_owned();
    hospital_record.nhs_number_verification_status =
        NhsNumberVerificationStatus::PresentAndVerified as i32;
    let linked = index
        .register(identifier("RQW", "H-77"), hospital_record)
        .await
        .expect("second registration");
    assert_eq!(linked.outcome, RegisterOutcome::LinkedByNhsNumber as i32);
    assert_eq!(linked.person_id, created.person_id);

    let again = index
        .register(identifier("F81001", "P1001"), gp_record)
        .await
        .expect("repeat");
    assert_eq!(again.outcome, RegisterOutcome::AlreadyLinked as i32);
    assert_eq!(again.person_id, created.person_id);

    let stored = index
        .person(&created.person_id)
        .await
        .person
        .expect("person");
    let demographics = stored.demographics.expect("demographics");
    assert_eq!(demographics.nhs_number, "9434765919", "stored normalised");
    assert_eq!(demographics.address.expect("address").postcode, "CM20 1QX");
    assert_eq!(stored.local_identifiers.len(), 2);

    let resolved = index
        .client
        .clone()
        .resolve_local_identifier(with_token(
            ResolveLocalIdentifierRequest {
                local_identifier: Some(identifier("RQW", "H-77")),
            },
            &index.clerk,
        ))
        .await
        .expect("resolve")
        .into_inner();
    assert_eq!(resolved.person_id, created.person_id);
    let batch = index
        .client
        .clone()
        .resolve_local_identifiers(with_token(
            ResolveLocalIdentifiersRequest {
                local_identifiers: vec![identifier("RQW", "H-77"), identifier("RQW", "unknown")],
            },
            &index.clerk,
        ))
        .await
        .expect("batch resolve")
        .into_inner();
    assert_eq!(batch.results[0].person_id, created.person_id);
    assert!(
        batch.results[1].person_id.is_empty(),
        "unknown identifiers are reported, not errors"
    );

    let by_nhs_number = get_person(&index, Reference::NhsNumber("943 476 5919".to_owned()))
        .await
        .expect("by nhs number");
    assert_eq!(
        by_nhs_number.person.expect("person").person_id,
        created.person_id
    );

    // By either provider's identifier: the same person, with both
    // identifiers, exactly as by id.
    let by_id = get_person(&index, Reference::PersonId(created.person_id.clone()))
        .await
        .expect("by id")
        .person
        .expect("person");
    for local in [identifier("F81001", "P1001"), identifier("RQW", "H-77")] {
        let by_identifier = get_person(&index, Reference::LocalIdentifier(local))
            .await
            .expect("by local identifier");
        assert!(!by_identifier.resolved_through_merge);
        assert_eq!(by_identifier.person.as_ref(), Some(&by_id));
    }
    let organisations: Vec<&str> = by_id
        .local_identifiers
        .iter()
        .map(|link| {
            link.identifier
                .as_ref()
                .expect("identifier")
                .organisation_code
                .as_str()
        })
        .collect();
    assert_eq!(organisations, ["F81001", "RQW"], "identifiers in order");
    let unknown = get_person(
        &index,
        Reference::LocalIdentifier(identifier("RQW", "H-78")),
    )
    .await
    .expect_err("an unregistered identifier");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(
        unknown.message().contains("not been registered"),
        "{unknown:?}"
    );
}

async fn get_person(
    index: &support::Index,
    reference: Reference,
) -> Result<GetPersonResponse, tonic::Status> {
    index
        .client
        .clone()
        .get_person(with_token(
            GetPersonRequest {
                person: Some(PersonReference {
                    reference: Some(reference),
                }),
                include_history: false,
            },
            &index.clerk,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_confident_demographic_match_links_and_explains_itself() {
    let index = support::start().await;
    let created = index
        .register(
            identifier("F81001", "P2001"),
            person("Josephine", "Okonkwo", "1962-11-04", "CM20 1QX"),
        )
        .await
        .expect("first");
    // One typo in the family name, no NHS Number: still her.
    let linked = index
        .register(
            identifier("RQW", "H-2001"),
            person("Josephine", "Okonkow", "1962-11-04", "CM20 1QX"),
        )
        .await
        .expect("second");
    assert_eq!(
        linked.outcome,
        RegisterOutcome::LinkedByDemographicMatch as i32
    );
    assert_eq!(linked.person_id, created.person_id);
    let candidate = &linked.candidates[0];
    assert_eq!(candidate.grade, MatchGrade::Certain as i32);
    assert!(candidate.match_weight > 0.0);
    let family = candidate
        .contributions
        .iter()
        .find(|contribution| contribution.field == MatchField::FamilyName as i32)
        .expect("the family name's contribution is explained");
    assert!(family.weight > 0.0 && family.similarity < 1.0, "{family:?}");
}

#[tokio::test]
async fn twins_are_not_auto_linked_but_queued_for_review() {
    let index = support::start().await;
    let first = index
        .register(
            identifier("F81001", "TWIN-A"),
            person("Olivia", "Brennan", "2015-06-30", "CM20 1QX"),
        )
        .await
        .expect("first twin");
    let second = index
        .register(
            identifier("F81001", "TWIN-B"),
            person("Sophie", "Brennan", "2015-06-30", "CM20 1QX"),
        )
        .await
        .expect("second twin");
    assert_ne!(
        second.person_id, first.person_id,
        "a wrong link would show one child's record to the other's clinician"
    );
    assert_eq!(
        second.outcome,
        RegisterOutcome::CreatedAndQueuedForReview as i32
    );
    assert!(!second.review_item_id.is_empty());

    let queue = index.review_queue().await;
    assert_eq!(queue.len(), 1);
    let item = &queue[0];
    assert_eq!(item.review_item_id, second.review_item_id);
    assert_eq!(
        item.candidates[0]
            .person
            .as_ref()
            .expect("candidate person")
            .person_id,
        first.person_id
    );

    let dismissed = index
        .client
        .clone()
        .dismiss_possible_duplicate(with_token(
            DismissPossibleDuplicateRequest {
                review_item_id: second.review_item_id.clone(),
                reason: "twins, confirmed by the practice".to_owned(),
            },
            &index.admin,
        ))
        .await
        .expect("dismiss");
    assert!(dismissed.into_inner().dismissed_at.is_some());
    let empty = index.review_queue().await;
    assert!(empty.is_empty());
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_the_field_and_scopes_are_enforced() {
    let index = support::start().await;
    let mut bad_nhs = person("Ada", "Lovelace", "1990-01-01", "CM20 1QX");
    bad_nhs.nhs_number = "943 476 5918".to_owned();
    let refused = index
        .register(identifier("F81001", "X1"), bad_nhs)
        .await
        .expect_err("bad check digit");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("demographics.nhs_number"),
        "{}",
        refused.message()
    );

    let future = index
        .register(
            identifier("F81001", "X2"),
            person("Ada", "Lovelace", "2999-01-01", "CM20 1QX"),
        )
        .await
        .expect_err("born in the future");
    assert!(
        future.message().contains("demographics.birth_date"),
        "{}",
        future.message()
    );
    let bad_postcode = index
        .register(
            identifier("F81001", "X3"),
            person("Ada", "Lovelace", "1990-01-01", "NOT A CODE"),
        )
        .await
        .expect_err("bad GB postcode");
    assert!(
        bad_postcode.message().contains("postcode"),
        "{}",
        bad_postcode.message()
    );

    let nurse = index
        .identity
        .token_for("nurse.index", "F81001", Role::Nurse)
        .await;
    let denied = index
        .client
        .clone()
        .register_person(with_token(
            RegisterPersonRequest {
                local_identifier: Some(identifier("F81001", "X4")),
                demographics: Some(person("Ada", "Lovelace", "1990-01-01", "CM20 1QX")),
            },
            &nurse,
        ))
        .await
        .expect_err("a nurse cannot register");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let anonymous = index
        .client
        .clone()
        .get_person(GetPersonRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn a_user_registers_only_their_own_organisations_identifiers() {
    let index = support::start().await;
    let register_as_clerk = |organisation: &str| {
        let mut client = index.client.clone();
        let request = with_token(
            RegisterPersonRequest {
                local_identifier: Some(identifier(organisation, "CLERK-1")),
                demographics: Some(person("Ada", "Lovelace", "1990-01-01", "CM20 1QX")),
            },
            &index.clerk,
        );
        async move { client.register_person(request).await }
    };
    let elsewhere = register_as_clerk("F81001")
        .await
        .expect_err("a clerk of RQW registering the GP practice's identifier");
    assert_eq!(elsewhere.code(), tonic::Code::PermissionDenied);
    assert!(
        elsewhere.message().contains("RQW") && elsewhere.message().contains("F81001"),
        "{}",
        elsewhere.message()
    );
    let own = register_as_clerk("RQW")
        .await
        .expect("their own organisation's");
    assert_eq!(own.into_inner().outcome, RegisterOutcome::Created as i32);
}

#[tokio::test]
async fn search_ranks_candidates_with_grades_and_pages() {
    let index = support::start().await;
    let target = index
        .register(
            identifier("F81001", "S1"),
            person("Harriet", "Whitmore", "1950-08-21", "CM20 1QX"),
        )
        .await
        .expect("register");
    index
        .register(
            identifier("F81001", "S2"),
            person("Henry", "Whitmore", "1948-02-02", "CM20 1QX"),
        )
        .await
        .expect("register");
    let search = |page_token: String| SearchPersonsRequest {
        query: Some(search_persons_request::Query::Demographics(
            DemographicQuery {
                family_name: "Whitmore".to_owned(),
                given_name: "Harriet".to_owned(),
                birth_date: "1950-08-21".to_owned(),
                postcode: String::new(),
                country: String::new(),
                sex: 0,
            },
        )),
        minimum_grade: MatchGrade::Possible as i32,
        page: Some(mcr_proto::common::v1::PageRequest {
            page_size: 1,
            page_token,
        }),
    };
    let first = index
        .client
        .clone()
        .search_persons(with_token(search(String::new()), &index.clerk))
        .await
        .expect("search")
        .into_inner();
    assert_eq!(first.candidates.len(), 1);
    let best = &first.candidates[0];
    assert_eq!(
        best.person.as_ref().expect("person").person_id,
        target.person_id
    );
    assert!(!best.contributions.is_empty());
    let token = first.page.expect("page").next_page_token;
    if !token.is_empty() {
        let second = index
            .client
            .clone()
            .search_persons(with_token(search(token), &index.clerk))
            .await
            .expect("page 2")
            .into_inner();
        for candidate in &second.candidates {
            assert!(
                candidate.match_weight <= best.match_weight,
                "ranked best first"
            );
        }
    }
    let too_big = SearchPersonsRequest {
        page: Some(mcr_proto::common::v1::PageRequest {
            page_size: 51,
            page_token: String::new(),
        }),
        ..search(String::new())
    };
    let refused = index
        .client
        .clone()
        .search_persons(with_token(too_big, &index.clerk))
        .await
        .expect_err("page too big");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let no_blocking_field = SearchPersonsRequest {
        query: Some(search_persons_request::Query::Demographics(
            DemographicQuery {
                given_name: "Harriet".to_owned(),
                ..DemographicQuery::default()
            },
        )),
        ..search(String::new())
    };
    let refused = index
        .client
        .clone()
        .search_persons(with_token(no_blocking_field, &index.clerk))
        .await
        .expect_err("no blocking field");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn a_sensitive_persons_address_and_contacts_are_withheld_from_professionals() {
    let index = support::start().await;
    let mut record = person("Rowan", "Ashdown", "1979-04-18", "CM20 1QX");
    record.phone = "01279 555123".to_owned();
    record.sensitive = true;
    let registered = index
        .register(identifier("F81001", "SENS-1"), record)
        .await
        .expect("register");
    let read = index
        .person(&registered.person_id)
        .await
        .person
        .expect("person");
    assert!(read.demographics_withheld);
    let demographics = read.demographics.expect("demographics");
    assert!(
        demographics.address.is_none(),
        "no address for a sensitive person"
    );
    assert!(
        demographics.phone.is_empty(),
        "no phone for a sensitive person"
    );
    assert_eq!(
        demographics.name.expect("name").family,
        "Ashdown",
        "the name is still shown"
    );
}

#[tokio::test]
async fn one_person_first_registered_by_many_providers_at_once_is_one_person() {
    let index = support::start().await;
    let registrations = (0..8).map(|provider| {
        let index = &index;
        async move {
            let mut record = person("Imogen", "Ashby", "1991-07-21", "CM20 1QX");
            record.nhs_number_verification_status =
                NhsNumberVerificationStatus::PresentAndVerified as i32;
            record.nhs_number = "9434765919".to_owned();
            index
                .register(identifier(&format!("ORG{provider:03}"), "P1"), record)
                .await
                .expect("registration")
                .person_id
        }
    });
    let persons = futures::future::join_all(registrations).await;
    assert!(
        persons.iter().all(|person| *person == persons[0]),
        "concurrent first registrations made several persons: {persons:?}"
    );
}
