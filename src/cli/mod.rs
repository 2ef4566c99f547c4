//! The headless CLI: every command scripts, tests and agents need.

mod activity;
mod build;
mod doctor;
mod exec;
mod files;
mod mcp;
mod processes;
mod runtimes;
mod sandbox;
mod sessions;
mod shell;

use std::path::PathBuf;

use std::io::Write as _;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser, Subcommand};

use crate::config::{self, Config};
use crate::engine::Engine;
use crate::engine::images::BuildOptions;
use crate::engine::policy::{ByteSize, DiskLimit, PolicyOverrides};
use crate::engine::runtimes::RuntimeSet;
use crate::engine::sandbox::UserId;
use crate::sessions::{SessionConfig, SessionManager};

#[derive(Debug, Parser)]
#[command(
    name = "sandpit",
    version,
    about = "Run untrusted code in isolated, per-user Docker sandboxes",
    long_about = "Run untrusted code in isolated, per-user Docker sandboxes.\n\n\
                  With no command, the dashboard opens. DOCKER_HOST selects the engine."
)]
pub struct Cli {
    /// A runtimes file that adds runtimes or overrides built-ins by name
    /// [default: $XDG_CONFIG_HOME/sandpit/runtimes.toml when present]
    #[arg(long, global = true, value_name = "FILE", env = "SANDPIT_RUNTIMES")]
    pub runtimes: Option<PathBuf>,

    /// sandpit's config file [default: $XDG_CONFIG_HOME/sandpit/config.toml when present]
    #[arg(long, global = true, value_name = "FILE", env = "SANDPIT_CONFIG")]
    pub config: Option<PathBuf>,

    /// Where users' workspace folders live [default: $XDG_DATA_HOME/sandpit/workspaces]
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "SANDPIT_WORKSPACE_ROOT"
    )]
    pub workspace_root: Option<PathBuf>,

    /// The dashboard's theme: dark, light, high-contrast, or one of yours
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Help shared by commands that take a user.
const USER_HELP: &str = "The user whose sandbox to use (letters, digits, `-`, `_`, `.`)";
/// Help shared by commands that may create the sandbox.
const RUNTIME_HELP: &str = "Runtime of the sandbox when it has to be created, e.g. python-minimal \
                            [default: the config's default runtime]";
const INTERACTIVE_HELP: &str = "Forward stdin even when it is a terminal (it is forwarded \
                                whenever it is not one: a pipe, a file, /dev/null)";
const EXEC_JSON_HELP: &str = "Capture the output (up to the output cap per stream) and print one \
                              JSON object at the end: status, status_code, reason, exit_code, \
                              duration_ms, the flags, stdout_bytes, stderr_bytes, stdout, stderr";

