//! The headless CLI: every command scripts, tests and agents need.

mod build;
mod doctor;
mod exec;
mod files;
mod mcp;
mod runtimes;
mod sandbox;
mod sessions;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::engine::Engine;
use crate::engine::images::BuildOptions;
use crate::engine::policy::{ByteSize, PolicyOverrides};
use crate::engine::runtimes::RuntimeSet;
use crate::engine::sandbox::UserId;
use crate::sessions::{SessionConfig, SessionManager};

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

    /// Where users' workspace folders live [default: $XDG_DATA_HOME/sandpit/workspaces]
    #[arg(long, global = true, value_name = "DIR")]
    pub workspace_root: Option<PathBuf>,

    /// The dashboard's theme: dark, light, high-contrast, or one of yours
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,

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
    /// Create a user's sandbox (or start it if it exists)
    New {
        user: UserId,
        #[arg(long)]
        runtime: Option<String>,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Run a command in a user's sandbox, creating it when missing
    Exec {
        #[arg(long)]
        user: UserId,
        #[arg(long)]
        runtime: Option<String>,
        /// Wall-clock limit in seconds; the command's whole process tree is
        /// killed then, and sandpit exits 124
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
        /// Extra environment, KEY=VALUE (repeatable)
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env_pair)]
        env: Vec<(String, String)>,
        /// Working folder inside the sandbox [default: the workspace]
        #[arg(long)]
        workdir: Option<String>,
        /// Bytes of output kept per stream before the command is stopped
        #[arg(long, value_name = "BYTES")]
        output_cap: Option<usize>,
        /// Run the command as one shell string instead of an argv
        #[arg(long)]
        shell: bool,
        #[command(flatten)]
        policy: PolicyArgs,
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Copy FILE into the workspace and run it with the runtime's `run` template
    Run {
        #[arg(long)]
        user: UserId,
        #[arg(long)]
        runtime: Option<String>,
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
        file: PathBuf,
    },
    /// File operations confined to a user's workspace
    Files {
        #[arg(long)]
        user: UserId,
        #[command(subcommand)]
        op: FilesOp,
    },
    /// Live CPU, memory and pids of a user's sandbox
    Stats {
        #[arg(long)]
        user: UserId,
        #[arg(long)]
        json: bool,
        /// Keep printing a sample every second
        #[arg(long)]
        follow: bool,
    },
    /// Start a stopped sandbox
    Start {
        user: UserId,
    },
    /// Stop a sandbox; its workspace is kept
    Stop {
        user: UserId,
    },
    Restart {
        user: UserId,
    },
    /// Remove a sandbox; the workspace is kept unless --purge
    Rm {
        user: UserId,
        /// Delete the workspace folder too
        #[arg(long)]
        purge: bool,
    },
    /// List every session: user, runtime, state, container, created, last used, CPU %, memory
    Sessions {
        #[arg(long)]
        json: bool,
    },
    /// Probe from USER's sandbox against OTHER's: each probe blocked or LEAKED
    CheckIsolation {
        user: UserId,
        other: UserId,
        #[arg(long)]
        json: bool,
    },
    /// Stop sessions idle for longer than sessions.idle_timeout (for cron)
    Reap,
    /// Show a sandbox's state and the security settings in force
    Inspect {
        user: UserId,
        #[arg(long)]
        json: bool,
    },
    /// Serve the console tools (ls, read_file, write_file, edit_file, glob,
    /// grep, execute, ...) over MCP: on stdio for --user, or over HTTP at
    /// /mcp with --listen
    Mcp {
        /// The user whose sandbox every tool works in (stdio; or every HTTP
        /// client when listening on loopback without --tokens)
        #[arg(long)]
        user: Option<UserId>,
        #[arg(long)]
        runtime: Option<String>,
        /// Serve streamable HTTP on this address, e.g. 127.0.0.1:7070
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// TOML file mapping bearer tokens to users: [[token]] token, user,
        /// runtime?, sandbox? (mode 600)
        #[arg(long, value_name = "FILE", requires = "listen")]
        tokens: Option<PathBuf>,
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum FilesOp {
    /// List a folder (default: the workspace)
    Ls {
        #[arg(default_value = ".")]
        path: String,
        #[arg(long)]
        json: bool,
    },
    /// Print a text file; binary files need --output
    Cat {
        path: String,
        /// Write the bytes to this local file instead
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Largest file read, in bytes
        #[arg(long, default_value_t = crate::engine::files::DEFAULT_READ_CAP)]
        max_size: u64,
    },
    /// Copy a local file into the workspace (default name: its own)
    Put {
        local: PathBuf,
        path: Option<String>,
    },
    Rm {
        path: String,
    },
    Mv {
        from: String,
        to: String,
    },
    Mkdir {
        path: String,
    },
}

/// Per-sandbox policy: each flag overrides the config file and runtime.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArgs {
    /// Memory limit, e.g. 512m or 2g (swap is held to the same)
    #[arg(long, value_parser = parse_byte_size)]
    memory: Option<ByteSize>,
    /// CPUs, e.g. 0.5
    #[arg(long)]
    cpus: Option<f64>,
    /// Network: none (default), bridge, or a named Docker network
    #[arg(long)]
    network: Option<String>,
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Writable root filesystem (the default is read-only)
    #[arg(long)]
    writable_root: bool,
    /// Mount a host folder: HOST:PATH, or HOST:PATH:ro for read-only (repeatable)
    #[arg(long = "volume", value_name = "HOST:PATH[:ro]", value_parser = parse_volume_arg)]
    volumes: Vec<(String, String)>,
}

