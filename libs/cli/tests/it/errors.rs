//! Errors read as sentences, never a debug dump, with meaningful exit codes.

use super::support::Mcr;

#[tokio::test]
async fn an_unreachable_service_is_a_sentence_with_a_hint() {
    let home = tempfile::tempdir().unwrap();
    let mcr = Mcr::new(home.path(), None);
    let run = mcr
        .run_with(
            &["login", "--username", "demo.gp"],
            &[("MCR_PASSWORD", "whatever it is")],
        )
        .await;
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: could not reach identity at http://127.0.0.1:9: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: start the platform"),
        "{}",
        run.stderr
    );
    for dump in ["Status {", "Error {", "kind:", "source:"] {
        assert!(!run.stderr.contains(dump), "{}", run.stderr);
    }

    let health = mcr.run(&["health"]).await;
    assert_eq!(health.code, 1, "{health:?}");
    let identity_row: Vec<&str> = health
        .stdout
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        identity_row[..3],
        ["identity", "http://127.0.0.1:9", "UNREACHABLE"],
        "{}",
        health.stdout
    );
    assert!(
        health
            .stderr
            .starts_with("error: not serving: identity, patient-index"),
        "{}",
        health.stderr
    );
}

#[tokio::test]
async fn wrong_arguments_and_no_sign_in_are_explained() {
    let home = tempfile::tempdir().unwrap();
    let mcr = Mcr::new(home.path(), None);
    let bad_person = mcr.run(&["record", "show", "not-a-person"]).await;
    assert_eq!(bad_person.code, 2, "{bad_person:?}");
    assert!(
        bad_person
            .stderr
            .contains("\"not-a-person\" is not a person: give a platform person id"),
        "{}",
        bad_person.stderr
    );

    let not_logged_in = mcr.run(&["record", "show", "9434765919"]).await;
    assert_eq!(not_logged_in.code, 3, "{not_logged_in:?}");
    assert_eq!(
        not_logged_in.stderr,
        "error: you are not logged in.\n  hint: run `mcr login --username <your user name>` first\n"
    );

    let help = mcr.run(&["consent", "break-glass", "--help"]).await;
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("--justification"), "{}", help.stdout);
    let completions = mcr.run(&["completions", "bash"]).await;
    assert_eq!(completions.code, 0);
    assert!(
        completions.stdout.contains("_mcr()"),
        "{}",
        &completions.stdout[..200.min(completions.stdout.len())]
    );
}
