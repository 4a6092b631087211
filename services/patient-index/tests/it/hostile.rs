//! Hostile input over gRPC: unreadable bytes, oversized messages, huge
//! pages and absurd dates are each INVALID_ARGUMENT naming what was wrong.

use mcr_proto::common::v1::PageRequest;
use mcr_proto::patient_index::v1::*;
use mcr_testkit_identity::with_token;
use prost::Message;

use crate::support::{Index, identifier, person};

const SEARCH_PERSONS: &str = "/mcr.patient_index.v1.PatientIndex/SearchPersons";

/// An index whose messages may be at most 64 KiB.
async fn start_small() -> Index {
    crate::support::start_with(&[("MCR_GRPC__MAX_MESSAGE_BYTES", "65536")]).await
}

fn by_family(family_name: &str) -> SearchPersonsRequest {
    SearchPersonsRequest {
        query: Some(search_persons_request::Query::Demographics(
            DemographicQuery {
                family_name: family_name.to_owned(),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

#[tokio::test]
async fn hostile_requests_are_invalid_argument() {
    let index = start_small().await;
    let mut client = index.client.clone();

    // Invalid UTF-8 in a string field.
    let mut bytes = by_family("ZZZZZZZZ").encode_to_vec();
    let at = bytes
        .windows(8)
        .position(|window| window == b"ZZZZZZZZ")
        .expect("marker");
    bytes[at..at + 8].copy_from_slice(&[0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0xff]);
    let not_utf8 = mcr_testkit::grpc::unary_raw(
        index._service.channel().await,
        SEARCH_PERSONS,
        with_token(bytes, &index.clerk),
    )
    .await
    .expect_err("not UTF-8");
    assert_eq!(
        not_utf8.code(),
        tonic::Code::InvalidArgument,
        "{not_utf8:?}"
    );
    assert!(not_utf8.message().contains("UTF-8"), "{not_utf8:?}");

    // Bigger than grpc.max_message_bytes.
    let oversized = client
        .search_persons(with_token(by_family(&"a".repeat(100_000)), &index.clerk))
        .await
        .expect_err("too large");
    assert_eq!(
        oversized.code(),
        tonic::Code::InvalidArgument,
        "{oversized:?}"
    );
    assert!(oversized.message().contains("grpc.max_message_bytes"));

    let demographic = |query: DemographicQuery| SearchPersonsRequest {
        query: Some(search_persons_request::Query::Demographics(query)),
        ..Default::default()
    };
    let cases = [
        (
            SearchPersonsRequest {
                page: Some(PageRequest {
                    page_size: u32::MAX,
                    page_token: String::new(),
                }),
                ..by_family("Smith")
            },
            "page",
        ),
        (
            SearchPersonsRequest {
                page: Some(PageRequest {
                    page_size: 10,
                    page_token: "%%%".to_owned(),
                }),
                ..by_family("Smith")
            },
            "page",
        ),
        (by_family(&"a".repeat(10_000)), "demographics.family_name"),
        (by_family("Smith\u{0}"), "demographics.family_name"),
        (
            demographic(DemographicQuery {
                birth_date: "10000-01-01".to_owned(),
                ..Default::default()
            }),
            "demographics.birth_date",
        ),
        (
            demographic(DemographicQuery {
                birth_date: "-0001-01-01".to_owned(),
                ..Default::default()
            }),
            "demographics.birth_date",
        ),
        (
            demographic(DemographicQuery {
                birth_date: "1066-10-14".to_owned(),
                ..Default::default()
            }),
            "demographics.birth_date",
        ),
        (
            demographic(DemographicQuery {
                postcode: "'; DROP TABLE persons; --".to_owned(),
                ..Default::default()
            }),
            "demographics.postcode",
        ),
        (
            demographic(DemographicQuery {
                family_name: "Smith".to_owned(),
                sex: i32::MIN,
                ..Default::default()
            }),
            "demographics.sex",
        ),
        (
            SearchPersonsRequest {
                query: Some(search_persons_request::Query::NhsNumber(
                    "943 476 5919\u{202e}".to_owned(),
                )),
                ..Default::default()
            },
            "nhs_number",
        ),
    ];
    for (request, field) in cases {
        let refused = client
            .search_persons(with_token(request, &index.clerk))
            .await
            .expect_err(field);
        assert_eq!(
            refused.code(),
            tonic::Code::InvalidArgument,
            "{field}: {refused:?}"
        );
        assert!(refused.message().contains(field), "{field}: {refused:?}");
    }

    // A batch far over its limit, and an absurd date of death.
    let many = (0..1_001)
        .map(|n| identifier("RQW", &n.to_string()))
        .collect();
    let refused = client
        .resolve_local_identifiers(with_token(
            ResolveLocalIdentifiersRequest {
                local_identifiers: many,
            },
            &index.clerk,
        ))
        .await
        .expect_err("over 1000");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    let mut dead = person("Ada", "Hostile", "1950-01-01", "CM20 1QX");
    dead.death_date = "9999-12-31".to_owned();
    let refused = client
        .register_person(with_token(
            RegisterPersonRequest {
                local_identifier: Some(identifier("RQW", "H-1")),
                demographics: Some(dead),
            },
            &index.clerk,
        ))
        .await
        .expect_err("death in the future");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("death_date"), "{refused:?}");
}