fn parse_volume_arg(text: &str) -> Result<(String, String), String> {
    let (host, path) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not HOST:PATH or HOST:PATH:ro"))?;
    Ok((host.to_string(), path.to_string()))
}

impl PolicyArgs {
    fn overrides(&self) -> PolicyOverrides {
        PolicyOverrides {
            memory: self.memory,
            cpus: self.cpus,
            network: self.network.clone(),
            pids_limit: self.pids_limit,
            read_only: self.writable_root.then_some(false),
            volumes: (!self.volumes.is_empty()).then(|| self.volumes.iter().cloned().collect()),
            ..Default::default()
        }
    }
}

fn parse_byte_size(text: &str) -> Result<ByteSize, String> {
    ByteSize::parse(text)
}

fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    crate::engine::runtimes::check_env(key, value)?;
    Ok((key.to_string(), value.to_string()))
}

/// What the CLI needs from the user's files, loaded once.
pub struct Context {
    pub config: Config,
    pub runtimes: RuntimeSet,
    pub workspace_root: Option<PathBuf>,
}

impl Context {
    pub fn load(cli: &Cli) -> anyhow::Result<Self> {
        let config = Config::load(cli.config.as_deref())?;
        let runtimes =
            RuntimeSet::load(config::user_runtimes_file(cli.runtimes.as_deref()).as_deref())?;
        Ok(Self {
            config,
            runtimes,
            workspace_root: cli.workspace_root.clone(),
        })
    }

    pub fn build_options(&self) -> BuildOptions {
        BuildOptions {
            ca_file: self.config.build.ca_file.clone(),
            force: false,
        }
    }

    /// Connects to the engine and sets up sessions as configured.
    pub async fn sessions(&self) -> anyhow::Result<SessionManager> {
        let engine = connect().await?;
        Ok(SessionManager::new(
            engine,
            self.runtimes.clone(),
            self.session_config()?,
        ))
    }

    pub fn session_config(&self) -> anyhow::Result<SessionConfig> {
        let sessions = &self.config.sessions;
        let config = SessionConfig {
            workspace_root: self.config.workspace_root(self.workspace_root.as_deref())?,
            default_runtime: self.config.default_runtime().to_string(),
            policy: self.config.sandbox.clone(),
            build: self.build_options(),
            max_sessions: sessions.max_sessions,
            idle_timeout: sessions
                .idle_timeout
                .map_or(crate::sessions::DEFAULT_IDLE_TIMEOUT, |d| d.0),
        };
        Ok(config)
    }
}

/// Runs a parsed command line; the result is the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let context = Context::load(&cli)?;
    match cli.command {
        None => {
            crate::tui::run(crate::tui::DashboardOptions {
                sessions: context.session_config()?,
                runtimes: context.runtimes.clone(),
                theme: cli.theme.clone(),
            })
            .await
        }
        Some(Command::Runtimes { json }) => runtimes::list(&context, json).await,
        Some(Command::Build { names, all, force }) => {
            build::build(&context, &names, all, force).await
        }
        Some(Command::Prune) => build::prune(&context).await,
        Some(Command::Doctor { json }) => doctor::doctor(&context, json).await,
        Some(Command::New {
            user,
            runtime,
            policy,
        }) => sandbox::new(&context, &user, runtime.as_deref(), &policy.overrides()).await,
        Some(Command::Exec {
            user,
            runtime,
            timeout,
            env,
            workdir,
            output_cap,
            shell,
            policy,
            command,
        }) => {
            let options = exec::ExecOptions {
                runtime,
                timeout,
                env,
                workdir,
                output_cap,
                shell,
                policy: policy.overrides(),
            };
            exec::exec(&context, &user, &options, command).await
        }
        Some(Command::Run {
            user,
            runtime,
            timeout,
            file,
        }) => exec::run_file(&context, &user, runtime.as_deref(), timeout, &file).await,
        Some(Command::Files { user, op }) => files::files(&context, &user, op).await,
        Some(Command::Stats { user, json, follow }) => {
            sandbox::stats(&context, &user, json, follow).await
        }
        Some(Command::Start { user }) => sandbox::lifecycle(&context, &user, "start").await,
        Some(Command::Stop { user }) => sandbox::lifecycle(&context, &user, "stop").await,
        Some(Command::Restart { user }) => sandbox::lifecycle(&context, &user, "restart").await,
        Some(Command::Rm { user, purge }) => sandbox::remove(&context, &user, purge).await,
        Some(Command::Inspect { user, json }) => sandbox::inspect(&context, &user, json).await,
        Some(Command::Sessions { json }) => sessions::list(&context, json).await,
        Some(Command::CheckIsolation { user, other, json }) => {
            sessions::check_isolation(&context, &user, &other, json).await
        }
        Some(Command::Reap) => sessions::reap(&context).await,
        Some(Command::Mcp {
            user,
            runtime,
            listen,
            tokens,
            policy,
        }) => {
            let options = mcp::McpOptions {
                user,
                runtime,
                policy: policy.overrides(),
                listen,
                tokens,
            };
            mcp::mcp(&context, options).await
        }
    }
}

async fn connect() -> anyhow::Result<Engine> {
    Engine::connect().await
}
