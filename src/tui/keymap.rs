//! Keys: built-in defaults, overridable from
//! `$XDG_CONFIG_HOME/sandpit/keymap.toml`. Every key of every pane and popup
//! is an [`Action`] here, so help and key hints are generated from one table
//! and a user's override works everywhere. Global actions sit at the top of
//! the file, e.g. `quit = ["q", "ctrl-q"]`; a pane's or popup's under its
//! section, e.g. `[files]` then `rename = ["r"]`.
//!
//! Text input stays text input: the editor, prompts, the filter and the
//! new-session form take printable keys as text, and only their listed
//! actions (save, submit, cancel, …) come from here.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::toml_file::Locator;

/// Declares an enum whose `ALL` lists every variant in declaration order, so
/// the list cannot drift from the enum.
macro_rules! listed_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),* }
        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$(stringify!($variant)),*].len()] = [$($name::$variant),*];
        }
    };
}
pub(crate) use listed_enum;

listed_enum! {
    /// Where an action applies: everywhere, in one pane, or in one popup or
    /// text field. Its name is the keymap.toml section of its actions.
    pub enum Scope {
        /// Anywhere a pane or popup does not take the key itself.
        Global,
        Sessions,
        Runtimes,
        Stats,
        Files,
        Editor,
        Output,
        /// Typing into a run's stdin in the Output pane.
        RunInput,
        Activity,
        /// Typing a sessions filter.
        Filter,
        Help,
        NewSession,
        Confirm,
        BuildLog,
        PickTarget,
        Isolation,
        Prompt,
    }
}

impl Scope {
    /// The keymap.toml section; global actions have none (they are
    /// top-level keys, so no section may share a global action's name).
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Sessions => "sessions",
            Scope::Runtimes => "runtimes",
            Scope::Stats => "stats",
            Scope::Files => "files",
            Scope::Editor => "editor",
            Scope::Output => "output",
            Scope::RunInput => "run_input",
            Scope::Activity => "activity",
            Scope::Filter => "filtering",
            Scope::Help => "help_popup",
            Scope::NewSession => "new_session_form",
            Scope::Confirm => "confirm",
            Scope::BuildLog => "build_log",
            Scope::PickTarget => "pick_target",
            Scope::Isolation => "isolation_result",
            Scope::Prompt => "prompt",
        }
    }

    /// The heading of the scope's keys in help.
    pub fn title(self) -> &'static str {
        match self {
            Scope::Global => "Everywhere",
            Scope::Sessions => "Sessions pane",
            Scope::Runtimes => "Runtimes pane",
            Scope::Stats => "Stats pane",
            Scope::Files => "Files pane",
            Scope::Editor => "Editor pane (other keys type)",
            Scope::Output => "Output pane",
            Scope::RunInput => "Typing into a run's stdin, Output pane (other keys type)",
            Scope::Activity => "Activity pane",
            Scope::Filter => "Filtering sessions (other keys type)",
            Scope::Help => "This help",
            Scope::NewSession => "New-session dialog (other keys type)",
            Scope::Confirm => "Confirmations (any other key cancels)",
            Scope::BuildLog => "Build log",
            Scope::PickTarget => "Isolation target picker",
            Scope::Isolation => "Isolation result",
            Scope::Prompt => "Name and search prompts (other keys type)",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.name() == name)
    }

    /// The actions of this scope, in table order.
    pub fn actions(self) -> impl Iterator<Item = Action> {
        Action::ALL
            .into_iter()
            .filter(move |action| action.scope() == self)
    }
}

/// What the table says about one action.
#[derive(Debug, Clone, Copy)]
pub struct ActionSpec {
    pub scope: Scope,
    /// The name in keymap.toml, within its scope's section.
    pub name: &'static str,
    pub default_keys: &'static [&'static str],
    /// One or two words for the status-bar hints.
    pub hint: &'static str,
    /// A line for help.
    pub description: &'static str,
}

