//! The in-sandbox runner's binary, built by `build.rs` (a static x86_64
//! Linux executable) and embedded here so it reaches sandboxes without a
//! registry.

/// The statically linked `sandpit-runner` executable, as bytes.
pub static RUNNER_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sandpit-runner"));
