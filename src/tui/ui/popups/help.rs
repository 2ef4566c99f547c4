use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::frame_popup;
use crate::tui::app::App;
use crate::tui::keymap::Action;

pub fn draw(frame: &mut Frame, app: &App) {
    let theme = app.theme();
    let mut lines: Vec<Line> = Action::ALL
        .iter()
        .map(|action| {
            Line::from(vec![
                Span::styled(
                    format!("{:>14}  ", app.keymap.label(*action)),
                    theme.accent(),
                ),
                Span::styled(action.description(), theme.text()),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "  f5/ctrl-r  run the editor's code in the selected session",
        theme.muted(),
    ));
    lines.push(Line::styled(
        "      mouse  click a pane or row; the wheel scrolls",
        theme.muted(),
    ));
    lines.push(Line::styled(
        "     ctrl-c  cancel the selected session's run, else quit",
        theme.muted(),
    ));
    lines.push(Line::styled(
        "keys can be changed in $XDG_CONFIG_HOME/sandpit/keymap.toml",
        theme.muted(),
    ));
    let height = lines.len() as u16 + 2;
    let inner = frame_popup(frame, theme, "Keys — esc to close", 64, height);
    frame.render_widget(Paragraph::new(lines), inner);
}
