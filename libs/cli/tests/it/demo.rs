//! `mcr demo seed` against the whole platform: the walkthrough it prints
//! works, and a second run adds nothing.

use mcr_testkit_identity::{ADMIN_PASSWORD, ADMIN_USERNAME};
use mcr_testkit_platform::{Options, Platform};

use super::support::Mcr;

#[tokio::test]
async fn the_demo_region_is_seeded_once_and_its_walkthrough_works() {
    let platform = Platform::start_with(Options {
        with_audit: true,
        ..Options::default()
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let mcr = Mcr::new(home.path(), Some(&platform));
    let namespace = platform.environment().id.clone();
    let seed = [
        "demo",
        "seed",
        "--persons",
        "200",
        "--no-progress",
        "--admin-username",
        ADMIN_USERNAME,
        "--admin-password",
        ADMIN_PASSWORD,
        "--namespace",
        &namespace,
    ];
    let first = mcr.run(&seed).await;
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stderr.contains(" 0 failed"), "{}", first.stderr);
    let patient = first
        .stdout
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("mcr record show ")
                .filter(|rest| rest.len() == 10)
        })
        .unwrap()
        .to_owned();

    let again = mcr.run(&seed).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stderr.contains(": 0 updates stored"),
        "{}",
        again.stderr
    );
    assert!(
        again.stderr.contains("consent facts recorded: 0 "),
        "{}",
        again.stderr
    );

    let login = mcr
        .run_with(
            &["login", "--username", "demo.gp"],
            &[("MCR_PASSWORD", mcr_cli::demo::plan::DEMO_PASSWORD)],
        )
        .await;
    assert_eq!(login.code, 0, "{login:?}");
    let shown = mcr.run(&["record", "show", &patient]).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(shown.stdout.contains("\nWithheld: "), "{}", shown.stdout);
    assert!(
        shown
            .stdout
            .contains("[The Maltings Surgery, Harlow (F81601)]"),
        "{}",
        shown.stdout
    );
}
