//! sandpit's own configuration: `$XDG_CONFIG_HOME/sandpit/config.toml`, or a
//! file given with `--config`. Every key is optional.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::engine::policy::PolicyOverrides;
use crate::toml_file::Locator;

pub const DEFAULT_RUNTIME: &str = "python-minimal";

/// Environment variable that overrides `build.ca_file`.
pub const CA_FILE_ENV: &str = "SANDPIT_BUILD_CA_FILE";

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub build: BuildConfig,
    /// Policy for every sandbox; runtimes and single sandboxes override it.
    #[serde(default)]
    pub sandbox: PolicyOverrides,
    #[serde(default)]
    pub sessions: SessionsConfig,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// Where each user's workspace folder lives
    /// [default: $XDG_DATA_HOME/sandpit/workspaces].
    pub workspace_root: Option<PathBuf>,
    /// The runtime used when none is named [default: python-minimal].
    pub default_runtime: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    /// A CA bundle that image builds trust, for hosts behind a
    /// TLS-intercepting proxy.
    pub ca_file: Option<PathBuf>,
}

impl Config {
    /// Reads `explicit` (which must exist) or the XDG config file (when it
    /// exists), then applies environment overrides.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<Self> {
        let path = match explicit {
            Some(path) => Some(path.to_path_buf()),
            None => user_config_dir()
                .map(|dir| dir.join("config.toml"))
                .filter(|path| path.is_file()),
        };
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                Self::parse(&text, &path.display().to_string())?
            }
            None => Self::default(),
        };
        config.apply_env(|key| std::env::var_os(key));
        Ok(config)
    }

    pub fn parse(text: &str, file_name: &str) -> anyhow::Result<Self> {
        let locator = Locator::new(text, file_name);
        let config: Self = locator.parse()?;
        config
            .sandbox
            .validate()
            .map_err(|msg| anyhow::anyhow!("{file_name}: [sandbox]: {msg}"))?;
        Ok(config)
    }

    pub fn default_runtime(&self) -> &str {
        self.sessions
            .default_runtime
            .as_deref()
            .unwrap_or(DEFAULT_RUNTIME)
    }

    /// The workspace root: the one given, else the config's, else the XDG one.
    pub fn workspace_root(&self, explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
        explicit
            .map(Path::to_path_buf)
            .or_else(|| self.sessions.workspace_root.clone())
            .or_else(|| user_data_dir().map(|dir| dir.join("workspaces")))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no workspace root: set HOME or XDG_DATA_HOME, sessions.workspace_root in the config, or --workspace-root"
                )
            })
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<std::ffi::OsString>) {
        if let Some(ca_file) = var(CA_FILE_ENV).filter(|value| !value.is_empty()) {
            self.build.ca_file = Some(PathBuf::from(ca_file));
        }
    }
}

/// `$XDG_CONFIG_HOME/sandpit`, falling back to `~/.config/sandpit`.
pub fn user_config_dir() -> Option<PathBuf> {
    xdg_dir("XDG_CONFIG_HOME", ".config").map(|dir| dir.join("sandpit"))
}

/// `$XDG_DATA_HOME/sandpit`, falling back to `~/.local/share/sandpit`.
pub fn user_data_dir() -> Option<PathBuf> {
    xdg_dir("XDG_DATA_HOME", ".local/share").map(|dir| dir.join("sandpit"))
}

fn xdg_dir(var: &str, home_fallback: &str) -> Option<PathBuf> {
    // The XDG spec says relative values are invalid and must be ignored.
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|home| home.is_absolute())
                .map(|home| home.join(home_fallback))
        })
}

/// The user's runtimes file: the one given, or the XDG one when it exists.
pub fn user_runtimes_file(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => user_config_dir()
            .map(|dir| dir.join("runtimes.toml"))
            .filter(|path| path.is_file()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_default() {
        assert_eq!(Config::parse("", "c.toml").unwrap(), Config::default());
    }

    #[test]
    fn ca_file_from_file_and_env() {
        let mut config = Config::parse("[build]\nca_file = \"/a.pem\"\n", "c.toml").unwrap();
        assert_eq!(config.build.ca_file.as_deref(), Some(Path::new("/a.pem")));
        config.apply_env(|key| (key == CA_FILE_ENV).then(|| "/b.pem".into()));
        assert_eq!(config.build.ca_file.as_deref(), Some(Path::new("/b.pem")));
    }

    #[test]
    fn unknown_keys_are_located() {
        let err = Config::parse("[build]\nca_fil = \"/a.pem\"\n", "c.toml").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("c.toml:2:1: "), "{text}");
        assert!(text.contains("ca_fil"), "{text}");
    }
}
