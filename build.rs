//! Builds the in-sandbox runner (`runner/`) as a static x86_64 Linux
//! executable and leaves it at `$OUT_DIR/sandpit-runner`, which
//! `src/engine/runner/binary.rs` embeds.
//!
//! A nested `cargo build` does it, with its own target dir under `OUT_DIR`
//! (the outer build holds the lock on its own) and a cleared environment:
//! the outer build's `CARGO_*`, `RUSTFLAGS`, wrappers (clippy, coverage) and
//! jobserver would otherwise leak into it, and it must be built the same way
//! whichever command started the outer build.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Variables the nested build keeps: where the tools are, which toolchain,
/// and how to reach the registry (proxies), nothing about the outer build.
const KEPT_VARS: &[&str] = &[
    "PATH",
    "HOME",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "CARGO_NET_OFFLINE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "TMPDIR",
];

fn main() {
    if let Err(message) = build_runner() {
        // A build script reports failure by exiting non-zero; cargo shows stderr.
        eprintln!("error: building the sandpit runner failed: {message}");
        std::process::exit(1);
    }
}

fn build_runner() -> Result<(), String> {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR is not set")?);
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    println!("cargo:rerun-if-changed=runner");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=build.rs");

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = out_dir.join("runner-target");
    let mut command = Command::new(&cargo);
    command
        .env_clear()
        .args(["build", "--release", "--locked", "--target", TARGET])
        .args(["-p", "sandpit-runner", "--bin", "sandpit-runner"])
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        // Small and fast to load: symbols are of no use inside a sandbox.
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    for name in KEPT_VARS {
        if let Some(value) = env::var_os(name) {
            command.env(name, value);
        }
    }
    let status = command
        .status()
        .map_err(|err| format!("cannot run {}: {err}", PathBuf::from(&cargo).display()))?;
    if !status.success() {
        return Err(format!(
            "nested `cargo build -p sandpit-runner` ended with {status}"
        ));
    }
    let built = target_dir
        .join(TARGET)
        .join("release")
        .join("sandpit-runner");
    let dest = out_dir.join("sandpit-runner");
    std::fs::copy(&built, &dest).map_err(|err| {
        format!(
            "cannot copy {} to {}: {err}",
            built.display(),
            dest.display()
        )
    })?;
    Ok(())
}
