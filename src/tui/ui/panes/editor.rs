//! The selected session's code: typed keys edit; the keymap's editor
//! actions save, search, undo, indent and leave. Code is coloured by its
//! language (see `tui::highlight`), and Tab, shift-tab and backspace over
//! leading spaces follow the runtime's indent (see `tui::indent`).

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::Paragraph;

use super::{Component, Pane, pane_block};
use crate::tui::app::App;
use crate::tui::keymap::{Action, Scope};
use crate::tui::popups::{Popup, Prompt};
use crate::tui::ui::layout::Areas;

pub struct EditorPane;

impl Component for EditorPane {
    fn scope(&self) -> Scope {
        Scope::Editor
    }

    fn area(&self, areas: &Areas) -> Option<Rect> {
        areas.editor
    }

    fn hints(&self) -> &'static [Action] {
        &[
            Action::Run,
            Action::EditorSave,
            Action::EditorSearch,
            Action::EditorSearchNext,
            Action::EditorUndo,
            Action::EditorRedo,
            Action::EditorPaste,
            Action::EditorLeave,
        ]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        draw(frame, area, app);
    }

    /// The editor appears with the runtime's starter code.
    fn on_focus(&self, app: &mut App) {
        let _ = app.selected_work_mut();
    }

    /// Every key is the editor's: its actions, or text.
    fn handle_key(&self, app: &mut App, key: &KeyEvent, action: Option<Action>) -> bool {
        match action {
            Some(Action::EditorLeave) => app.focus = Pane::Sessions,
            Some(Action::EditorSave) => app.save_selected(),
            Some(Action::EditorSearch) => {
                app.popup = Some(Popup::Prompt {
                    purpose: Prompt::SearchEditor,
                    text: String::new(),
                });
            }
            Some(Action::EditorSearchNext) => {
                if let Some((_, work)) = app.selected_work_mut()
                    && !work.editor.search_forward(false)
                {
                    app.warn("no further match");
                }
            }
            Some(Action::EditorUndo) => {
                if let Some((_, work)) = app.selected_work_mut() {
                    work.modified |= work.editor.undo();
                }
            }
            Some(Action::EditorRedo) => {
                if let Some((_, work)) = app.selected_work_mut() {
                    work.modified |= work.editor.redo();
                }
            }
            Some(Action::EditorPaste) => {
                if let Some((_, work)) = app.selected_work_mut() {
                    work.modified |= work.editor.paste();
                }
            }
            Some(Action::EditorIndent) => {
                if let Some((_, work)) = app.selected_work_mut() {
                    work.indent();
                }
            }
            Some(Action::EditorDedent) => {
                if let Some((_, work)) = app.selected_work_mut() {
                    work.dedent();
                }
            }
            // Backspace is typing, not an action; over leading spaces it
            // goes back one indent level.
            _ if key.code == KeyCode::Backspace && key.modifiers.is_empty() => {
                if let Some((_, work)) = app.selected_work_mut() {
                    work.backspace();
                }
            }
            _ => {
                if let Some((_, work)) = app.selected_work_mut() {
                    work.modified |= work.editor.input(*key);
                }
            }
        }
        true
    }

    /// A paste is one edit: one undo takes it back.
    fn paste(&self, app: &mut App, text: &str) -> bool {
        match app.selected_work_mut() {
            Some((_, work)) => work.modified |= work.editor.insert_str(text),
            None => app.warn("pasted text ignored: select a session to edit its code"),
        }
        true
    }
}

fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let focused = app.focus == Pane::Editor;
    let Some(session) = app.selected() else {
        let block = pane_block(" Editor ", focused, theme);
        frame.render_widget(
            Paragraph::new("select a session to write code for it")
                .style(theme.muted())
                .block(block),
            area,
        );
        return;
    };
    let user = &session.sandbox.user;
    let Some(work) = app.work.get(user) else {
        // The buffer is made on first use, from the runtime's starter code.
        let block = pane_block(format!(" Editor — {user} "), focused, theme);
        frame.render_widget(
            Paragraph::new(format!(
                "{} here (or press {} to run the starter code)",
                app.keymap.first(Action::NextPane),
                app.keymap.first(Action::Run)
            ))
            .style(theme.muted())
            .block(block),
            area,
        );
        return;
    };
    let modified = if work.modified { " [modified]" } else { "" };
    let block = pane_block(
        format!(" Editor — {user}: {}{modified} ", work.file),
        focused,
        theme,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(&work.editor, inner);
    work.highlight
        .paint(&work.editor, inner, frame.buffer_mut(), theme);
}
