//! Running the real `mcr` binary with a private config directory.

use std::path::{Path, PathBuf};

use mcr_testkit_platform::Platform;

/// What one run of `mcr` did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `mcr` pointed at `platform` (or at nothing, when `None`), with HOME and
/// XDG_CONFIG_HOME in `home`, so the user's own credentials are never touched.
pub struct Mcr {
    pub home: PathBuf,
    urls: Vec<(&'static str, String)>,
}

impl Mcr {
    pub fn new(home: &Path, platform: Option<&Platform>) -> Self {
        let urls = match platform {
            Some(platform) => vec![
                ("MCR_IDENTITY_URL", platform.identity.identity_url()),
                (
                    "MCR_PATIENT_INDEX_URL",
                    platform.patient_index.grpc_endpoint(),
                ),
                ("MCR_CONSENT_URL", platform.consent.grpc_endpoint()),
                (
                    "MCR_RECORD_AGGREGATOR_URL",
                    platform.aggregator.grpc_endpoint(),
                ),
                (
                    "MCR_AUDIT_URL",
                    platform
                        .audit
                        .as_ref()
                        .map(|audit| audit.grpc_endpoint())
                        .unwrap_or_default(),
                ),
            ],
            // Nothing listens on these ports during the tests.
            None => vec![
                ("MCR_IDENTITY_URL", "http://127.0.0.1:9".to_owned()),
                ("MCR_PATIENT_INDEX_URL", "http://127.0.0.1:9".to_owned()),
                ("MCR_CONSENT_URL", "http://127.0.0.1:9".to_owned()),
                ("MCR_RECORD_AGGREGATOR_URL", "http://127.0.0.1:9".to_owned()),
                ("MCR_AUDIT_URL", "http://127.0.0.1:9".to_owned()),
            ],
        };
        Self {
            home: home.to_owned(),
            urls,
        }
    }

    /// The credentials file `mcr` uses by default here.
    pub fn credentials_file(&self) -> PathBuf {
        self.home
            .join("config")
            .join("mcr")
            .join("credentials.json")
    }

    pub async fn run(&self, arguments: &[&str]) -> Run {
        self.run_with(arguments, &[]).await
    }

    pub async fn run_with(&self, arguments: &[&str], environment: &[(&str, &str)]) -> Run {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcr"));
        command
            .args(arguments)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join("config"))
            .stdin(std::process::Stdio::null());
        for (name, value) in &self.urls {
            command.env(name, value);
        }
        for (name, value) in environment {
            command.env(name, value);
        }
        let output = command.output().await.unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Signs `username` in (the test kit's password) into `credentials`.
    pub async fn login(&self, username: &str, credentials: &Path) {
        let run = self
            .run_with(
                &[
                    "login",
                    "--username",
                    username,
                    "--credentials",
                    credentials.to_str().unwrap(),
                ],
                &[("MCR_PASSWORD", mcr_testkit_identity::PASSWORD)],
            )
            .await;
        assert_eq!(run.code, 0, "login as {username}: {run:?}");
    }
}

impl Mcr {
    /// `mcr` pointed at a lone identity service.
    pub fn with_identity(home: &Path, identity_url: String) -> Self {
        let mut mcr = Self::new(home, None);
        mcr.urls[0] = ("MCR_IDENTITY_URL", identity_url);
        mcr
    }
}
