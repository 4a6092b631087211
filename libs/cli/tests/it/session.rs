//! The stored session: refreshed when the access token is about to
//! expire, ended by logout.

use mcr_proto::common::v1::Role;

use super::support::Mcr;

#[tokio::test]
async fn an_expiring_token_is_refreshed_and_logout_ends_the_session() {
    let identity = mcr_testkit_identity::start(&[]).await;
    identity
        .token_for("dr.session", "F81001", Role::ClinicalPractitioner)
        .await;
    let home = tempfile::tempdir().unwrap();
    let mcr = Mcr::with_identity(home.path(), identity.identity_url());
    let login = mcr
        .run_with(
            &["login", "--username", "dr.session"],
            &[("MCR_PASSWORD", mcr_testkit_identity::PASSWORD)],
        )
        .await;
    assert_eq!(login.code, 0, "{login:?}");

    // Make the stored access token look expired: whoami must refresh it.
    let path = mcr.credentials_file();
    let mut stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let old_refresh = stored["refresh_token"].clone();
    stored["access_token_expires_at"] = serde_json::json!(0);
    std::fs::write(&path, stored.to_string()).unwrap();
    let whoami = mcr.run(&["whoami"]).await;
    assert_eq!(whoami.code, 0, "{whoami:?}");
    assert!(
        whoami
            .stdout
            .starts_with("dr.session — clinical practitioner at F81001"),
        "{}",
        whoami.stdout
    );
    let refreshed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_ne!(
        refreshed["refresh_token"], old_refresh,
        "identity rotates the refresh token"
    );
    assert!(refreshed["access_token_expires_at"].as_i64().unwrap() > 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "still private after the refresh");
    }

    let logout = mcr.run(&["logout"]).await;
    assert_eq!(logout.code, 0, "{logout:?}");
    assert_eq!(logout.stdout, "Signed out; the session is ended.\n");
    assert!(!path.exists());
    let after = mcr.run(&["whoami"]).await;
    assert_eq!(after.code, 3, "{after:?}");
}
