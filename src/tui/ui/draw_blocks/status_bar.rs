use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, Pane};
use crate::tui::keymap::Action;

/// The actions worth a hint in each pane, in order.
fn hinted(pane: Pane) -> &'static [Action] {
    match pane {
        Pane::Sessions => &[
            Action::NewSession,
            Action::StartStop,
            Action::Restart,
            Action::Delete,
            Action::Isolation,
            Action::Filter,
            Action::NextPane,
            Action::Help,
            Action::Quit,
        ],
        Pane::Runtimes => &[
            Action::Build,
            Action::NewSession,
            Action::NextPane,
            Action::Help,
            Action::Quit,
        ],
        Pane::Stats => &[
            Action::NextPane,
            Action::CycleTheme,
            Action::Help,
            Action::Quit,
        ],
        Pane::Files | Pane::Editor | Pane::Output => &[],
    }
}

/// The editor and output panes take typed keys, so their keys are fixed.
fn fixed_hints(pane: Pane) -> &'static [(&'static str, &'static str)] {
    match pane {
        Pane::Editor => &[
            ("f5/ctrl-r", "run"),
            ("ctrl-s", "save"),
            ("ctrl-f f3", "search"),
            ("ctrl-z/ctrl-y", "undo/redo"),
            ("shift-arrows", "select"),
            ("ctrl-c/ctrl-x/ctrl-v", "copy/cut/paste"),
            ("esc", "leave"),
        ],
        Pane::Output => &[
            ("↑/↓ pgup/pgdn", "scroll"),
            ("end", "follow"),
            ("/ n", "search"),
            ("ctrl-s", "save to output.log"),
            ("ctrl-c", "cancel run"),
            ("tab", "next pane"),
        ],
        Pane::Files => &[
            ("enter", "open/expand"),
            ("h/l", "fold"),
            ("a", "new file"),
            ("A", "new folder"),
            ("R", "rename"),
            ("D", "delete"),
            ("g", "refresh"),
            ("tab", "next pane"),
        ],
        _ => &[],
    }
}

fn short_name(action: Action) -> &'static str {
    match action {
        Action::NewSession => "new",
        Action::StartStop => "start/stop",
        Action::Restart => "restart",
        Action::Delete => "delete",
        Action::Build => "build",
        Action::Isolation => "isolation",
        Action::Filter => "filter",
        Action::NextPane => "next pane",
        Action::Help => "help",
        Action::Quit => "quit",
        Action::CycleTheme => "theme",
        other => other.name(),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let theme = app.theme();
    let line = if let Some(notice) = &app.notice {
        let color = if notice.error { theme.error } else { theme.ok };
        Line::from(Span::styled(
            format!(" {}", notice.text),
            theme.text().fg(color),
        ))
    } else if app.filtering {
        Line::from(Span::styled(
            " type to filter · enter keep · esc clear",
            theme.muted(),
        ))
    } else {
        let mut spans = vec![Span::raw(" ")];
        for (index, (keys, what)) in fixed_hints(app.focus).iter().enumerate() {
            if index > 0 {
                spans.push(Span::styled(" · ", theme.muted()));
            }
            spans.push(Span::styled(*keys, theme.accent()));
            spans.push(Span::styled(format!(" {what}"), theme.muted()));
        }
        for (index, action) in hinted(app.focus).iter().enumerate() {
            if index > 0 {
                spans.push(Span::styled(" · ", theme.muted()));
            }
            spans.push(Span::styled(app.keymap.label(*action), theme.accent()));
            spans.push(Span::styled(
                format!(" {}", short_name(*action)),
                theme.muted(),
            ));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}
