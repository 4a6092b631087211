//! `mcr login`, `mcr logout`, `mcr whoami`.

use std::io::{BufRead, IsTerminal};

use clap::Args;
use mcr_proto::identity::v1::identity_client::IdentityClient;
use mcr_proto::identity::v1::revoke_token_request::Target;
use mcr_proto::identity::v1::{AuthenticateRequest, RevokeTokenRequest};

use crate::Context;
use crate::credentials::{self, Credentials};
use crate::error::CliError;
use crate::render::labels::role_label;
use crate::services::{Service, request};

/// Sign in.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Your user name.
    #[arg(long, short)]
    pub username: String,
    /// Read the password from standard input (first line) instead of a prompt.
    #[arg(long)]
    pub password_stdin: bool,
    /// The role profile to act in, when you have several (the list is
    /// printed when you sign in without one).
    #[arg(long)]
    pub role_profile: Option<String>,
}

/// Signs in and stores the session.
pub async fn login(context: &Context, arguments: LoginArgs) -> Result<(), CliError> {
    let password = read_password(&arguments)?;
    let mut client = IdentityClient::new(context.endpoints.channel(Service::Identity).await?);
    let answer = client
        .authenticate(request(
            AuthenticateRequest {
                username: arguments.username.clone(),
                password,
                role_profile_id: arguments.role_profile.clone().unwrap_or_default(),
            },
            None,
        )?)
        .await
        .map_err(|status| CliError::rpc("signing in", status))?
        .into_inner();
    if answer.role_profile_selection_required {
        let mut text = String::from(
            "you have several role profiles; sign in again with --role-profile <id>:\n",
        );
        for profile in &answer.role_profiles {
            text.push_str(&format!(
                "  {}  {} at {} ({})\n",
                profile.role_profile_id,
                role_label(profile.role),
                profile.organisation_code,
                profile.job_title
            ));
        }
        return Err(CliError::Usage(text.trim_end().to_owned()));
    }
    let tokens = answer
        .tokens
        .ok_or_else(|| CliError::Reported("identity answered without tokens".to_owned()))?;
    let stored =
        Credentials::from_token_set(&context.endpoints.identity, &arguments.username, tokens);
    credentials::save(&context.credentials_path, &stored)?;
    crate::say!(
        "Signed in as {} ({} at {}). Session kept in {}.",
        stored.username,
        stored.role,
        stored.organisation_code,
        context.credentials_path.display()
    );
    Ok(())
}

fn read_password(arguments: &LoginArgs) -> Result<String, CliError> {
    if let Ok(password) = std::env::var("MCR_PASSWORD")
        && !password.is_empty()
    {
        return Ok(password);
    }
    if arguments.password_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|error| CliError::Local(format!("could not read the password: {error}")))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    rpassword::prompt_password(format!("Password for {}: ", arguments.username))
        .map_err(|error| CliError::Local(format!("could not read the password: {error}")))
}

/// Ends the session at identity (best effort) and forgets it.
pub async fn logout(context: &Context) -> Result<(), CliError> {
    let stored = match credentials::load(&context.credentials_path) {
        Ok(stored) => stored,
        Err(CliError::NotLoggedIn) => {
            crate::say!("You were not logged in.");
            return Ok(());
        }
        Err(other) => return Err(other),
    };
    let revoked = async {
        let mut client = IdentityClient::new(context.endpoints.channel(Service::Identity).await?);
        client
            .revoke_token(request(
                RevokeTokenRequest {
                    target: Some(Target::RefreshToken(stored.refresh_token.clone())),
                    note: "signed out with mcr logout".to_owned(),
                },
                Some(&stored.access_token),
            )?)
            .await
            .map_err(|status| CliError::rpc("ending the session", status))
    }
    .await;
    credentials::remove(&context.credentials_path)?;
    match revoked {
        Ok(_) => crate::say!("Signed out; the session is ended."),
        Err(error) => crate::say!(
            "Forgot the session here, but identity could not end it ({error}); it expires by itself."
        ),
    }
    Ok(())
}

/// Prints the stored identity.
pub async fn whoami(context: &Context) -> Result<(), CliError> {
    let stored = context.signed_in().await?;
    crate::say!(
        "{} — {} at {}{}\nscopes: {}",
        stored.username,
        stored.role,
        stored.organisation_code,
        if stored.job_title.is_empty() {
            String::new()
        } else {
            format!(" ({})", stored.job_title)
        },
        stored.scopes.join(" ")
    );
    Ok(())
}
