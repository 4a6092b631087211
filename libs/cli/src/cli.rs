//! The command line: every command, flag and its help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;

/// mcr — the My Care Record command-line client.
///
/// Sign in, read a person's shared care record, search persons, record
/// consent, read access reports, publish FHIR as a connector and check the
/// platform's health. Service addresses default to a local platform
/// (./scripts/run-platform).
#[derive(Debug, Parser)]
#[command(name = "mcr", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the services are, and where the sign-in is kept.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// identity's gRPC address.
    #[arg(
        long,
        global = true,
        env = "MCR_IDENTITY_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub identity_url: String,
    /// patient-index's gRPC address.
    #[arg(
        long,
        global = true,
        env = "MCR_PATIENT_INDEX_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub patient_index_url: String,
    /// consent's gRPC address.
    #[arg(
        long,
        global = true,
        env = "MCR_CONSENT_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub consent_url: String,
    /// record-aggregator's gRPC address.
    #[arg(
        long,
        global = true,
        env = "MCR_RECORD_AGGREGATOR_URL",
        default_value = "http://127.0.0.1:50054"
    )]
    pub record_aggregator_url: String,
    /// audit's gRPC address.
    #[arg(
        long,
        global = true,
        env = "MCR_AUDIT_URL",
        default_value = "http://127.0.0.1:50055"
    )]
    pub audit_url: String,
    /// The credentials file [default: <config dir>/mcr/credentials.json].
    #[arg(long, global = true, env = "MCR_CREDENTIALS_FILE")]
    pub credentials: Option<PathBuf>,
    /// NATS server, TLS and credentials (publish, demo).
    #[command(flatten)]
    pub nats: mcr_connector::connection::NatsConnection,
    /// Subject and stream namespace (tests and shared development servers).
    #[arg(long, global = true, env = "MCR_NATS__NAMESPACE", default_value = "")]
    pub namespace: String,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in to identity and keep the session (0600 file in your config dir).
    Login(commands::login::LoginArgs),
    /// End the session at identity and forget it here.
    Logout,
    /// Who you are signed in as.
    Whoami,
    /// Read a person's care record.
    #[command(subcommand)]
    Record(commands::record::RecordCommand),
    /// Find persons in the patient index.
    #[command(subcommand)]
    Person(commands::person::PersonCommand),
    /// Record or read a person's consent: opt-outs, permission, care
    /// relationships, restrictions, break-glass.
    #[command(subcommand)]
    Consent(commands::consent::ConsentCommand),
    /// Read the audit trail: a person's access report, the chain's integrity.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Publish FHIR R4 resources or Bundles as a provider's connector.
    Publish(commands::publish::PublishArgs),
    /// Every service's health at a glance.
    Health(commands::health::HealthArgs),
    /// Seed a demo region (organisations, professionals, persons, consent).
    #[command(subcommand)]
    Demo(crate::demo::DemoCommand),
    /// Print shell completions, e.g. `mcr completions bash > /etc/bash_completion.d/mcr`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The command's name, for its root span.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Login(_) => "login",
            Command::Logout => "logout",
            Command::Whoami => "whoami",
            Command::Record(_) => "record",
            Command::Person(_) => "person",
            Command::Consent(_) => "consent",
            Command::Audit(_) => "audit",
            Command::Publish(_) => "publish",
            Command::Health(_) => "health",
            Command::Demo(_) => "demo",
            Command::Completions { .. } => "completions",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
