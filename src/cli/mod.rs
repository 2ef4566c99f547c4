//! The headless CLI: every command scripts, tests and agents need.

mod build;
mod doctor;
mod runtimes;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::engine::Engine;
use crate::engine::runtimes::RuntimeSet;

#[derive(Debug, Parser)]
#[command(
    name = "sandpit",
    version,
    about = "Run untrusted code in isolated, per-user Docker sandboxes"
)]
pub struct Cli {
    /// A runtimes file that adds runtimes or overrides built-ins by name
    /// [default: $XDG_CONFIG_HOME/sandpit/runtimes.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub runtimes: Option<PathBuf>,

    /// sandpit's config file [default: $XDG_CONFIG_HOME/sandpit/config.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List runtimes and the state of their images (built, stale or missing)
    Runtimes {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Build runtime images, showing the build log live
    Build {
        /// Runtimes to build
        #[arg(value_name = "RUNTIME", required_unless_present = "all")]
        names: Vec<String>,
        /// Build every runtime
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// Rebuild even when the current image exists, without the layer cache
        #[arg(long)]
        force: bool,
    },
    /// Remove sandpit images that no current runtime uses
    Prune,
    /// Check the engine, base images and runtime images
    Doctor {
        /// Print JSON instead of a report
        #[arg(long)]
        json: bool,
    },
}

/// What the CLI needs from the user's files, loaded once.
pub struct Context {
    pub config: Config,
    pub runtimes: RuntimeSet,
}

impl Context {
    pub fn load(cli: &Cli) -> anyhow::Result<Self> {
        let config = Config::load(cli.config.as_deref())?;
        let runtimes =
            RuntimeSet::load(config::user_runtimes_file(cli.runtimes.as_deref()).as_deref())?;
        Ok(Self { config, runtimes })
    }
}

/// Runs a parsed command line; the result is the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let context = Context::load(&cli)?;
    match cli.command {
        None => {
            // The dashboard is not built yet; show what it would start from.
            runtimes::list(&context, false).await
        }
        Some(Command::Runtimes { json }) => runtimes::list(&context, json).await,
        Some(Command::Build { names, all, force }) => {
            build::build(&context, &names, all, force).await
        }
        Some(Command::Prune) => build::prune(&context).await,
        Some(Command::Doctor { json }) => doctor::doctor(&context, json).await,
    }
}

async fn connect() -> anyhow::Result<Engine> {
    Engine::connect().await
}
