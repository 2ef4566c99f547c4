//! Keys: built-in defaults, overridable from
//! `$XDG_CONFIG_HOME/sandpit/keymap.toml`, e.g. `quit = ["q", "ctrl-q"]`.
//! Help and key hints are generated from it, so they never drift.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::toml_file::Locator;

/// What a key can do in the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    NewSession,
    StartStop,
    Restart,
    Delete,
    Build,
    Isolation,
    Filter,
    Help,
    NextPane,
    PrevPane,
    Up,
    Down,
    CycleTheme,
}

impl Action {
    pub const ALL: [Action; 14] = [
        Action::Quit,
        Action::NewSession,
        Action::StartStop,
        Action::Restart,
        Action::Delete,
        Action::Build,
        Action::Isolation,
        Action::Filter,
        Action::Help,
        Action::NextPane,
        Action::PrevPane,
        Action::Up,
        Action::Down,
        Action::CycleTheme,
    ];

    /// The name used in keymap.toml.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::NewSession => "new_session",
            Action::StartStop => "start_stop",
            Action::Restart => "restart",
            Action::Delete => "delete",
            Action::Build => "build",
            Action::Isolation => "isolation",
            Action::Filter => "filter",
            Action::Help => "help",
            Action::NextPane => "next_pane",
            Action::PrevPane => "prev_pane",
            Action::Up => "up",
            Action::Down => "down",
            Action::CycleTheme => "cycle_theme",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Action::Quit => "quit (sessions keep running)",
            Action::NewSession => "new session",
            Action::StartStop => "stop or start the session",
            Action::Restart => "restart the session",
            Action::Delete => "delete the session",
            Action::Build => "build the selected runtime",
            Action::Isolation => "isolation check against another session",
            Action::Filter => "filter sessions",
            Action::Help => "this help",
            Action::NextPane => "next pane",
            Action::PrevPane => "previous pane",
            Action::Up => "move up",
            Action::Down => "move down",
            Action::CycleTheme => "next theme",
        }
    }

    fn default_keys(self) -> &'static [&'static str] {
        match self {
            Action::Quit => &["q"],
            Action::NewSession => &["n"],
            Action::StartStop => &["s"],
            Action::Restart => &["r"],
            Action::Delete => &["d"],
            Action::Build => &["b"],
            Action::Isolation => &["i"],
            Action::Filter => &["/"],
            Action::Help => &["?"],
            Action::NextPane => &["tab"],
            Action::PrevPane => &["shift-tab"],
            Action::Up => &["k", "up"],
            Action::Down => &["j", "down"],
            Action::CycleTheme => &["t"],
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.name() == name)
    }
}

