//! Popup state. Each popup is drawn, and its keys handled, by its own file
//! in `ui/popups/`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::keymap::Action;

use crate::engine::policy::{ByteSize, PolicyOverrides};
use crate::engine::sandbox::UserId;

#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    /// Help, scrolled down by `scroll` lines.
    Help {
        scroll: usize,
    },
    NewSession(NewSessionForm),
    /// A question whose yes destroys something.
    Confirm(Confirm),
    /// Lines scrolled back from the end of the build log.
    BuildLog {
        scroll_back: usize,
    },
    PickIsolationTarget {
        from: String,
        choices: Vec<String>,
        selected: usize,
    },
    Isolation,
    /// A line of text for a file name or a search.
    Prompt {
        purpose: Prompt,
        text: String,
    },
}

/// What a destructive confirmation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmable {
    /// Remove a session's sandbox, keeping or purging its workspace.
    DeleteSession { user: String },
    /// Stop (or restart) a session while a dashboard run is in progress in it.
    StopSession { user: String, restart: bool },
    /// Delete a file or folder (with its contents) from the workspace.
    DeleteFile { user: String, path: String },
}

/// One answer of a [`Confirm`]; the first of each list is the safe one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Cancel,
    /// The destructive answer itself.
    Proceed,
    /// Delete the session and its workspace; asks for the user id first.
    Purge,
}

/// A destructive confirmation. It is answered deliberately: a focused button
/// and Enter (and, for a purge, the user id typed out in full). Any other key,
/// a paste or a key burst closes it without doing anything, so a stray letter
/// can never be the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub subject: Confirmable,
    /// Index into [`Confirm::choices`]; starts on Cancel.
    pub focused: usize,
    /// Set once Purge is chosen: what has been typed of the user id so far.
    pub typed: Option<String>,
}

impl Confirm {
    pub fn new(subject: Confirmable) -> Self {
        Self {
            subject,
            focused: 0,
            typed: None,
        }
    }

    /// The buttons, in order, with their labels.
    pub fn choices(&self) -> &'static [(Choice, &'static str)] {
        match self.subject {
            Confirmable::DeleteSession { .. } => &[
                (Choice::Cancel, "cancel"),
                (Choice::Proceed, "delete, keep workspace"),
                (Choice::Purge, "delete + purge workspace"),
            ],
            Confirmable::StopSession { restart: false, .. } => &[
                (Choice::Cancel, "cancel"),
                (Choice::Proceed, "stop, killing the run"),
            ],
            Confirmable::StopSession { restart: true, .. } => &[
                (Choice::Cancel, "cancel"),
                (Choice::Proceed, "restart, killing the run"),
            ],
            Confirmable::DeleteFile { .. } => {
                &[(Choice::Cancel, "cancel"), (Choice::Proceed, "delete")]
            }
        }
    }

    pub fn focused_choice(&self) -> Choice {
        self.choices()
            .get(self.focused)
            .map_or(Choice::Cancel, |(choice, _)| *choice)
    }

    /// Moves the focus between buttons, wrapping around.
    pub fn move_focus(&mut self, forward: bool) {
        self.focused = cycle(self.focused, self.choices().len(), forward);
    }

    /// The text a purge asks to be typed: the user id.
    pub fn purge_word(&self) -> Option<&str> {
        match &self.subject {
            Confirmable::DeleteSession { user } => Some(user),
            _ => None,
        }
    }

    pub fn title(&self) -> &'static str {
        match self.subject {
            Confirmable::DeleteSession { .. } if self.typed.is_some() => "Purge the workspace",
            Confirmable::DeleteSession { .. } => "Delete session",
            Confirmable::StopSession { restart: false, .. } => "Stop session",
            Confirmable::StopSession { restart: true, .. } => "Restart session",
            Confirmable::DeleteFile { .. } => "Delete from the workspace",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    NewFile { dir: String },
    NewDir { dir: String },
    Rename { from: String },
    SearchEditor,
    SearchOutput,
}

