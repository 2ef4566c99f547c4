//! sandpit: run untrusted code in isolated, per-user Docker sandboxes.
//!
//! - [`engine`]: everything that talks to Docker (runtimes, images).
//! - [`activity`]: the shared log of every action on a sandbox.
//! - [`cli`]: the headless command line.

pub mod activity;
pub mod cli;
pub mod config;
pub mod engine;
pub mod mcp;
pub mod sessions;
pub mod toml_file;
pub mod tui;
pub mod units;
