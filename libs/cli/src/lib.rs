//! The `mcr` command-line client of My Care Record.
//!
//! `main.rs` parses and calls [`run`]; each command group is one module of
//! [`commands`]; what prints is formatted by the pure functions of
//! [`render`], [`person_arg`] and [`error`].
#![forbid(unsafe_code)]

/// Prints a line to standard output; a closed pipe (`mcr … | head`) ends
/// the output quietly instead of panicking.
#[macro_export]
macro_rules! say {
    ($($argument:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($argument)*);
    }};
}

/// Prints to standard output without a newline; see [`say!`].
#[macro_export]
macro_rules! say_raw {
    ($($argument:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($argument)*);
    }};
}

pub mod cli;
pub mod commands;
pub mod credentials;
pub mod demo;
pub mod error;
pub mod person_arg;
pub mod render;
pub mod services;

use std::path::PathBuf;

use clap::CommandFactory;
use tracing::Instrument;

use crate::cli::{Cli, Command, Global};
use crate::error::CliError;
use crate::services::Endpoints;

/// What every command needs: addresses and the credentials file.
#[derive(Debug, Clone)]
pub struct Context {
    pub endpoints: Endpoints,
    pub credentials_path: PathBuf,
    pub global: Global,
}

impl Context {
    /// The context the global flags describe.
    pub fn from_global(global: Global) -> Result<Self, CliError> {
        let credentials_path = match &global.credentials {
            Some(path) => path.clone(),
            None => credentials::default_path()?,
        };
        Ok(Self {
            endpoints: Endpoints {
                identity: global.identity_url.clone(),
                patient_index: global.patient_index_url.clone(),
                consent: global.consent_url.clone(),
                record_aggregator: global.record_aggregator_url.clone(),
                audit: global.audit_url.clone(),
            },
            credentials_path,
            global,
        })
    }

    /// The signed-in user's credentials with a fresh access token.
    pub async fn signed_in(&self) -> Result<credentials::Credentials, CliError> {
        credentials::access_token(&self.credentials_path, &self.endpoints).await
    }
}

/// Runs one command inside its root span, so every call it makes carries
/// one trace id through every service.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let span = tracing::info_span!("mcr", command = cli.command.name());
    let context = Context::from_global(cli.global)?;
    dispatch(context, cli.command).instrument(span).await
}

async fn dispatch(context: Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Login(arguments) => commands::login::login(&context, arguments).await,
        Command::Logout => commands::login::logout(&context).await,
        Command::Whoami => commands::login::whoami(&context).await,
        Command::Record(command) => commands::record::run(&context, command).await,
        Command::Person(command) => commands::person::run(&context, command).await,
        Command::Consent(command) => commands::consent::run(&context, command).await,
        Command::Audit(command) => commands::audit::run(&context, command).await,
        Command::Publish(arguments) => commands::publish::run(&context, arguments).await,
        Command::Health(arguments) => commands::health::run(&context, arguments).await,
        Command::Demo(command) => demo::run(&context, command).await,
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics on a closed pipe.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "mcr", &mut script);
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(&script);
            Ok(())
        }
    }
}