impl Prompt {
    pub fn title(&self) -> String {
        match self {
            Prompt::NewFile { dir } if dir.is_empty() => "New file in the workspace".to_string(),
            Prompt::NewFile { dir } => format!("New file in {dir}/"),
            Prompt::NewDir { dir } if dir.is_empty() => "New folder in the workspace".to_string(),
            Prompt::NewDir { dir } => format!("New folder in {dir}/"),
            Prompt::Rename { from } => format!("Rename {from} to"),
            Prompt::SearchEditor => "Search the editor (regex; f3 finds the next)".to_string(),
            Prompt::SearchOutput => "Search the output (n finds the previous)".to_string(),
        }
    }
}

pub const NETWORKS: [&str; 2] = ["none", "bridge"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    User,
    Runtime,
    Memory,
    Cpus,
    Network,
}

impl Field {
    pub const ORDER: [Field; 5] = [
        Field::User,
        Field::Runtime,
        Field::Memory,
        Field::Cpus,
        Field::Network,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Field::User => "user id",
            Field::Runtime => "runtime",
            Field::Memory => "memory",
            Field::Cpus => "cpus",
            Field::Network => "network",
        }
    }
}

/// The new-session dialog: validated as it is typed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSessionForm {
    pub user: String,
    pub runtimes: Vec<String>,
    pub runtime: usize,
    /// Empty means the configured default.
    pub memory: String,
    pub cpus: String,
    pub network: usize,
    pub field: Field,
    /// Set after a refused Enter, so untouched fields show their errors too.
    pub show_errors: bool,
}

impl NewSessionForm {
    pub fn new(runtimes: Vec<String>) -> Self {
        Self {
            user: String::new(),
            runtimes,
            runtime: 0,
            memory: String::new(),
            cpus: String::new(),
            network: 0,
            field: Field::User,
            show_errors: false,
        }
    }

    /// A key in the form: characters type into a text field; the
    /// keymap's field and choice actions move. Returns whether the key was
    /// used (create and cancel are the caller's).
    pub fn handle_key(&mut self, key: &KeyEvent, action: Option<Action>) -> bool {
        let index = Field::ORDER
            .iter()
            .position(|f| *f == self.field)
            .unwrap_or(0);
        let len = Field::ORDER.len();
        let plain = !key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        if let Some(text) = self.text_mut() {
            match key.code {
                KeyCode::Char(c) if plain => {
                    text.push(c);
                    return true;
                }
                KeyCode::Backspace => {
                    text.pop();
                    return true;
                }
                _ => {}
            }
        }
        match action {
            Some(Action::FormNext) => self.field = Field::ORDER[(index + 1) % len],
            Some(Action::FormPrev) => self.field = Field::ORDER[(index + len - 1) % len],
            Some(Action::FormChoiceNext | Action::FormChoicePrev) => {
                let forward = action == Some(Action::FormChoiceNext);
                match self.field {
                    Field::Runtime => {
                        self.runtime = cycle(self.runtime, self.runtimes.len(), forward)
                    }
                    Field::Network => self.network = cycle(self.network, NETWORKS.len(), forward),
                    _ => {}
                }
            }
            _ => return false,
        }
        true
    }

    /// Pasted text into the focused field; false when that field is not
    /// typed into (runtime, network).
    pub fn paste(&mut self, text: &str) -> bool {
        match self.text_mut() {
            Some(field) => {
                field.push_str(text);
                true
            }
            None => false,
        }
    }

    fn text_mut(&mut self) -> Option<&mut String> {
        match self.field {
            Field::User => Some(&mut self.user),
            Field::Memory => Some(&mut self.memory),
            Field::Cpus => Some(&mut self.cpus),
            Field::Runtime | Field::Network => None,
        }
    }

