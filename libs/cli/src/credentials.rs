//! The signed-in session, kept as other CLIs keep theirs: a JSON file in the
//! user's config directory (`~/.config/mcr/credentials.json`), readable by
//! the user only (0600), refreshed with the refresh token when the access
//! token is about to expire.

use std::io::Write;
use std::path::{Path, PathBuf};

use mcr_proto::identity::v1::identity_client::IdentityClient;
use mcr_proto::identity::v1::{RefreshTokenRequest, TokenSet};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::CliError;
use crate::services::{Endpoints, Service, request};

/// An access token is refreshed this long before it expires, so a command
/// never sends one that expires in flight.
const REFRESH_BEFORE_SECONDS: i64 = 30;

/// A stored sign-in.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    pub identity_url: String,
    pub username: String,
    pub access_token: String,
    pub access_token_expires_at: i64,
    pub refresh_token: String,
    pub refresh_token_expires_at: i64,
    pub session_id: String,
    pub organisation_code: String,
    pub role: String,
    pub job_title: String,
    pub scopes: Vec<String>,
}

// Tokens never reach a log or a debug print.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Credentials")
            .field("username", &self.username)
            .field("organisation_code", &self.organisation_code)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The credentials of a fresh token set.
    pub fn from_token_set(identity_url: &str, username: &str, tokens: TokenSet) -> Self {
        let seconds = |at: Option<prost_types::Timestamp>| at.map(|at| at.seconds).unwrap_or(0);
        let profile = tokens.role_profile.unwrap_or_default();
        Self {
            identity_url: identity_url.to_owned(),
            username: username.to_owned(),
            access_token: tokens.access_token,
            access_token_expires_at: seconds(tokens.access_token_expires_at),
            refresh_token: tokens.refresh_token,
            refresh_token_expires_at: seconds(tokens.refresh_token_expires_at),
            session_id: tokens.session_id,
            organisation_code: profile.organisation_code,
            role: crate::render::labels::role_label(profile.role).to_owned(),
            job_title: profile.job_title,
            scopes: tokens.scopes,
        }
    }

    fn needs_refresh(&self, now: i64) -> bool {
        self.access_token_expires_at - now < REFRESH_BEFORE_SECONDS
    }
}

/// Where credentials live: `--credentials`/`MCR_CREDENTIALS_FILE`, else
/// `<config dir>/mcr/credentials.json` (`$XDG_CONFIG_HOME` or `~/.config`).
pub fn default_path() -> Result<PathBuf, CliError> {
    dirs::config_dir()
        .map(|directory| directory.join("mcr").join("credentials.json"))
        .ok_or_else(|| {
            CliError::Local(
                "there is no config directory (HOME is not set); give one with --credentials"
                    .to_owned(),
            )
        })
}

/// Reads the stored sign-in; `NotLoggedIn` when there is none.
pub fn load(path: &Path) -> Result<Credentials, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::NotLoggedIn);
        }
        Err(error) => {
            return Err(CliError::Local(format!(
                "could not read {}: {error}",
                path.display()
            )));
        }
    };
    serde_json::from_str(&text).map_err(|_| {
        CliError::SessionEnded(format!("{} is not a credentials file", path.display()))
    })
}

/// Stores `credentials` readable by the user only: written to a 0600 file
/// beside the target, then renamed over it, so no moment exists where the
/// tokens sit in a file others can read or a half-written one.
pub fn save(path: &Path, credentials: &Credentials) -> Result<(), CliError> {
    let local = |what: &str, error: std::io::Error| {
        CliError::Local(format!("could not {what} {}: {error}", path.display()))
    };
    let directory = path.parent().unwrap_or(Path::new("."));
    create_private_directory(directory).map_err(|error| local("create the directory of", error))?;
    let temporary = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(credentials)
        .map_err(|error| CliError::Local(format!("could not encode the credentials: {error}")))?;
    let mut file = private_file(&temporary).map_err(|error| local("write", error))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| local("write", error))?;
    std::fs::rename(&temporary, path).map_err(|error| local("write", error))
}

/// Forgets the stored sign-in; true when there was one.
pub fn remove(path: &Path) -> Result<bool, CliError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(CliError::Local(format!(
            "could not remove {}: {error}",
            path.display()
        ))),
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its old mode through open: set it explicitly.
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(unix)]
fn create_private_directory(directory: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if directory.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
}

#[cfg(not(unix))]
fn create_private_directory(directory: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(directory)
}

/// A valid access token of the stored sign-in, refreshed (and stored
/// again) when it is about to expire.
pub async fn access_token(path: &Path, endpoints: &Endpoints) -> Result<Credentials, CliError> {
    let stored = load(path)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    if !stored.needs_refresh(now) {
        return Ok(stored);
    }
    if stored.refresh_token_expires_at <= now {
        return Err(CliError::SessionEnded("the session has expired".to_owned()));
    }
    let mut client = IdentityClient::new(endpoints.channel(Service::Identity).await?);
    let refreshed = client
        .refresh_token(request(
            RefreshTokenRequest {
                refresh_token: stored.refresh_token.clone(),
            },
            None,
        )?)
        .await
        .map_err(|status| match status.code() {
            tonic::Code::Unauthenticated | tonic::Code::FailedPrecondition => {
                CliError::SessionEnded(status.message().trim_end_matches('.').to_owned())
            }
            _ => CliError::rpc("refreshing your sign-in", status),
        })?
        .into_inner()
        .tokens
        .ok_or_else(|| CliError::SessionEnded("identity sent no tokens".to_owned()))?;
    let mut renewed =
        Credentials::from_token_set(&stored.identity_url, &stored.username, refreshed);
    if renewed.organisation_code.is_empty() {
        renewed.organisation_code = stored.organisation_code.clone();
        renewed.role = stored.role.clone();
        renewed.job_title = stored.job_title.clone();
    }
    save(path, &renewed)?;
    Ok(renewed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Credentials {
        Credentials {
            identity_url: "http://127.0.0.1:50051".to_owned(),
            username: "demo.gp".to_owned(),
            access_token: "secret-access".to_owned(),
            access_token_expires_at: 1_000,
            refresh_token: "secret-refresh".to_owned(),
            refresh_token_expires_at: 2_000,
            session_id: "s".to_owned(),
            organisation_code: "F81601".to_owned(),
            role: "GP / clinical practitioner".to_owned(),
            job_title: "GP".to_owned(),
            scopes: vec!["records:read".to_owned()],
        }
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let printed = format!("{:?}", example());
        assert!(!printed.contains("secret"), "{printed}");
    }

    #[test]
    fn refresh_is_due_shortly_before_expiry() {
        assert!(!example().needs_refresh(900));
        assert!(example().needs_refresh(980));
    }

    #[cfg(unix)]
    #[test]
    fn saved_credentials_are_private_and_round_trip() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir()
            .ok()
            .unwrap_or_else(|| panic!("a temp dir"));
        let path = directory.path().join("nested").join("credentials.json");
        assert!(matches!(load(&path), Err(CliError::NotLoggedIn)));
        assert!(save(&path, &example()).is_ok());
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .ok();
        assert_eq!(mode, Some(0o600));
        assert_eq!(load(&path).ok(), Some(example()));
        assert_eq!(remove(&path).ok(), Some(true));
        assert_eq!(remove(&path).ok(), Some(false));
    }
}
