//! `mcr demo seed`: a living demo region — the synthetic region's
//! organisations in identity, a professional in each role, its persons'
//! histories published through the connector over NATS, and consent facts
//! (opt-outs, permissions, restrictions). Idempotent: a re-run creates
//! nothing twice.

pub mod plan;
mod seed;

use clap::{Args, Subcommand};

use crate::Context;
use crate::error::CliError;

/// Demo commands.
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Seed the demo region into a running platform, then print what to try.
    Seed(SeedArgs),
}

/// How big a region, and the administrator who creates it.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Persons in the region.
    #[arg(long, default_value_t = 2_000)]
    pub persons: usize,
    /// Seed of the synthetic region (the same seed gives the same region).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The platform administrator's user name.
    #[arg(
        long,
        env = "MCR_IDENTITY__BOOTSTRAP_ADMIN__USERNAME",
        default_value = "admin"
    )]
    pub admin_username: String,
    /// The platform administrator's password.
    #[arg(
        long,
        env = "MCR_IDENTITY__BOOTSTRAP_ADMIN__PASSWORD",
        hide_env_values = true
    )]
    pub admin_password: String,
    /// Password of every demo professional (local demos only).
    #[arg(long, env = "MCR_DEMO_PASSWORD", default_value = plan::DEMO_PASSWORD, hide_default_value = true)]
    pub demo_password: String,
    /// Seconds to wait for the aggregator to register the persons.
    #[arg(long, default_value_t = 600)]
    pub ingest_timeout: u64,
    /// No progress bars (logs, CI).
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs a demo command.
pub async fn run(context: &Context, command: DemoCommand) -> Result<(), CliError> {
    match command {
        DemoCommand::Seed(arguments) => seed::seed(context, arguments).await,
    }
}
