//! The whole platform through the `mcr` binary: two organisations publish
//! one person's updates, a clinician with a care relationship and
//! permission reads them in order, a clinician without is refused, and the
//! person's access report shows both while the audit chain verifies.

use std::time::Duration;

use mcr_connector::builder::RecordUpdateBuilder;
use mcr_proto::common::v1::{Address, Category, HumanName, Role};
use mcr_proto::patient_index::v1::{Demographics, Sex};
use mcr_testkit_platform::{Options, Platform, local_person};
use serde_json::json;

use super::support::Mcr;

const NHS_NUMBER: &str = "9434765919";

fn demographics() -> Demographics {
    Demographics {
        nhs_number: NHS_NUMBER.to_owned(),
        name: Some(HumanName {
            prefix: String::new(),
            given: vec!["Alex".to_owned()],
            family: "Jordan".to_owned(),
            suffix: String::new(),
        }),
        birth_date: "1961-04-12".to_owned(),
        sex: Sex::Female as i32,
        address: Some(Address {
            lines: vec!["1 Market Street".to_owned()],
            city: "Harlow".to_owned(),
            district: String::new(),
            postcode: "CM20 1AA".to_owned(),
            country: "GB".to_owned(),
        }),
        ..Demographics::default()
    }
}

fn day(days: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: 1_767_225_600 + days * 86_400 + 9 * 3_600,
        nanos: 0,
    }
}

