//! Help: every action of every scope, generated from the keymap, so it
//! lists exactly the keys that work (user overrides included).

use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{frame_popup, title_hints};
use crate::tui::app::App;
use crate::tui::keymap::{Action, KeyMap, Scope};
use crate::tui::popups::Popup;

/// One line of help: a scope's heading, or an action with its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelpLine {
    Heading(Scope),
    /// The keys' label and what the action does.
    Action {
        keys: String,
        description: String,
    },
    Note(&'static str),
}

/// Help's lines, scope by scope in [`Scope::ALL`] order.
pub fn lines(keymap: &KeyMap) -> Vec<HelpLine> {
    let mut lines = Vec::new();
    for scope in Scope::ALL {
        lines.push(HelpLine::Heading(scope));
        let before = lines.len();
        for action in scope.actions() {
            lines.push(HelpLine::Action {
                keys: keymap.label(action),
                description: action.description().to_string(),
            });
        }
        if lines.len() == before {
            lines.push(HelpLine::Note("the keys from Everywhere"));
        }
    }
    lines.push(HelpLine::Note(
        "mouse: click a pane or row; the wheel scrolls",
    ));
    lines.push(HelpLine::Note(
        "keys can be changed in $XDG_CONFIG_HOME/sandpit/keymap.toml: global ones at the top, e.g. quit = [\"q\"]; others in the section named in [ ], e.g. [files] rename = [\"r\"]",
    ));
    lines
}

pub fn handle_key(app: &App, scroll: usize, action: Option<Action>) -> Option<Popup> {
    let last = lines(&app.keymap).len().saturating_sub(1);
    match action {
        Some(Action::HelpClose) => None,
        Some(Action::HelpUp) => Some(Popup::Help {
            scroll: scroll.saturating_sub(1),
        }),
        Some(Action::HelpDown) => Some(Popup::Help {
            scroll: (scroll + 1).min(last),
        }),
        _ => Some(Popup::Help { scroll }),
    }
}

pub fn draw(frame: &mut Frame, app: &App, scroll: usize) {
    let theme = app.theme();
    let all = lines(&app.keymap);
    let rendered: Vec<Line> = all
        .iter()
        .map(|line| match line {
            HelpLine::Heading(scope) => {
                Line::styled(format!("── {} ──", scope.title()), theme.accent())
            }
            HelpLine::Action { keys, description } => Line::from(vec![
                Span::styled(format!("{keys:>16}  "), theme.accent()),
                Span::styled(description.clone(), theme.text()),
            ]),
            HelpLine::Note(note) => Line::styled(format!("  {note}"), theme.muted()),
        })
        .collect();
    let height = (rendered.len() as u16 + 2).min(frame.area().height.saturating_sub(2));
    let title = format!(
        "Keys — {}",
        title_hints(
            app,
            &[&[Action::HelpUp, Action::HelpDown], &[Action::HelpClose]]
        )
    );
    let width = frame.area().width.saturating_sub(4).min(96);
    let inner = frame_popup(frame, theme, &title, width, height);
    // Scrolled no further than the last page.
    let room = usize::from(inner.height);
    let first = scroll.min(rendered.len().saturating_sub(room));
    let shown: Vec<Line> = rendered.into_iter().skip(first).take(room).collect();
    frame.render_widget(
        Paragraph::new(shown).wrap(ratatui::widgets::Wrap { trim: false }),
        inner,
    );
}
