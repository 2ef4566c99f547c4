use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::Paragraph;

use super::pane_block;
use crate::tui::app::{App, Pane};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
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
            Paragraph::new("tab here (or press f5 to run the starter code)")
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