/// The one table of actions: enum, `ALL` and specs from one list.
macro_rules! actions {
    ($($(#[$vmeta:meta])* $variant:ident: $scope:ident $name:literal [$($key:literal),*] $hint:literal $description:literal;)*) => {
        listed_enum! {
            /// What a key can do in the dashboard.
            pub enum Action { $($(#[$vmeta])* $variant),* }
        }
        impl Action {
            pub fn spec(self) -> ActionSpec {
                match self {
                    $(Action::$variant => ActionSpec {
                        scope: Scope::$scope,
                        name: $name,
                        default_keys: &[$($key),*],
                        hint: $hint,
                        description: $description,
                    }),*
                }
            }
        }
    };
}

actions! {
    // Global actions: a focused pane gets the key first, except for
    // `interrupt` and `run`, which work in every pane (`interrupt` in popups
    // too).
    Interrupt: Global "interrupt" ["ctrl-c"] "cancel run"
        "cancel the selected session's run; else copy (editor) or quit";
    Run: Global "run" ["f5", "ctrl-r"] "run" "run the editor's code in the selected session";
    Quit: Global "quit" ["q"] "quit" "quit (sessions keep running)";
    NewSession: Global "new_session" ["n"] "new" "new session";
    StartStop: Global "start_stop" ["s"] "start/stop" "stop or start the session";
    Restart: Global "restart" ["r"] "restart" "restart the session";
    Delete: Global "delete" ["d"] "delete" "delete the session";
    Build: Global "build" ["b"] "build" "build the selected runtime (or the session's)";
    Isolation: Global "isolation" ["i"] "isolation" "isolation check against another session";
    Filter: Global "filter" ["/"] "filter" "filter sessions";
    ClearFilter: Global "clear_filter" ["esc"] "clear filter" "clear the sessions filter";
    Help: Global "help" ["?"] "help" "this help";
    NextPane: Global "next_pane" ["tab"] "next pane" "next pane";
    PrevPane: Global "prev_pane" ["shift-tab"] "previous pane" "previous pane";
    Up: Global "up" ["k", "up"] "up" "select the previous session";
    Down: Global "down" ["j", "down"] "down" "select the next session";
    CycleTheme: Global "cycle_theme" ["t"] "theme" "next theme";

    Shell: Sessions "shell" ["e"] "shell"
        "open a shell in the selected session (exit comes back here)";
    SessionsSort: Sessions "sort" ["o"] "sort" "sort by the next column (shown in the header)";
    SessionsReverse: Sessions "reverse" ["O"] "reverse" "reverse the sort order";

    RuntimeUp: Runtimes "up" ["k", "up"] "up" "select the previous runtime";
    RuntimeDown: Runtimes "down" ["j", "down"] "down" "select the next runtime";

    FileUp: Files "up" ["k", "up"] "up" "select the previous entry";
    FileDown: Files "down" ["j", "down"] "down" "select the next entry";
    FileOpen: Files "open" ["enter"] "open/fold" "open a file; fold or unfold a folder";
    FileExpand: Files "expand" ["l", "right"] "unfold" "unfold a folder; open a file";
    FileCollapse: Files "collapse" ["h", "left"] "fold" "fold a folder (or the one it is in)";
    FileNew: Files "new_file" ["a"] "new file" "new file in the selected folder";
    FileNewDir: Files "new_dir" ["A"] "new folder" "new folder in the selected folder";
    FileRename: Files "rename" ["R", "f2"] "rename" "rename the selected entry";
    FileDelete: Files "delete" ["D", "delete"] "delete" "delete the selected entry";
    FileRefresh: Files "refresh" ["g"] "refresh" "list the workspace again";

    EditorSave: Editor "save" ["ctrl-s"] "save" "save the buffer to its file";
    EditorSearch: Editor "search" ["ctrl-f"] "search" "search the buffer (regex)";
    EditorSearchNext: Editor "search_next" ["f3"] "next match" "find the next match";
    EditorUndo: Editor "undo" ["ctrl-z"] "undo" "undo";
    EditorRedo: Editor "redo" ["ctrl-y"] "redo" "redo";
    EditorPaste: Editor "paste" ["ctrl-v"] "paste" "paste what was copied or cut";
    EditorIndent: Editor "indent" ["tab"] "indent"
        "indent by the runtime's indent (each line of a selection)";
    EditorDedent: Editor "dedent" ["shift-tab"] "dedent"
        "remove one indent level (each line of a selection)";
    EditorLeave: Editor "leave" ["esc"] "leave" "leave the editor for the sessions";

    OutputUp: Output "up" ["k", "up"] "scroll" "scroll up a line";
    OutputDown: Output "down" ["j", "down"] "scroll" "scroll down a line";
    OutputPageUp: Output "page_up" ["pageup"] "page up" "scroll up a page";
    OutputPageDown: Output "page_down" ["pagedown"] "page down" "scroll down a page";
    OutputTop: Output "top" ["home", "g"] "top" "go to the first line kept";
    OutputFollow: Output "follow" ["end", "f", "G"] "follow" "go to the end and follow new output";
    OutputSearch: Output "search" ["/"] "search" "search the output backwards";
    OutputSearchNext: Output "search_next" ["n"] "next match" "find the previous match";
    OutputSave: Output "save" ["ctrl-s"] "save" "save the output to output.log in the workspace";
    OutputWrap: Output "wrap" ["w"] "wrap"
        "wrap long lines, or cut them at the edge and scroll sideways";
    OutputLeft: Output "left" ["h", "left"] "sideways" "scroll left, when lines are not wrapped";
    OutputRight: Output "right" ["l", "right"] "sideways" "scroll right, when lines are not wrapped";
    OutputType: Output "type" ["i"] "type input" "type into the running program's stdin";

    InputSend: RunInput "send" ["enter"] "send line" "send the typed line to the program's stdin";
    InputEnd: RunInput "end" ["ctrl-d"] "end input"
        "send what is typed, then close the program's stdin (end of input)";
    InputLeave: RunInput "leave" ["esc"] "pane keys"
        "stop typing: keys scroll, search and save the output again";

    ActivityScope: Activity "scope" ["a"] "all/one"
        "switch between the selected session's actions and every session's";
    ActivityUp: Activity "up" ["k", "up"] "older" "scroll to older actions";
    ActivityDown: Activity "down" ["j", "down"] "newer" "scroll to newer actions";
    ActivityPageUp: Activity "page_up" ["pageup"] "page up" "scroll up a page";
    ActivityPageDown: Activity "page_down" ["pagedown"] "page down" "scroll down a page";
    ActivityFollow: Activity "follow" ["end", "G"] "follow" "go to the newest and follow new actions";

    FilterKeep: Filter "keep" ["enter"] "keep" "keep the filter and leave it";
    FilterClear: Filter "clear" ["esc"] "clear" "clear the filter and leave it";

    HelpClose: Help "close" ["esc", "enter", "q", "?"] "close" "close this help";
    HelpUp: Help "up" ["up", "k"] "scroll" "scroll up";
    HelpDown: Help "down" ["down", "j"] "scroll" "scroll down";

    FormNext: NewSession "next_field" ["tab", "down"] "next field" "next field";
    FormPrev: NewSession "prev_field" ["shift-tab", "up"] "previous field" "previous field";
    FormChoiceNext: NewSession "choice_next" ["right", "space"] "choose" "next runtime or network";
    FormChoicePrev: NewSession "choice_prev" ["left"] "choose" "previous runtime or network";
    FormCreate: NewSession "create" ["enter"] "create" "create the session";
    FormCancel: NewSession "cancel" ["esc"] "cancel" "close without creating";

    ConfirmNext: Confirm "next" ["right", "tab"] "choose" "focus the next answer";
    ConfirmPrev: Confirm "prev" ["left", "shift-tab"] "choose" "focus the previous answer";
    ConfirmAnswer: Confirm "answer" ["enter"] "answer" "answer with the focused button (a purge: the typed id)";

    BuildLogClose: BuildLog "close" ["esc", "enter", "q"] "close" "close the build log";
    BuildLogUp: BuildLog "up" ["up", "k"] "scroll" "scroll up";
    BuildLogDown: BuildLog "down" ["down", "j"] "scroll" "scroll down";

    PickUp: PickTarget "up" ["up", "k"] "up" "previous session";
    PickDown: PickTarget "down" ["down", "j"] "down" "next session";
    PickChoose: PickTarget "choose" ["enter"] "check" "check isolation against it";
    PickCancel: PickTarget "cancel" ["esc"] "cancel" "close without checking";

    IsolationClose: Isolation "close" ["esc", "enter", "q"] "close" "close the result";

    PromptSubmit: Prompt "submit" ["enter"] "confirm" "confirm";
    PromptCancel: Prompt "cancel" ["esc"] "cancel" "close without doing anything";
}

impl Action {
    pub fn scope(self) -> Scope {
        self.spec().scope
    }

    /// The name within its scope's section of keymap.toml.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// `files.rename`, or `quit` for a global action.
    pub fn qualified_name(self) -> String {
        match self.scope() {
            Scope::Global => self.name().to_string(),
            scope => format!("{}.{}", scope.name(), self.name()),
        }
    }

    pub fn description(self) -> &'static str {
        self.spec().description
    }

    pub fn hint(self) -> &'static str {
        self.spec().hint
    }

    fn default_keys(self) -> &'static [&'static str] {
        self.spec().default_keys
    }

    fn find(scope: Scope, name: &str) -> Option<Self> {
        scope.actions().find(|action| action.name() == name)
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
            "delete" | "del" => KeyCode::Delete,
            "backspace" => KeyCode::Backspace,
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
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Delete => f.write_str("del"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Keys for every action. Lookups are by scope: the same key may mean one
/// thing in a pane and another globally (the pane gets it first).
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
    /// The defaults with a user file's bindings on top. Global actions are
    /// top-level keys; a pane's or popup's are in its section (`[files]`).
    /// A bad file is an error naming the offending key; the caller falls
    /// back to defaults.
    pub fn with_overrides(text: &str, file_name: &str) -> Result<Self, String> {
        let locator = Locator::new(text, file_name);
        let table: BTreeMap<String, toml::Spanned<toml::Value>> =
            locator.parse().map_err(|err| err.to_string())?;
        let mut keymap = Self::default();
        for (name, value) in table {
            let span = value.span();
            match value.into_inner() {
                toml::Value::Table(section) => {
                    let scope = Scope::from_name(&name).ok_or_else(|| {
                        locator
                            .error(
                                span.clone(),
                                format!(
                                    "unknown section `[{name}]`; sections are {}",
                                    Scope::ALL.map(Scope::name).join(", ")
                                ),
                            )
                            .to_string()
                    })?;
                    for (action_name, value) in section {
                        let qualified = format!("{name}.{action_name}");
                        let action = Action::find(scope, &action_name).ok_or_else(|| {
                            locator
                                .error(
                                    span.clone(),
                                    format!(
                                        "unknown action `{qualified}`; [{name}] has {}",
                                        scope
                                            .actions()
                                            .map(Action::name)
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    ),
                                )
                                .to_string()
                        })?;
                        let keys = parse_keys(&qualified, value)
                            .map_err(|msg| locator.error(span.clone(), msg).to_string())?;
                        keymap.bindings.insert(action, keys);
                    }
                }
                value => {
                    let action = Action::find(Scope::Global, &name).ok_or_else(|| {
                        locator
                            .error(
                                span.clone(),
                                format!(
                                    "unknown action `{name}`; actions are {} (a pane's or popup's go in its [section])",
                                    Scope::Global
                                        .actions()
                                        .map(Action::name)
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            )
                            .to_string()
                    })?;
                    let keys = parse_keys(&name, value)
                        .map_err(|msg| locator.error(span.clone(), msg).to_string())?;
                    keymap.bindings.insert(action, keys);
                }
            }
        }
        Ok(keymap)
    }

    /// The global action bound to a key event, if any.
    pub fn action_for(&self, event: &KeyEvent) -> Option<Action> {
        self.action_in(Scope::Global, event)
    }

    /// The action of `scope` bound to a key event, if any.
    pub fn action_in(&self, scope: Scope, event: &KeyEvent) -> Option<Action> {
        self.bindings
            .iter()
            .filter(|(action, _)| action.scope() == scope)
            .find(|(_, keys)| keys.iter().any(|key| key.matches(event)))
            .map(|(action, _)| *action)
    }

    /// Whether a key event is bound to `action`.
    pub fn is(&self, action: Action, event: &KeyEvent) -> bool {
        self.keys(action).iter().any(|key| key.matches(event))
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

    /// The first key of an action (`f5`), for prose that names one key;
    /// `(unbound)` when the user bound none.
    pub fn first(&self, action: Action) -> String {
        self.keys(action)
            .first()
            .map_or_else(|| "(unbound)".to_string(), ToString::to_string)
    }

    /// `←/→ choose · enter answer`: hints for actions, from the current keys.
    pub fn hints(&self, actions: &[Action]) -> String {
        actions
            .iter()
            .map(|action| format!("{} {}", self.label(*action), action.hint()))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// The keys of one binding: a key string or a list of them.
fn parse_keys(name: &str, value: toml::Value) -> Result<Vec<Key>, String> {
    let texts: Vec<String> = match value {
        toml::Value::String(key) => vec![key],
        toml::Value::Array(keys) => keys
            .into_iter()
            .map(|key| match key {
                toml::Value::String(key) => Ok(key),
                other => Err(format!("`{name}`: `{other}` is not a key string")),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(format!(
                "`{name}` must be a key or a list of keys, not `{other}`"
            ));
        }
    };
    texts
        .iter()
        .map(|text| Key::parse(text).map_err(|msg| format!("`{name}`: {msg}")))
        .collect()
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

    #[test]
    fn sections_override_pane_and_popup_keys() {
        let keymap = KeyMap::with_overrides(
            "quit = \"x\"\n[files]\nrename = [\"r\"]\n[confirm]\nanswer = \"y\"\n",
            "k.toml",
        )
        .unwrap();
        assert_eq!(
            keymap.action_in(Scope::Files, &key(KeyCode::Char('r'))),
            Some(Action::FileRename)
        );
        assert_eq!(keymap.action_in(Scope::Files, &key(KeyCode::F(2))), None);
        assert_eq!(
            keymap.action_in(Scope::Confirm, &key(KeyCode::Char('y'))),
            Some(Action::ConfirmAnswer)
        );
        // Global `restart` keeps `r`: scopes are separate.
        assert_eq!(
            keymap.action_for(&key(KeyCode::Char('r'))),
            Some(Action::Restart)
        );
        let err = KeyMap::with_overrides("[files]\nrenam = \"r\"\n", "k.toml").unwrap_err();
        assert!(err.contains("unknown action `files.renam`"), "{err}");
        let err = KeyMap::with_overrides("[filez]\nrename = \"r\"\n", "k.toml").unwrap_err();
        assert!(err.contains("unknown section `[filez]`"), "{err}");
    }

    #[test]
    fn no_section_shares_a_global_actions_name() {
        for scope in Scope::ALL {
            assert_eq!(
                Action::find(Scope::Global, scope.name()),
                None,
                "[{}] would clash with the global action",
                scope.name()
            );
        }
    }

    #[test]
    fn no_key_means_two_things_in_one_scope() {
        let keymap = KeyMap::default();
        for scope in Scope::ALL {
            let mut seen: Vec<(Key, Action)> = Vec::new();
            for action in scope.actions() {
                for key in keymap.keys(action) {
                    if let Some((_, other)) = seen.iter().find(|(k, _)| k == key) {
                        panic!("{key} is both {other:?} and {action:?}");
                    }
                    seen.push((*key, action));
                }
            }
        }
    }

    #[test]
    fn every_default_key_parses_and_names_are_unique_per_scope() {
        for action in Action::ALL {
            for text in action.default_keys() {
                assert!(Key::parse(text).is_ok(), "{action:?}: {text}");
            }
            assert_eq!(Action::find(action.scope(), action.name()), Some(action));
        }
    }
}