/// One key with its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl Key {
    pub fn parse(text: &str) -> Result<Self, String> {
        let lower = text.trim().to_ascii_lowercase();
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = lower.as_str();
        loop {
            if let Some(after) = rest.strip_prefix("ctrl-") {
                modifiers |= KeyModifiers::CONTROL;
                rest = after;
            } else if let Some(after) = rest.strip_prefix("alt-") {
                modifiers |= KeyModifiers::ALT;
                rest = after;
            } else {
                break;
            }
        }
        let code = match rest {
            "tab" => KeyCode::Tab,
            "shift-tab" | "backtab" => KeyCode::BackTab,
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "space" => KeyCode::Char(' '),
            f if f.len() > 1
                && f.starts_with('f')
                && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) =>
            {
                KeyCode::F(f[1..].parse().unwrap_or(1))
            }
            single if single.chars().count() == 1 => {
                // Keep the case the user wrote for letters: `N` is shift-n.
                let original = text.trim().chars().last().unwrap_or(' ');
                KeyCode::Char(original)
            }
            _ => {
                return Err(format!(
                    "`{text}` is not a key (try q, ctrl-c, tab, shift-tab, up, f5)"
                ));
            }
        };
        Ok(Self { code, modifiers })
    }

    /// Whether a terminal key event is this key. Shift is part of the
    /// character for printable keys, so it is ignored there.
    pub fn matches(&self, event: &KeyEvent) -> bool {
        let mut modifiers = event.modifiers;
        if matches!(event.code, KeyCode::Char(_) | KeyCode::BackTab) {
            modifiers.remove(KeyModifiers::SHIFT);
        }
        event.code == self.code && modifiers == self.modifiers
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeyMap {
    bindings: BTreeMap<Action, Vec<Key>>,
}

impl Default for KeyMap {
    fn default() -> Self {
        let bindings = Action::ALL
            .into_iter()
            .map(|action| {
                let keys = action
                    .default_keys()
                    .iter()
                    .filter_map(|key| Key::parse(key).ok())
                    .collect();
                (action, keys)
            })
            .collect();
        Self { bindings }
    }
}

impl KeyMap {
    /// The defaults with a user file's bindings on top. A bad file is an
    /// error naming the offending key; the caller falls back to defaults.
    pub fn with_overrides(text: &str, file_name: &str) -> Result<Self, String> {
        let locator = Locator::new(text, file_name);
        let table: BTreeMap<String, toml::Spanned<toml::Value>> =
            locator.parse().map_err(|err| err.to_string())?;
        let mut keymap = Self::default();
        for (name, value) in table {
            let span = value.span();
            let action = Action::from_name(&name).ok_or_else(|| {
                locator
                    .error(
                        span.clone(),
                        format!(
                            "unknown action `{name}`; actions are {}",
                            Action::ALL.map(Action::name).join(", ")
                        ),
                    )
                    .to_string()
            })?;
            let texts: Vec<String> = match value.into_inner() {
                toml::Value::String(key) => vec![key],
                toml::Value::Array(keys) => keys
                    .into_iter()
                    .map(|key| match key {
                        toml::Value::String(key) => Ok(key),
                        other => Err(other.to_string()),
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|bad| {
                        locator
                            .error(
                                span.clone(),
                                format!("`{name}`: `{bad}` is not a key string"),
                            )
                            .to_string()
                    })?,
                other => {
                    return Err(locator
                        .error(
                            span,
                            format!("`{name}` must be a key or a list of keys, not `{other}`"),
                        )
                        .to_string());
                }
            };
            let keys = texts
                .iter()
                .map(|text| Key::parse(text))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|msg| {
                    locator
                        .error(span.clone(), format!("`{name}`: {msg}"))
                        .to_string()
                })?;
            keymap.bindings.insert(action, keys);
        }
        Ok(keymap)
    }

    /// The action bound to a key event, if any.
    pub fn action_for(&self, event: &KeyEvent) -> Option<Action> {
        self.bindings
            .iter()
            .find(|(_, keys)| keys.iter().any(|key| key.matches(event)))
            .map(|(action, _)| *action)
    }

    pub fn keys(&self, action: Action) -> &[Key] {
        self.bindings.get(&action).map_or(&[], Vec::as_slice)
    }

    /// `n` or `k/↑`: what the help and hints show for an action.
    pub fn label(&self, action: Action) -> String {
        self.keys(action)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn defaults_cover_every_action() {
        let keymap = KeyMap::default();
        for action in Action::ALL {
            assert!(!keymap.keys(action).is_empty(), "{action:?}");
        }
        assert_eq!(
            keymap.action_for(&key(KeyCode::Char('q'))),
            Some(Action::Quit)
        );
        assert_eq!(keymap.action_for(&key(KeyCode::Down)), Some(Action::Down));
        assert_eq!(
            keymap.action_for(&KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::PrevPane)
        );
        assert_eq!(
            keymap.action_for(&KeyEvent::new(KeyCode::Char('?'), KeyModifiers::SHIFT)),
            Some(Action::Help)
        );
        assert_eq!(keymap.label(Action::Up), "k/↑");
    }

    #[test]
    fn overrides_replace_bindings() {
        let keymap =
            KeyMap::with_overrides("quit = [\"x\", \"ctrl-q\"]\nhelp = \"f1\"\n", "k.toml")
                .unwrap();
        assert_eq!(
            keymap.action_for(&key(KeyCode::Char('x'))),
            Some(Action::Quit)
        );
        assert_eq!(
            keymap.action_for(&KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(keymap.action_for(&key(KeyCode::Char('q'))), None);
        assert_eq!(keymap.action_for(&key(KeyCode::F(1))), Some(Action::Help));
    }

    #[test]
    fn bad_files_name_the_offending_key() {
        let err = KeyMap::with_overrides("qiut = \"q\"\n", "k.toml").unwrap_err();
        assert!(
            err.starts_with("k.toml:1:8: unknown action `qiut`"),
            "{err}"
        );
        let err = KeyMap::with_overrides("quit = \"hyper-q\"\n", "k.toml").unwrap_err();
        assert!(err.contains("`quit`: `hyper-q` is not a key"), "{err}");
        let err = KeyMap::with_overrides("quit = 5\n", "k.toml").unwrap_err();
        assert!(err.contains("must be a key"), "{err}");
        let err = KeyMap::with_overrides("quit = [", "k.toml").unwrap_err();
        assert!(err.starts_with("k.toml:1:"), "{err}");
    }
}
