//! The Python side of the MCP tests, run from `cargo test`: a pydantic-ai
//! agent driving `sandpit mcp` over stdio and HTTP, and the differential
//! test against pydantic-ai-backend's own console toolset. They need the
//! venv `scripts/python-venv` makes (`scripts/test-setup` runs it).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Cleanup, test_user};

fn venv_python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var_os("SANDPIT_AGENTS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv-agents"));
    let python = venv.join("bin").join("python");
    assert!(
        python.is_file(),
        "no Python venv at {}: run scripts/python-venv (scripts/test-setup does)",
        venv.display()
    );
    python
}

/// Runs one Python test file against the built `sandpit`, with users named
/// from `tag`; their sandboxes are removed afterwards. Prints its output.
fn run_python(file: &str, tag: &str, suffixes: &[&str]) {
    let python = venv_python();
    let user = test_user(tag);
    let _cleanup = Cleanup(
        suffixes
            .iter()
            .map(|suffix| format!("sandpit-{user}-{suffix}"))
            .collect(),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let workspaces = dir.path().join("ws");
    std::fs::create_dir_all(&workspaces).unwrap();
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/agents");
    let mut command = Command::new(&python);
    command
        .arg(tests.join(file))
        .current_dir(&tests)
        .env("SANDPIT_BIN", env!("CARGO_BIN_EXE_sandpit"))
        .env("SANDPIT_CONFIG", &config)
        .env("SANDPIT_WORKSPACE_ROOT", &workspaces)
        .env("SANDPIT_USER_PREFIX", user.as_str())
        .env("SANDPIT_SCRATCH", dir.path())
        .env("PYTHONUNBUFFERED", "1");
    if let Some(ca) = common::build_options().ca_file {
        command.env(sandpit::config::CA_FILE_ENV, ca);
    }
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", python.display()));
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "{file} failed ({}); its output is above",
        output.status
    );
}

#[test]
fn pydantic_ai_agent_over_stdio_and_http() {
    run_python("test_agent.py", "agents", &["stdio", "http"]);
}

#[test]
fn console_tools_match_pydantic_ai_backend() {
    run_python("test_differential.py", "differential", &["diff"]);
}