fn exec_after_help() -> String {
    format!(
        "{}\nsandpit's reason for any status but the command's own is one line on stderr.",
        crate::engine::exec::ExecOutcome::help_table()
    )
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
    /// Remove sandpit images that no current runtime uses, and unused runner volumes
    Prune,
    /// Check the engine, base images and runtime images
    Doctor {
        /// Print JSON instead of a report
        #[arg(long)]
        json: bool,
    },
    /// Create a user's sandbox (or start it if it exists)
    New {
        #[arg(help = USER_HELP)]
        user: UserId,
        #[arg(long, value_name = "NAME", help = RUNTIME_HELP)]
        runtime: Option<String>,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Run a command in a user's sandbox, creating it when missing
    ///
    /// Output streams live (--json captures it instead). stdin is forwarded
    /// when it is not a terminal (streamed, any size), or always with -i.
    #[command(after_help = exec_after_help())]
    Exec {
        #[arg(long, help = USER_HELP)]
        user: UserId,
        #[arg(long, value_name = "NAME", help = RUNTIME_HELP)]
        runtime: Option<String>,
        /// Wall-clock limit in seconds; the command's whole process tree is
        /// killed then, and sandpit exits 124
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
        /// Extra environment, KEY=VALUE (repeatable)
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env_pair)]
        env: Vec<(String, String)>,
        /// Working folder inside the sandbox [default: the workspace]
        #[arg(long, value_name = "DIR")]
        workdir: Option<String>,
        /// Bytes of output kept per stream before the command is stopped
        /// (sandpit then exits 141) [default: 1048576]
        #[arg(long, value_name = "BYTES")]
        output_cap: Option<usize>,
        /// Run the command as one shell string instead of an argv
        #[arg(long)]
        shell: bool,
        #[arg(short, long, help = INTERACTIVE_HELP)]
        interactive: bool,
        #[arg(long, help = EXEC_JSON_HELP)]
        json: bool,
        /// Start the command in the background and print its id at once: it
        /// keeps running after sandpit exits (see `ps`, `logs`, `kill`)
        #[arg(long, conflicts_with = "interactive")]
        background: bool,
        #[command(flatten)]
        policy: PolicyArgs,
        /// The command and its arguments, after `--` (one shell string with --shell)
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Copy FILE into the workspace and run it with the runtime's `run` template
    ///
    /// stdin is forwarded as for `exec`.
    #[command(after_help = exec_after_help())]
    Run {
        #[arg(long, help = USER_HELP)]
        user: UserId,
        #[arg(long, value_name = "NAME", help = RUNTIME_HELP)]
        runtime: Option<String>,
        /// Wall-clock limit in seconds; the run's whole process tree is
        /// killed then, and sandpit exits 124
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
        #[arg(short, long, help = INTERACTIVE_HELP)]
        interactive: bool,
        #[arg(long, help = EXEC_JSON_HELP)]
        json: bool,
        /// The local file to copy into the workspace (under its own name) and run
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// File operations confined to a user's workspace
    ///
    /// PATHs are relative to the workspace, and read in the escaped form `ls`
    /// prints, so a listed name can be
    /// pasted back: `\\` is a backslash, `\n`, `\t` and `\r` are newline,
    /// tab and carriage return, `\xNN` is the byte NN (hex), `\u{N}` the
    /// character U+N; anything else stands for itself.
    Files {
        #[arg(long, help = USER_HELP)]
        user: UserId,
        #[command(subcommand)]
        op: FilesOp,
    },
    /// List a user's background processes (started with `exec --background`)
    Ps {
        #[arg(help = USER_HELP)]
        user: UserId,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Print a background process's output (stdout to stdout, stderr to stderr)
    Logs {
        #[arg(help = USER_HELP)]
        user: UserId,
        /// The id `exec --background` printed
        id: u64,
        /// Keep printing new output until the process ends
        #[arg(long, short)]
        follow: bool,
    },
    /// Stop a background process, killing its whole process tree
    Kill {
        #[arg(help = USER_HELP)]
        user: UserId,
        /// The id `exec --background` printed
        id: u64,
    },
    /// An interactive shell in a user's running sandbox, on this terminal
    ///
    /// bash when the image has it, else sh; as the sandbox's uid, in its
    /// work dir, with this terminal's TERM and window size. Leaving ends
    /// every process started in it. Needs a terminal on stdin and stdout
    /// (`exec -i` pipes instead). Exits with the shell's status; 130 when
    /// sandpit was told to stop first (SIGTERM, SIGHUP), 125 when the
    /// sandbox went away or the status was lost.
    Shell {
        #[arg(help = USER_HELP)]
        user: UserId,
    },
    /// Live CPU, memory and pids of a user's sandbox
    Stats {
        #[arg(long, help = USER_HELP)]
        user: UserId,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        /// Keep printing a sample every second
        #[arg(long)]
        follow: bool,
    },
    /// Start a stopped sandbox
    Start {
        #[arg(help = USER_HELP)]
        user: UserId,
    },
    /// Stop a sandbox; its workspace is kept
    Stop {
        #[arg(help = USER_HELP)]
        user: UserId,
    },
    /// Restart a sandbox, ending every command running in it
    Restart {
        #[arg(help = USER_HELP)]
        user: UserId,
    },
    /// Remove a sandbox; the workspace is kept unless --purge
    Rm {
        #[arg(help = USER_HELP)]
        user: UserId,
        /// Delete the workspace folder too
        #[arg(long)]
        purge: bool,
    },
    /// List every session: user, runtime, state, container, created, last used, CPU %, memory
    Sessions {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Probe from USER's sandbox against OTHER's: each probe blocked or LEAKED
    CheckIsolation {
        /// The user whose sandbox runs the probes
        user: UserId,
        /// The user whose sandbox the probes try to reach
        other: UserId,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Stop sessions idle for longer than sessions.idle_timeout (for cron)
    Reap,
    /// Show a sandbox's state and the security settings in force
    Inspect {
        #[arg(help = USER_HELP)]
        user: UserId,
        /// Print JSON instead of a report
        #[arg(long)]
        json: bool,
    },
    /// What was done in sandboxes, by whom and how it ended: a table, or JSON lines
    Activity(activity::ActivityArgs),
    /// Print shell completions, e.g. `sandpit completions bash > /etc/bash_completion.d/sandpit`
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print sandpit's man page (roff), or write one page per command to a folder
    Man {
        /// Write sandpit.1 and sandpit-COMMAND.1 for every command into DIR
        #[arg(long, short, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Serve the console tools (ls, read_file, write_file, edit_file, glob,
    /// grep, execute, ...) over MCP: on stdio for --user, or over HTTP at
    /// /mcp with --listen
    Mcp {
        /// The user whose sandbox every tool works in (stdio; or every HTTP
        /// client when listening on loopback without --tokens)
        #[arg(long)]
        user: Option<UserId>,
        /// The runtime of a sandbox made for --user [default: sessions.default_runtime]
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
    /// List a folder (default: the workspace); names are shown escaped
    Ls {
        /// The folder to list, relative to the workspace
        #[arg(default_value = ".", value_parser = parse_escaped_path)]
        path: EscapedPath,
        /// JSON: `name` is the escaped form; `name_bytes` (numbers) is added
        /// when that differs from the name's bytes
        #[arg(long)]
        json: bool,
    },
    /// Print a text file; binary files need --output
    Cat {
        /// The file to print, relative to the workspace
        #[arg(value_parser = parse_escaped_path)]
        path: EscapedPath,
        /// Write the bytes to this local file instead
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Largest file read, in bytes
        #[arg(long, value_name = "BYTES", default_value_t = crate::engine::files::DEFAULT_READ_CAP)]
        max_size: u64,
    },
    /// Copy a local file into the workspace (default name: its own)
    Put {
        /// The local file to copy
        local: PathBuf,
        /// Where to put it, relative to the workspace [default: its own name at the top]
        #[arg(value_parser = parse_escaped_path)]
        path: Option<EscapedPath>,
    },
    /// Delete a file or a folder with everything in it
    Rm {
        /// The file or folder to delete, relative to the workspace
        #[arg(value_parser = parse_escaped_path)]
        path: EscapedPath,
    },
    /// Move or rename a file or folder; TO must not exist
    Mv {
        /// What to move, relative to the workspace
        #[arg(value_parser = parse_escaped_path)]
        from: EscapedPath,
        /// Its new path, relative to the workspace
        #[arg(value_parser = parse_escaped_path)]
        to: EscapedPath,
    },
    /// Create a folder, with any missing parents
    Mkdir {
        /// The folder to create, relative to the workspace
        #[arg(value_parser = parse_escaped_path)]
        path: EscapedPath,
    },
}

/// A workspace path given on the command line in escaped form
/// ([`crate::engine::names`]), as the bytes it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscapedPath(pub Vec<u8>);

impl std::fmt::Display for EscapedPath {
    /// The canonical escaped form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::engine::names::escape(&self.0))
    }
}

fn parse_escaped_path(text: &str) -> Result<EscapedPath, String> {
    crate::engine::names::unescape(text).map(EscapedPath)
}

/// Per-sandbox policy: each flag overrides the config file and runtime.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArgs {
    /// Memory limit, e.g. 512m or 2g (swap is held to the same)
    #[arg(long, value_name = "SIZE", value_parser = parse_byte_size)]
    memory: Option<ByteSize>,
    /// CPUs, e.g. 0.5
    #[arg(long, value_name = "N")]
    cpus: Option<f64>,
    /// Network: none (default), bridge, or a named Docker network
    #[arg(long, value_name = "NAME")]
    network: Option<String>,
    /// Most processes and threads the sandbox may hold at once
    #[arg(long, value_name = "N")]
    pids_limit: Option<i64>,
    /// Writable root filesystem (the default is read-only)
    #[arg(long)]
    writable_root: bool,
    /// Mount a host folder: HOST:PATH, or HOST:PATH:ro for read-only (repeatable)
    #[arg(long = "volume", value_name = "HOST:PATH[:ro]", value_parser = parse_volume_arg)]
    volumes: Vec<(String, String)>,
    /// Workspace size limit, e.g. 5g; 0 for none [default: 1g]
    #[arg(long, value_parser = DiskLimit::parse)]
    disk: Option<DiskLimit>,
    /// The engine's OCI runtime, e.g. runsc for gVisor (`sandpit doctor` lists them)
    #[arg(long)]
    oci_runtime: Option<String>,
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
            disk: self.disk,
            oci_runtime: self.oci_runtime.clone(),
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

    /// The activity log beside the workspaces under `workspace_root`; one
    /// that cannot be opened only warns, and every action still runs.
    pub fn activity_log(&self, workspace_root: &std::path::Path) -> crate::activity::ActivityLog {
        crate::activity::ActivityLog::open_or_warn(
            workspace_root,
            crate::activity::Retention::from_config(&self.config.activity),
        )
    }

    /// The activity log of the configured workspace root, for recording the
    /// CLI's own actions.
    pub fn cli_activity_log(&self) -> anyhow::Result<crate::activity::ActivityLog> {
        let root = self.config.workspace_root(self.workspace_root.as_deref())?;
        Ok(self.activity_log(&root))
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
    // These describe the CLI itself: no config is read, no engine needed.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "sandpit",
                &mut std::io::stdout(),
            );
            return Ok(0);
        }
        Some(Command::Man { out_dir }) => {
            write_man(out_dir.as_deref())?;
            return Ok(0);
        }
        _ => {}
    }
    let context = Context::load(&cli)?;
    match cli.command {
        None => {
            let sessions = context.session_config()?;
            crate::tui::run(crate::tui::DashboardOptions {
                activity: context.activity_log(&sessions.workspace_root),
                sessions,
                runtimes: context.runtimes.clone(),
                theme: cli.theme.clone(),
                editor: context.config.editor.clone(),
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
            interactive,
            json,
            background,
            policy,
            command,
        }) => {
            let options = exec::ExecOptions {
                background,
                runtime,
                timeout,
                env,
                workdir,
                output_cap,
                shell,
                policy: policy.overrides(),
                io: exec::IoOptions { interactive, json },
            };
            exec::exec(&context, &user, &options, command).await
        }
        Some(Command::Run {
            user,
            runtime,
            timeout,
            interactive,
            json,
            file,
        }) => {
            let io = exec::IoOptions { interactive, json };
            exec::run_file(&context, &user, runtime.as_deref(), timeout, io, &file).await
        }
        Some(Command::Shell { user }) => shell::shell(&context, &user).await,
        Some(Command::Files { user, op }) => files::files(&context, &user, op).await,
        Some(Command::Ps { user, json }) => processes::ps(&context, &user, json).await,
        Some(Command::Logs { user, id, follow }) => {
            processes::logs(&context, &user, id, follow).await
        }
        Some(Command::Kill { user, id }) => processes::kill(&context, &user, id).await,
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
        Some(Command::Activity(args)) => activity::activity(&context, &args).await,
        Some(Command::Completions { .. } | Command::Man { .. }) => Ok(0),
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

/// Prints the top-level man page, or writes a page per command into `dir`.
fn write_man(dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    let command = Cli::command();
    match dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .context("cannot render the man page")?;
            std::io::stdout()
                .write_all(&page)
                .context("cannot write the man page to stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
        }
    }
    Ok(())
}

async fn connect() -> anyhow::Result<Engine> {
    Engine::connect().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument and subcommand, however deep, says what it is for.
    #[test]
    fn every_argument_and_command_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_name() != "help" && sub.get_about().is_none() {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "sandpit", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }

    #[test]
    fn global_options_come_from_the_environment() {
        let command = Cli::command();
        for (id, var) in [
            ("runtimes", "SANDPIT_RUNTIMES"),
            ("config", "SANDPIT_CONFIG"),
            ("workspace_root", "SANDPIT_WORKSPACE_ROOT"),
        ] {
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_id() == id)
                .unwrap_or_else(|| panic!("no argument {id}"));
            assert_eq!(arg.get_env(), Some(std::ffi::OsStr::new(var)), "{id}");
        }
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("SANDPIT_WORKSPACE_ROOT"), "{help}");
    }

    #[test]
    fn exec_help_lists_every_exit_status() {
        let mut command = Cli::command();
        let exec = command
            .find_subcommand_mut("exec")
            .expect("an exec command");
        let help = exec.render_long_help().to_string();
        for outcome in crate::engine::exec::ExecOutcome::ALL {
            assert!(help.contains(outcome.name()), "{help}");
        }
        assert!(help.contains("141") && help.contains("125"), "{help}");
    }

    #[test]
    fn completions_for_each_shell_name_the_commands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "sandpit", &mut out);
            let text = String::from_utf8(out).expect("completions are UTF-8");
            assert!(
                text.contains("check-isolation") && text.contains("completions"),
                "{shell}: {text}"
            );
        }
    }

    #[test]
    fn man_pages_render() {
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .expect("renders");
        let page = String::from_utf8(page).expect("roff is UTF-8");
        assert!(page.contains(".TH"), "{page}");
        assert!(page.contains("SANDPIT_CONFIG"), "{page}");
        let dir = tempfile::tempdir().expect("a temp dir");
        write_man(Some(dir.path())).expect("writes pages");
        let exec = std::fs::read_to_string(dir.path().join("sandpit-exec.1")).expect("exec page");
        assert!(
            exec.contains(".TH") && exec.contains("interactive"),
            "{exec}"
        );
    }
}