#[tokio::test]
async fn a_clinician_reads_two_organisations_entries_and_every_access_is_audited() {
    let platform = Platform::start_with(Options {
        with_audit: true,
        ..Options::default()
    })
    .await;
    // Users (and their organisations) first: entries name their source organisation.
    platform
        .professional("dr.gp", "F81001", Role::ClinicalPractitioner)
        .await;
    platform.professional("nurse.rqw", "RQW", Role::Nurse).await;
    platform
        .professional("dr.stranger", "F81999", Role::ClinicalPractitioner)
        .await;
    platform
        .professional("privacy.officer", "MCR001", Role::PrivacyOfficer)
        .await;

    let gp_medication = RecordUpdateBuilder::upsert("F81001", "EMIS", Category::Medications)
        .patient("EMIS", "G-1")
        .entry("med-1", 1)
        .effective_time(day(1))
        .resource(&json!({
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationCodeableConcept": {"text": "Metformin 500mg tablets"},
            "subject": {"reference": "Patient/G-1"}
        }))
        .display_summary("Metformin 500mg tablets")
        .demographics(demographics())
        .build()
        .unwrap();
    let hospital_result = RecordUpdateBuilder::upsert("RQW", "PAS", Category::TestResults)
        .patient("PAS", "H-1")
        .entry("obs-1", 1)
        .effective_time(day(3))
        .resource(&json!({"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c 48 mmol/mol"}}))
        .display_summary("HbA1c 48 mmol/mol")
        .demographics(demographics())
        .build()
        .unwrap();
    let publisher = platform.publisher();
    // Newest first, so the timeline's order is the CLI's doing.
    publisher.publish(&hospital_result).await.unwrap();
    publisher.publish(&gp_medication).await.unwrap();
    platform.wait_for_ingest(Duration::from_secs(60)).await;

    let gp_token = platform
        .identity
        .tokens("dr.gp", mcr_testkit_identity::PASSWORD, "")
        .await
        .access_token;
    platform
        .allow(&local_person("F81001", "EMIS", "G-1"), "F81001", &gp_token)
        .await;

    let home = tempfile::tempdir().unwrap();
    let mcr = Mcr::new(home.path(), Some(&platform));
    let login = mcr
        .run_with(
            &["login", "--username", "dr.gp"],
            &[("MCR_PASSWORD", mcr_testkit_identity::PASSWORD)],
        )
        .await;
    assert_eq!(login.code, 0, "{login:?}");
    assert!(
        login
            .stdout
            .starts_with("Signed in as dr.gp (clinical practitioner at F81001)"),
        "{}",
        login.stdout
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(mcr.credentials_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let stored = std::fs::read_to_string(mcr.credentials_file()).unwrap();
    assert!(
        !login.stdout.contains(&stored[..20]),
        "the token never prints"
    );

    let shown = mcr.run(&["record", "show", "943 476 5919"]).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    let text = &shown.stdout;
    assert!(
        text.starts_with("JORDAN, Alex  NHS 943 476 5919  born 1961-04-12  CM20 1AA\n"),
        "{text}"
    );
    let medication = text
        .find("09:00  Medications       Metformin 500mg tablets")
        .unwrap_or(usize::MAX);
    let result = text
        .find("09:00  Test results      HbA1c 48 mmol/mol")
        .unwrap_or(usize::MAX);
    assert!(
        medication < result && result < usize::MAX,
        "oldest first: {text}"
    );
    assert!(
        text.contains("2026-01-02 Fri") && text.contains("2026-01-04 Sun"),
        "{text}"
    );
    assert!(text.contains("This access is audited (event "), "{text}");

    let json = mcr.run(&["record", "show", NHS_NUMBER, "--json"]).await;
    assert_eq!(json.code, 0, "{json:?}");
    let view: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let mut sources: Vec<&str> = view["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["source"]["organisation_code"].as_str().unwrap())
        .collect();
    sources.sort_unstable();
    assert_eq!(sources, ["F81001", "RQW"]);
    let person_id = view["person_id"].as_str().unwrap().to_owned();

    // No care relationship, no permission: refused, in words.
    let stranger_credentials = home.path().join("stranger.json");
    mcr.login("dr.stranger", &stranger_credentials).await;
    let refused = mcr
        .run(&[
            "record",
            "show",
            NHS_NUMBER,
            "--credentials",
            stranger_credentials.to_str().unwrap(),
        ])
        .await;
    assert_eq!(refused.code, 4, "{refused:?}");
    assert!(
        refused
            .stderr
            .starts_with("error: reading the care record of NHS Number 943 476 5919 failed: "),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("(access was refused).\n  hint: "),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("Status {"), "{}", refused.stderr);

    // The person's access report shows the view and the refusal.
    let privacy_credentials = home.path().join("privacy.json");
    mcr.login("privacy.officer", &privacy_credentials).await;
    let privacy = ["--credentials", privacy_credentials.to_str().unwrap()];
    let mut report = serde_json::Value::Null;
    for _ in 0..100 {
        let run = mcr
            .run(&[&["audit", "report", &person_id, "--json"][..], &privacy[..]].concat())
            .await;
        assert_eq!(run.code, 0, "{run:?}");
        report = serde_json::from_str(&run.stdout).unwrap();
        let outcomes: Vec<(String, String)> = report["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                (
                    entry["organisation_code"].as_str().unwrap().to_owned(),
                    entry["outcome"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let gp_viewed = outcomes
            .iter()
            .any(|(org, outcome)| org == "F81001" && outcome == "AUDIT_OUTCOME_PERMITTED");
        let stranger_refused = outcomes
            .iter()
            .any(|(org, outcome)| org == "F81999" && outcome != "AUDIT_OUTCOME_PERMITTED");
        if gp_viewed && stranger_refused {
            break;
        }
        report = serde_json::Value::Null;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !report.is_null(),
        "the report never showed the GP's view and the stranger's refusal"
    );
    let by_nhs_number = mcr
        .run(&[&["audit", "report", NHS_NUMBER][..], &privacy[..]].concat())
        .await;
    assert_eq!(by_nhs_number.code, 0, "{by_nhs_number:?}");
    assert!(!by_nhs_number.stdout.trim().is_empty());

    let verified = mcr
        .run(&[&["audit", "verify"][..], &privacy[..]].concat())
        .await;
    assert_eq!(verified.code, 0, "{verified:?}");
    assert!(
        verified.stdout.starts_with("The audit chain verifies: "),
        "{}",
        verified.stdout
    );

    let health = mcr.run(&["health"]).await;
    assert_eq!(health.code, 0, "{health:?}");
    assert_eq!(
        health.stdout.matches("SERVING").count(),
        5,
        "{}",
        health.stdout
    );
}
