//! The session's workspace as a tree: open files into the editor, create,
//! rename and delete.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph};

use super::{Component, Pane, pane_block};
use crate::engine::files::EntryKind;
use crate::tui::app::App;
use crate::tui::collector::Request;
use crate::tui::files::MAX_EDITABLE_SIZE;
use crate::tui::keymap::{Action, Scope};
use crate::tui::popups::{Confirm, Confirmable, Popup, Prompt};
use crate::tui::ui::layout::Areas;
use crate::units::human_bytes;

pub struct FilesPane;

impl Component for FilesPane {
    fn scope(&self) -> Scope {
        Scope::Files
    }

    fn area(&self, areas: &Areas) -> Option<Rect> {
        areas.files
    }

    fn hints(&self) -> &'static [Action] {
        &[
            Action::FileOpen,
            Action::FileCollapse,
            Action::FileNew,
            Action::FileNewDir,
            Action::FileRename,
            Action::FileDelete,
            Action::FileRefresh,
            Action::NextPane,
        ]
    }

    fn draw(&self, frame: &mut Frame, area: Rect, app: &App) {
        draw(frame, area, app);
    }

    /// The tree appears with a fresh listing.
    fn on_focus(&self, app: &mut App) {
        let _ = app.selected_work_mut();
        app.refresh_files();
    }

    fn handle_key(&self, app: &mut App, _key: &KeyEvent, action: Option<Action>) -> bool {
        let Some(action) = action else { return false };
        let Some((user, work)) = app.selected_work_mut() else {
            return false;
        };
        let tree = &mut work.tree;
        let row = tree.selected_row();
        match action {
            Action::FileUp => tree.move_selection(-1),
            Action::FileDown => tree.move_selection(1),
            Action::FileOpen | Action::FileExpand => {
                let Some(row) = row else { return true };
                if row.entry.kind == EntryKind::Dir {
                    if row.expanded && action == Action::FileOpen {
                        tree.collapse(&row.path);
                    } else if tree.expand(&row.path) {
                        app.outbox.push(Request::ListDir {
                            user,
                            path: row.path,
                        });
                    }
                } else if row.entry.size > MAX_EDITABLE_SIZE {
                    let size = human_bytes(row.entry.size);
                    app.warn(format!(
                        "{} is {size}, too large to open in the editor",
                        row.path
                    ));
                } else if work.modified {
                    let file = work.file.clone();
                    let save = app.keymap.first(Action::EditorSave);
                    app.warn(format!("save {file} first ({save} in the editor)"));
                } else {
                    app.outbox.push(Request::OpenFile {
                        user,
                        path: row.path,
                    });
                }
            }
            Action::FileCollapse => {
                if let Some(row) = row {
                    if row.expanded {
                        tree.collapse(&row.path);
                    } else if let Some((parent, _)) = row.path.rsplit_once('/') {
                        let parent = parent.to_string();
                        tree.collapse(&parent);
                    }
                }
            }
            Action::FileNew => {
                app.popup = Some(Popup::Prompt {
                    purpose: Prompt::NewFile {
                        dir: tree.target_dir(),
                    },
                    text: String::new(),
                });
            }
            Action::FileNewDir => {
                app.popup = Some(Popup::Prompt {
                    purpose: Prompt::NewDir {
                        dir: tree.target_dir(),
                    },
                    text: String::new(),
                });
            }
            Action::FileRename => {
                if let Some(row) = row {
                    app.popup = Some(Popup::Prompt {
                        purpose: Prompt::Rename {
                            from: row.path.clone(),
                        },
                        text: row.path,
                    });
                }
            }
            Action::FileDelete => {
                if let Some(row) = row {
                    app.popup = Some(Popup::Confirm(Confirm::new(Confirmable::DeleteFile {
                        user,
                        path: row.path,
                    })));
                }
            }
            Action::FileRefresh => app.refresh_files(),
            _ => return false,
        }
        true
    }

    fn click(&self, app: &mut App, area: Rect, position: Position) {
        // Rows start below the border.
        let first = area.y + 1;
        if position.y < first {
            return;
        }
        let row = usize::from(position.y - first) + app.files_offset.get();
        if let Some((_, work)) = app.selected_work_mut()
            && row < work.tree.rows().len()
        {
            work.tree.selected = row;
        }
    }

    fn scroll(&self, app: &mut App, down: bool) {
        if let Some((_, work)) = app.selected_work_mut() {
            work.tree.move_selection(if down { 1 } else { -1 });
        }
    }
}

fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let focused = app.focus == Pane::Files;
    let Some(session) = app.selected() else {
        let block = pane_block(" Files ", focused, theme);
        frame.render_widget(
            Paragraph::new("no session selected")
                .style(theme.muted())
                .block(block),
            area,
        );
        return;
    };
    let block = pane_block(
        format!(" Files — {} ", session.sandbox.user),
        focused,
        theme,
    );
    let work = app.work.get(&session.sandbox.user);
    let Some(tree) = work
        .map(|w| &w.tree)
        .filter(|t| t.has_root() || t.error.is_some())
    else {
        let hint = if session.sandbox.is_running() {
            format!(
                "{}\n{} here to browse it",
                session.sandbox.workspace,
                app.keymap.first(Action::NextPane)
            )
        } else {
            format!(
                "{}\nstart the session to browse it",
                session.sandbox.workspace
            )
        };
        frame.render_widget(Paragraph::new(hint).style(theme.muted()).block(block), area);
        return;
    };
    if let Some(error) = &tree.error {
        frame.render_widget(
            Paragraph::new(error.clone())
                .style(theme.text().fg(theme.error))
                .block(block),
            area,
        );
        return;
    }
    let rows = tree.rows();
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new(format!(
                "empty — {} creates a file, {} a folder",
                app.keymap.first(Action::FileNew),
                app.keymap.first(Action::FileNewDir)
            ))
            .style(theme.muted())
            .block(block),
            area,
        );
        return;
    }
    let items: Vec<ListItem> = rows
        .iter()
        .map(|row| {
            let indent = "  ".repeat(row.depth);
            let (marker, name_style) = match row.entry.kind {
                EntryKind::Dir if row.expanded => ("▾ ", theme.accent()),
                EntryKind::Dir => ("▸ ", theme.accent()),
                EntryKind::Symlink => ("@ ", theme.muted()),
                _ => ("  ", theme.text()),
            };
            let mut spans = vec![
                Span::raw(indent),
                Span::styled(marker, theme.muted()),
                Span::styled(row.entry.display_name(), name_style),
            ];
            if row.entry.kind == EntryKind::File {
                let note = if row.entry.size > MAX_EDITABLE_SIZE {
                    " (large)"
                } else {
                    ""
                };
                spans.push(Span::styled(
                    format!("  {}{note}", human_bytes(row.entry.size)),
                    theme.muted(),
                ));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let list = List::new(items).block(block).highlight_style(if focused {
        theme.selected()
    } else {
        theme.text()
    });
    let mut state = ListState::default().with_selected(Some(tree.selected));
    frame.render_stateful_widget(list, area, &mut state);
    app.files_offset.set(state.offset());
}
