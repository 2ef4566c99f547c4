//! Drawing: one file per on-screen block in `draw_blocks/`, one per popup in
//! `popups/`. Drawing reads the app; it never changes what the app means.

pub mod activity;
pub mod charts;
pub mod draw_blocks;
pub mod layout;
pub mod popups;

use ratatui::Frame;
use ratatui::layout::Alignment;
use ratatui::widgets::Paragraph;

use super::app::App;
use layout::Areas;

pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    app.area = area;
    let areas = Areas::compute(area);
    if let Some(area) = areas.too_small {
        let text = format!(
            "terminal too small ({}x{}); sandpit needs {}x{}",
            area.width,
            area.height,
            layout::MIN_WIDTH,
            layout::MIN_HEIGHT
        );
        frame.render_widget(
            Paragraph::new(text)
                .style(app.theme().text())
                .alignment(Alignment::Center)
                .wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    if let Some(area) = areas.title {
        draw_blocks::title::draw(frame, area, app);
    }
    if let Some(area) = areas.sessions {
        draw_blocks::sessions::draw(frame, area, app);
    }
    if let Some(area) = areas.runtimes {
        draw_blocks::runtimes::draw(frame, area, app);
    }
    if let Some(area) = areas.stats {
        draw_blocks::stats::draw(frame, area, app);
    }
    if let Some(area) = areas.files {
        draw_blocks::files::draw(frame, area, app);
    }
    if let Some(area) = areas.editor {
        draw_blocks::editor::draw(frame, area, app);
    }
    if let Some(area) = areas.output {
        draw_blocks::output::draw(frame, area, app);
    }
    if let Some(area) = areas.status {
        draw_blocks::status_bar::draw(frame, area, app);
    }
    popups::draw(frame, app);
}
