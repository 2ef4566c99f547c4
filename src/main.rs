use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = sandpit::cli::Cli::parse();
    init_logging(cli.command.is_none());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(sandpit::cli::run(cli));
    // A forwarded stdin is read by a blocking thread that cannot be
    // interrupted: waiting for it would hang until the writer sends more
    // or closes, after the command has ended.
    runtime.shutdown_background();
    match outcome {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The CLI's output is its interface, so diagnostics go to stderr only when
/// asked for with RUST_LOG. The dashboard owns the screen: its log goes to a
/// file, never to the terminal.
fn init_logging(dashboard: bool) {
    let default_level = if dashboard { "info" } else { "warn" };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    if dashboard {
        let file = sandpit::config::user_state_dir().and_then(|dir| {
            std::fs::create_dir_all(&dir).ok()?;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("sandpit.log"))
                .ok()
        });
        if let Some(file) = file {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .try_init();
        }
        // Without a log file, nothing is logged rather than drawn over the UI.
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
