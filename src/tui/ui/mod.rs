//! The screen: one file per pane in `panes/` (drawing it and handling its
//! keys), one per popup in `popups/`, and the title and status bars in
//! `draw_blocks/`. Drawing reads the app; it never changes what it means.

pub mod activity;
pub mod charts;
pub mod draw_blocks;
pub mod layout;
pub mod panes;
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
    for pane in panes::Pane::ALL {
        let component = pane.component();
        if let Some(area) = component.area(&areas) {
            component.draw(frame, area, app);
        }
    }
    if let Some(area) = areas.status {
        draw_blocks::status_bar::draw(frame, area, app);
    }
    popups::draw(frame, app);
}
