//! sandpit's own configuration: `$XDG_CONFIG_HOME/sandpit/config.toml`, or a
//! file given with `--config`. Every key is optional.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use std::collections::BTreeMap;

use crate::engine::policy::PolicyOverrides;
use crate::engine::runtimes::{Indent, Language};
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
    #[serde(default)]
    pub activity: ActivityConfig,
    #[serde(default)]
    pub mcp: McpConfig,
    #[serde(default)]
    pub editor: EditorConfig,
}

/// `[editor]`: the dashboard's editor.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EditorConfig {
    /// Indentation by language, e.g. `indent = { python = 4, node = 2,
    /// shell = "tab" }`. A runtime's own `indent` comes first; a language
    /// not named here gets [`Language::default_indent`].
    #[serde(default)]
    pub indent: BTreeMap<Language, Indent>,
}

impl EditorConfig {
    /// The indent for code of `language`: the runtime's own when it sets
    /// one (`runtime_indent`), else this config's, else the language's.
    pub fn indent(&self, language: Language, runtime_indent: Option<Indent>) -> Indent {
        runtime_indent
            .or_else(|| self.indent.get(&language).copied())
            .unwrap_or_else(|| language.default_indent())
    }
}

/// `[activity]`: how long the activity log keeps its rows. Pruning is
/// cheap and periodic, so the log may briefly hold a little more.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActivityConfig {
    /// Rows older than this are deleted: `30d`, `12h`, or seconds; 0 keeps
    /// rows of any age [default: 30d].
    pub max_age: Option<DurationSetting>,
    /// Only the newest this many rows are kept; 0 keeps any number
    /// [default: 100000].
    pub max_rows: Option<u64>,
}

/// `sandpit mcp`'s settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// The longest timeout an `execute` call gets, whatever it asks for:
    /// `10m`, `90s`, or seconds [default: 10m].
    pub max_timeout: Option<DurationSetting>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// Where each user's workspace folder lives
    /// [default: $XDG_DATA_HOME/sandpit/workspaces].
    pub workspace_root: Option<PathBuf>,
    /// The runtime used when none is named [default: python-minimal].
    pub default_runtime: Option<String>,
    /// Creating a session past this many is refused.
    pub max_sessions: Option<usize>,
    /// A session unused this long is stopped: `30m`, `90s`, `2h`, or
    /// seconds; 0 means never [default: 30m].
    pub idle_timeout: Option<DurationSetting>,
}

/// A duration written as `90s`, `30m`, `2h`, `7d` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSetting(pub std::time::Duration);

impl DurationSetting {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (digits, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
            Some((index, _)) => text.split_at(index),
            None => (text, "s"),
        };
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => {
                return Err(format!(
                    "`{text}` is not a duration such as 90s, 30m, 2h or 7d"
                ));
            }
        };
        let value: u64 = digits
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a duration such as 90s, 30m, 2h or 7d"))?;
        Ok(Self(std::time::Duration::from_secs(
            value.saturating_mul(scale),
        )))
    }
}

impl<'de> Deserialize<'de> for DurationSetting {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(seconds) => Ok(Self(std::time::Duration::from_secs(seconds))),
            Raw::Text(text) => Self::parse(&text).map_err(serde::de::Error::custom),
        }
    }
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
        let root = explicit
            .map(Path::to_path_buf)
            .or_else(|| self.sessions.workspace_root.clone())
            .or_else(|| user_data_dir().map(|dir| dir.join("workspaces")))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no workspace root: set HOME or XDG_DATA_HOME, sessions.workspace_root in the config, or --workspace-root"
                )
            })?;
        // The engine binds host paths only when they are absolute.
        std::path::absolute(&root)
            .with_context(|| format!("cannot make the workspace root {} absolute", root.display()))
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

/// `$XDG_STATE_HOME/sandpit`, falling back to `~/.local/state/sandpit`: logs.
pub fn user_state_dir() -> Option<PathBuf> {
    xdg_dir("XDG_STATE_HOME", ".local/state").map(|dir| dir.join("sandpit"))
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
    fn durations() {
        let secs = |text: &str| DurationSetting::parse(text).map(|d| d.0.as_secs());
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("30m"), Ok(1800));
        assert_eq!(secs("2h"), Ok(7200));
        assert_eq!(secs("45"), Ok(45));
        assert_eq!(secs("0"), Ok(0));
        assert!(secs("soon").is_err());
        assert_eq!(secs("2d"), Ok(172_800));
        assert!(secs("5w").is_err());
        assert!(secs("d").is_err());
        let config =
            Config::parse("[sessions]\nidle_timeout = 0\nmax_sessions = 3\n", "c.toml").unwrap();
        assert_eq!(config.sessions.idle_timeout.unwrap().0.as_secs(), 0);
        assert_eq!(config.sessions.max_sessions, Some(3));
        let config = Config::parse("[mcp]\nmax_timeout = \"2m\"\n", "c.toml").unwrap();
        assert_eq!(config.mcp.max_timeout.unwrap().0.as_secs(), 120);
    }

    #[test]
    fn activity_retention() {
        let config =
            Config::parse("[activity]\nmax_age = \"7d\"\nmax_rows = 500\n", "c.toml").unwrap();
        assert_eq!(config.activity.max_age.unwrap().0.as_secs(), 7 * 86_400);
        assert_eq!(config.activity.max_rows, Some(500));
        let err = Config::parse("[activity]\nmax_age = \"soon\"\n", "c.toml").unwrap_err();
        assert!(err.to_string().contains("soon"), "{err}");
    }

    #[test]
    fn editor_indent_by_language_under_the_runtime_s_own() {
        let config = Config::parse(
            "[editor]\nindent = { node = 4, shell = \"tab\" }\n",
            "c.toml",
        )
        .unwrap();
        let editor = &config.editor;
        assert_eq!(editor.indent(Language::Node, None), Indent::Spaces(4));
        assert_eq!(editor.indent(Language::Shell, None), Indent::Tab);
        assert_eq!(editor.indent(Language::Python, None), Indent::Spaces(4));
        assert_eq!(
            editor.indent(Language::Node, Some(Indent::Spaces(3))),
            Indent::Spaces(3)
        );
        assert_eq!(
            EditorConfig::default().indent(Language::Node, None),
            Indent::Spaces(2)
        );
        let err = Config::parse("[editor]\nindent = { ruby = 2 }\n", "c.toml").unwrap_err();
        assert!(err.to_string().contains("ruby"), "{err}");
        let err = Config::parse("[editor]\nindent = { python = 0 }\n", "c.toml").unwrap_err();
        assert!(err.to_string().starts_with("c.toml:2:"), "{err}");
    }

    #[test]
    fn unknown_keys_are_located() {
        let err = Config::parse("[build]\nca_fil = \"/a.pem\"\n", "c.toml").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("c.toml:2:1: "), "{text}");
        assert!(text.contains("ca_fil"), "{text}");
    }
}
