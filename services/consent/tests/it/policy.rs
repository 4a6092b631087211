//! The policy directory: a bad policy stops start-up with its error; a
//! good override directory replaces the shipped policy.

use mcr_runtime::{Application, McrService, Settings};
use mcr_testkit::TestEnvironment;

fn policy_dir(files: &[(&str, &str)]) -> std::path::PathBuf {
    let directory = std::env::temp_dir().join(format!(
        "mcr-consent-policy-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&directory).expect("a temporary policy directory");
    for (name, text) in files {
        std::fs::write(directory.join(name), text).expect("writing a policy file");
    }
    directory
}

async fn build_with(directory: &std::path::Path) -> Result<Application, String> {
    let environment = TestEnvironment::new().await;
    let mut variables = environment.variables(&mcr_consent::ConsentService::SPEC);
    variables.insert(
        "MCR_CONSENT__POLICY_DIR".to_owned(),
        directory.display().to_string(),
    );
    let settings = Settings::<<mcr_consent::ConsentService as McrService>::Config>::load(
        &mcr_consent::ConsentService::SPEC,
        &variables,
    )
    .expect("settings");
    Application::build::<mcr_consent::ConsentService>(settings)
        .await
        .map_err(|error| error.to_string())
}

#[tokio::test]
async fn a_bad_policy_file_fails_start_up_with_its_error() {
    let directory = policy_dir(&[
        ("10-good.cedar", mcr_consent::domain::policy::SHIPPED_POLICY),
        (
            "20-bad.cedar",
            r#"permit (principal == Mcr::Role::"SURGEON", action == Mcr::Action::"ViewCategory", resource);"#,
        ),
    ]);
    let error = match build_with(&directory).await {
        Ok(_) => panic!("a policy naming an unknown role must not start"),
        Err(error) => error,
    };
    assert!(error.contains("consent.policy_dir"), "{error}");
    assert!(error.contains("20-bad.cedar"), "{error}");
    assert!(error.contains("does not validate"), "{error}");
    assert!(error.contains("SURGEON"), "{error}");

    let syntax = policy_dir(&[("only.cedar", "permit (principal, action, resource")]);
    let error = match build_with(&syntax).await {
        Ok(_) => panic!("a policy that does not parse must not start"),
        Err(error) => error,
    };
    assert!(
        error.contains("only.cedar") && error.contains("does not parse"),
        "{error}"
    );

    let empty = policy_dir(&[]);
    assert!(
        build_with(&empty).await.is_err(),
        "a directory without policies must not start"
    );
}

#[tokio::test]
async fn an_override_directory_replaces_the_shipped_policy() {
    let directory = policy_dir(&[
        (
            "schema.cedarschema",
            mcr_consent::domain::policy::SHIPPED_SCHEMA,
        ),
        (
            "clerks-only.cedar",
            r#"permit (principal == Mcr::Role::"ADMIN_CLERICAL", action == Mcr::Action::"ViewCategory", resource == Mcr::Category::"DEMOGRAPHICS");"#,
        ),
    ]);
    let policy =
        mcr_consent::load_policy(&directory.display().to_string()).expect("a valid override");
    let shipped = mcr_consent::domain::AccessPolicy::shipped().expect("shipped");
    assert_ne!(policy.version(), shipped.version());
    let direct = mcr_consent::domain::Purpose::DirectCare;
    assert!(
        policy
            .categories(mcr_proto::common::v1::Role::Nurse, direct)
            .is_empty()
    );
    assert_eq!(
        policy
            .categories(mcr_proto::common::v1::Role::AdminClerical, direct)
            .to_vec(),
        vec![mcr_proto::common::v1::Category::Demographics]
    );
    assert!(
        build_with(&directory).await.is_ok(),
        "a valid override starts"
    );
}
