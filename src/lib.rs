//! sandpit: run untrusted code in isolated, per-user Docker sandboxes.
//!
//! - [`engine`]: everything that talks to Docker (runtimes, images).
//! - [`cli`]: the headless command line.

pub mod cli;
pub mod config;
pub mod engine;
pub mod mcp;
pub mod sessions;
pub mod toml_file;
pub mod tui;
pub mod units;
