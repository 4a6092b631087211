//! Who may query, and what queries, reports and exports return.

use futures::StreamExt;
use mcr_proto::audit::v1::*;
use mcr_proto::common::v1::{OrganisationType, PageRequest, Role};

use crate::support::{Harness, event, head, person, views, with_token};

fn by_person(person: &str, page_size: u32, page_token: &str) -> QueryEventsRequest {
    QueryEventsRequest {
        person_id: person.to_owned(),
        include_fhir: true,
        page: Some(PageRequest {
            page_size,
            page_token: page_token.to_owned(),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn querying_others_events_without_audit_read_is_permission_denied() {
    let harness = Harness::start(&[]).await;
    let nurse = harness.token("nurse.one", Role::Nurse).await;
    let privacy_officer = harness.token("privacy.officer", Role::PrivacyOfficer).await;
    let mut client = harness.client.clone();

    let refused = client
        .query_events(with_token(by_person(&person(), 10, ""), &nurse))
        .await;
    assert_eq!(
        refused.map(|_| ()).map_err(|status| status.code()),
        Err(tonic::Code::PermissionDenied)
    );
    let refused = client
        .get_subject_access_report(with_token(
            GetSubjectAccessReportRequest {
                person_id: person(),
                ..Default::default()
            },
            &nurse,
        ))
        .await;
    assert_eq!(
        refused.map(|_| ()).map_err(|status| status.code()),
        Err(tonic::Code::PermissionDenied)
    );
    let refused = client
        .verify_chain(with_token(VerifyChainRequest::default(), &nurse))
        .await;
    assert_eq!(
        refused.map(|_| ()).map_err(|status| status.code()),
        Err(tonic::Code::PermissionDenied)
    );
    // A privacy officer reads but does not export.
    let refused = client
        .export_events(with_token(ExportEventsRequest::default(), &privacy_officer))
        .await;
    assert_eq!(
        refused.map(|_| ()).map_err(|status| status.code()),
        Err(tonic::Code::PermissionDenied)
    );
    // No token at all.
    let refused = client
        .query_events(tonic::Request::new(by_person(&person(), 10, "")))
        .await;
    assert_eq!(
        refused.map(|_| ()).map_err(|status| status.code()),
        Err(tonic::Code::Unauthenticated)
    );
}

#[tokio::test]
async fn anyone_may_query_their_own_actions() {
    let harness = Harness::start(&[]).await;
    let nurse = harness.token("nurse.one", Role::Nurse).await;
    let answer = harness
        .client
        .clone()
        .query_events(with_token(QueryEventsRequest::default(), &nurse))
        .await;
    assert_eq!(
        answer.map(|_| ()).map_err(|status| status.code()),
        Err(tonic::Code::PermissionDenied)
    );
    // Their own user id, from a query of their own (they see it in the token's sub).
    let admin = harness.identity.admin_token().await;
    let user = harness
        .identity
        .client
        .clone()
        .get_user(with_token(
            mcr_proto::identity::v1::GetUserRequest {
                lookup: Some(mcr_proto::identity::v1::get_user_request::Lookup::Username(
                    "nurse.one".to_owned(),
                )),
            },
            &admin,
        ))
        .await
        .ok()
        .and_then(|response| response.into_inner().user)
        .unwrap_or_default();
    let own = harness
        .client
        .clone()
        .query_events(with_token(
            QueryEventsRequest {
                actor_user_id: user.user_id,
                ..Default::default()
            },
            &nurse,
        ))
        .await;
    assert!(own.is_ok(), "{own:?}");
}

#[tokio::test]
async fn queries_filter_page_newest_first_and_render_fhir() {
    let harness = Harness::start(&[]).await;
    let token = harness.token("privacy.officer", Role::PrivacyOfficer).await;
    let wanted = person();
    let other = person();
    harness.publish(&views(5, &wanted)).await;
    harness.publish(&views(3, &other)).await;
    harness.wait_for_stored(8).await;

    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = match harness
            .client
            .clone()
            .query_events(with_token(by_person(&wanted, 2, &page_token), &token))
            .await
        {
            Ok(response) => response.into_inner(),
            Err(status) => panic!("{status}"),
        };
        for stored in &page.events {
            let fhir: serde_json::Value =
                serde_json::from_str(&stored.fhir_audit_event_json).unwrap_or_default();
            assert_eq!(fhir["resourceType"], "AuditEvent");
            assert_eq!(
                fhir["entity"][0]["what"]["identifier"]["value"],
                wanted.as_str()
            );
            assert_eq!(stored.hash.len(), 32);
        }
        seen.extend(page.events.iter().map(|stored| stored.sequence));
        page_token = page.page.unwrap_or_default().next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 5, "every event once: {seen:?}");
    assert!(
        seen.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first: {seen:?}"
    );

    let by_organisation = harness
        .client
        .clone()
        .query_events(with_token(
            QueryEventsRequest {
                organisation_code: "rqw".to_owned(),
                actions: vec![AuditAction::ViewRecord as i32],
                ..Default::default()
            },
            &token,
        ))
        .await
        .map(|response| response.into_inner().events.len());
    assert_eq!(by_organisation.ok(), Some(8));
    let bad = harness
        .client
        .clone()
        .query_events(with_token(by_person("not-a-uuid", 2, ""), &token))
        .await;
    assert_eq!(
        bad.map(|_| ()).map_err(|status| status.code()),
        Err(tonic::Code::InvalidArgument)
    );
}

#[tokio::test]
async fn a_subject_access_report_names_organisations_and_their_contacts() {
    let harness = Harness::start(&[]).await;
    let token = harness.token("privacy.officer", Role::PrivacyOfficer).await;
    let admin = harness.identity.admin_token().await;
    harness
        .identity
        .create_organisation(&admin, "RQW8", OrganisationType::AcuteTrust)
        .await;
    let patient = person();
    let mut refused = event(AuditAction::ViewRecord, "nurse-2", "RQW8", &patient);
    refused.outcome = AuditOutcome::Denied as i32;
    harness
        .publish(&[
            event(AuditAction::ViewRecord, "nurse-1", "RQW8", &patient),
            event(AuditAction::BreakGlass, "paramedic-1", "UNKNOWN1", &patient),
            refused,
        ])
        .await;
    harness.wait_for_stored(3).await;

    let report = match harness
        .client
        .clone()
        .get_subject_access_report(with_token(
            GetSubjectAccessReportRequest {
                person_id: patient.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("{status}"),
    };
    assert_eq!(report.entries.len(), 2, "refused attempts only on request");
    assert!(report.entries[0].break_glass, "newest first");
    let known = report
        .organisations
        .iter()
        .find(|organisation| organisation.organisation_code == "RQW8")
        .cloned()
        .unwrap_or_default();
    assert_eq!(known.name, "Organisation RQW8");
    assert_eq!(
        known
            .data_protection_contact
            .map(|contact| contact.name)
            .as_deref(),
        Some("Data Protection Officer")
    );
    assert!(
        report.report_text.contains("Organisation RQW8"),
        "{}",
        report.report_text
    );
    assert!(
        report.report_text.contains("emergency"),
        "{}",
        report.report_text
    );
}

#[tokio::test]
async fn an_export_streams_in_order_and_resumes_from_a_sequence() {
    let harness = Harness::start(&[]).await;
    let administrator = harness
        .token("system.admin", Role::SystemAdministrator)
        .await;
    harness.publish(&views(12, &person())).await;
    harness.wait_for_stored(12).await;
    let last = head(&harness.database).await;

    let export = |from_sequence: u64| {
        let mut client = harness.client.clone();
        let token = administrator.clone();
        async move {
            let mut stream = match client
                .export_events(with_token(
                    ExportEventsRequest {
                        from_sequence,
                        to_sequence: last,
                        include_fhir: true,
                        ..Default::default()
                    },
                    &token,
                ))
                .await
            {
                Ok(response) => response.into_inner(),
                Err(status) => panic!("{status}"),
            };
            let mut sequences = Vec::new();
            while let Some(message) = stream.next().await {
                let stored = message
                    .ok()
                    .and_then(|message| message.event)
                    .unwrap_or_default();
                assert!(!stored.fhir_audit_event_json.is_empty());
                sequences.push(stored.sequence);
            }
            sequences
        }
    };
    assert_eq!(export(0).await, (1..=last).collect::<Vec<u64>>());
    assert_eq!(export(8).await, (8..=last).collect::<Vec<u64>>());
}