    /// The error of one field as it stands, if any.
    pub fn error(&self, field: Field) -> Option<String> {
        match field {
            Field::User => UserId::parse(&self.user).err(),
            Field::Runtime => self
                .runtimes
                .get(self.runtime)
                .is_none()
                .then(|| "no runtime to choose".to_string()),
            // Each value is checked as the policy will check it.
            Field::Memory => {
                let text = self.memory.trim();
                (!text.is_empty())
                    .then(|| match ByteSize::parse(text) {
                        Ok(size) => PolicyOverrides {
                            memory: Some(size),
                            ..Default::default()
                        }
                        .validate()
                        .err(),
                        Err(err) => Some(err),
                    })
                    .flatten()
            }
            Field::Cpus => {
                let text = self.cpus.trim();
                (!text.is_empty())
                    .then(|| match text.parse::<f64>() {
                        Ok(cpus) => PolicyOverrides {
                            cpus: Some(cpus),
                            ..Default::default()
                        }
                        .validate()
                        .err(),
                        Err(_) => Some(format!("cpus `{text}` must be a number above 0, e.g. 0.5")),
                    })
                    .flatten()
            }
            Field::Network => None,
        }
    }

    /// What to create, or the first field in error.
    pub fn validate(&self) -> Result<(UserId, String, PolicyOverrides), Field> {
        if let Some(field) = Field::ORDER.into_iter().find(|f| self.error(*f).is_some()) {
            return Err(field);
        }
        let user = UserId::parse(&self.user).map_err(|_| Field::User)?;
        let runtime = self
            .runtimes
            .get(self.runtime)
            .cloned()
            .ok_or(Field::Runtime)?;
        let overrides = PolicyOverrides {
            memory: (!self.memory.trim().is_empty())
                .then(|| ByteSize::parse(&self.memory).ok())
                .flatten(),
            cpus: self.cpus.trim().parse().ok(),
            network: (self.network != 0).then(|| NETWORKS[self.network].to_string()),
            ..Default::default()
        };
        overrides.validate().map_err(|_| Field::Memory)?;
        Ok((user, runtime, overrides))
    }
}

fn cycle(index: usize, len: usize, forward: bool) -> usize {
    if len == 0 {
        0
    } else if forward {
        (index + 1) % len
    } else {
        (index + len - 1) % len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::keymap::{KeyMap, Scope};

    fn press(form: &mut NewSessionForm, code: KeyCode) {
        let key = KeyEvent::new(code, KeyModifiers::NONE);
        let action = KeyMap::default().action_in(Scope::NewSession, &key);
        form.handle_key(&key, action);
    }

    fn type_text(form: &mut NewSessionForm, text: &str) {
        for c in text.chars() {
            press(form, KeyCode::Char(c));
        }
    }

    #[test]
    fn validates_as_typed() {
        let mut form = NewSessionForm::new(vec!["python-minimal".into(), "node-minimal".into()]);
        assert!(form.error(Field::User).is_some(), "empty user id");
        type_text(&mut form, "../x");
        assert!(form.error(Field::User).unwrap().contains("`.`"));
        for _ in 0..4 {
            press(&mut form, KeyCode::Backspace);
        }
        type_text(&mut form, "alice");
        assert_eq!(form.error(Field::User), None);
        press(&mut form, KeyCode::Tab);
        press(&mut form, KeyCode::Right);
        press(&mut form, KeyCode::Tab);
        type_text(&mut form, "lots");
        assert!(form.error(Field::Memory).is_some());
        assert_eq!(form.validate().unwrap_err(), Field::Memory);
        for _ in 0..4 {
            press(&mut form, KeyCode::Backspace);
        }
        type_text(&mut form, "1m");
        assert!(form.error(Field::Memory).unwrap().contains("at least 16m"));
        for _ in 0..4 {
            press(&mut form, KeyCode::Backspace);
        }
        type_text(&mut form, "512m");
        press(&mut form, KeyCode::Tab);
        type_text(&mut form, "0.5");
        press(&mut form, KeyCode::Tab);
        press(&mut form, KeyCode::Char(' '));
        let (user, runtime, overrides) = form.validate().unwrap();
        assert_eq!(user.as_str(), "alice");
        assert_eq!(runtime, "node-minimal");
        assert_eq!(overrides.memory, Some(ByteSize(512 << 20)));
        assert_eq!(overrides.cpus, Some(0.5));
        assert_eq!(overrides.network.as_deref(), Some("bridge"));
    }
}
