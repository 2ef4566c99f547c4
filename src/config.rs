//! sandpit's own configuration: `$XDG_CONFIG_HOME/sandpit/config.toml`, or a
//! file given with `--config`. Every key is optional.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::toml_file::Locator;

/// Environment variable that overrides `build.ca_file`.
pub const CA_FILE_ENV: &str = "SANDPIT_BUILD_CA_FILE";

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub build: BuildConfig,
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
        Ok(Locator::new(text, file_name).parse()?)
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
