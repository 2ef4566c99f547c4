//! The Stats pane's charts: CPU %, memory against its limit and, where
//! there is room and the engine reports them, network and block I/O rates
//! and pids against their limit, over the last [`WINDOW_MS`].
//!
//! The charts share the area in a grid that fills it, most telling first
//! (see [`Metric::ORDER`]); the figures of those left out go on a line above.
//! An area too small for two charts gets sparklines, and one too small for
//! those gets the figures as text.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Chart, Dataset, GraphType, Paragraph, RenderDirection, Sparkline, Widget,
};

use crate::tui::history::{Point, Rate, SessionHistory, WINDOW_MS};
use crate::tui::theme::Theme;
use crate::units::human_bytes;

/// Rows of the smallest chart: its title, three rows of plot, the axis and
/// its labels.
pub const MIN_CHART_HEIGHT: u16 = 6;
/// Columns of the smallest chart: a label such as `1.0 GiB`, the axis and
/// room for a line. Charts side by side have a column between them.
pub const MIN_CHART_WIDTH: u16 = 22;
/// Below this many columns, figures take their short form.
const COMPACT_BELOW: u16 = 36;
/// Between the figures on a line of text.
const GAP: &str = "  ";

/// What a chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// CPU %, 100 being one busy core.
    Cpu,
    /// Memory in use, with the limit as a line.
    Memory,
    /// Network bytes a second, received and sent.
    Net,
    /// Block-device bytes a second, read and written.
    Block,
    /// Processes and threads, with the limit as a line.
    Pids,
}

impl Metric {
    /// The order in which metrics get a chart when not all fit.
    pub const ORDER: [Metric; 5] = [
        Metric::Cpu,
        Metric::Memory,
        Metric::Net,
        Metric::Block,
        Metric::Pids,
    ];
}

/// How an area is used, from [`StatsCharts::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// These metrics as charts, in a grid of this many columns (rows fill
    /// from the top; a short last row stretches), under `summary_lines`
    /// lines of the other figures.
    Charts {
        metrics: Vec<Metric>,
        columns: u16,
        summary_lines: u16,
    },
    /// CPU and memory as sparklines under their figures.
    Sparklines,
    /// Every figure as text.
    Text,
}

/// A session's charts: a widget drawn into the Stats pane's inner area.
/// Draws nothing when the history is empty (the pane says why instead).
pub struct StatsCharts<'a> {
    history: &'a SessionHistory,
    theme: &'a Theme,
    notes: Vec<String>,
}

impl<'a> StatsCharts<'a> {
    /// Charts of `history` in `theme`'s colours.
    pub fn new(history: &'a SessionHistory, theme: &'a Theme) -> Self {
        Self {
            history,
            theme,
            notes: Vec::new(),
        }
    }

    /// Adds words shown with the figures, e.g. the workspace's disk use.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// The metrics this history has data for, in [`Metric::ORDER`].
    fn available(&self) -> Vec<Metric> {
        Metric::ORDER
            .into_iter()
            .filter(|metric| match metric {
                Metric::Net => self.history.has_net(),
                Metric::Block => self.history.has_block(),
                _ => true,
            })
            .collect()
    }

    /// How an area of this size is used: the most charts that fit at their
    /// least size, at least two, else sparklines, else text.
    pub fn plan(&self, area: Rect) -> Plan {
        let available = self.available();
        let columns_max = (area.width + 1) / (MIN_CHART_WIDTH + 1);
        for count in (2..=available.len()).rev() {
            let (charted, rest) = available.split_at(count);
            let summary_lines = self.pack(rest, area.width).len() as u16;
            let rows_max = area.height.saturating_sub(summary_lines) / MIN_CHART_HEIGHT;
            if rows_max * columns_max >= count as u16 {
                // Stack as many as fit; wider charts read better.
                let rows = rows_max.min(count as u16);
                return Plan::Charts {
                    metrics: charted.to_vec(),
                    columns: (count as u16).div_ceil(rows),
                    summary_lines,
                };
            }
        }
        let rest: Vec<Metric> = available
            .into_iter()
            .filter(|metric| !matches!(metric, Metric::Cpu | Metric::Memory))
            .collect();
        // Two figure lines and at least a row for each sparkline.
        let summary = self.pack(&rest, area.width).len() as u16;
        if area.width >= 10 && area.height >= summary + 4 {
            Plan::Sparklines
        } else {
            Plan::Text
        }
    }

    /// The figures of `metrics` and the notes as lines of at most `width`
    /// columns, items kept whole where they fit.
    fn pack(&self, metrics: &[Metric], width: u16) -> Vec<Line<'static>> {
        let Some(latest) = self.history.latest_point() else {
            return Vec::new();
        };
        let items = metrics
            .iter()
            .map(|metric| self.figures(*metric, latest, width < COMPACT_BELOW))
            .chain(
                self.notes
                    .iter()
                    .map(|note| vec![Span::styled(note.clone(), self.theme.muted())]),
            );
        let mut lines: Vec<Vec<Span<'static>>> = Vec::new();
        let mut used = 0;
        for item in items {
            let item_width: usize = item.iter().map(Span::width).sum();
            match lines.last_mut() {
                Some(line) if used + GAP.len() + item_width <= usize::from(width) => {
                    line.push(Span::raw(GAP));
                    line.extend(item);
                    used += GAP.len() + item_width;
                }
                _ => {
                    lines.push(item);
                    used = item_width;
                }
            }
        }
        lines.into_iter().map(Line::from).collect()
    }

    /// A metric's current figures, coloured as its chart (a limit as its
    /// line); `compact` for narrow places.
    fn figures(&self, metric: Metric, latest: &Point, compact: bool) -> Vec<Span<'static>> {
        let theme = self.theme;
        let rate = |rate: Option<Rate>, pick: fn(&Rate) -> f32| {
            rate.map_or("-".to_string(), |r| human_rate(f64::from(pick(&r))))
        };
        match metric {
            Metric::Cpu => vec![Span::styled(
                format!("CPU {:.1}%", latest.cpu_percent),
                Style::new().fg(theme.cpu),
            )],
            Metric::Memory => {
                let mut spans = vec![Span::styled(
                    format!(
                        "{} {}",
                        if compact { "mem" } else { "memory" },
                        human_bytes(latest.memory_used)
                    ),
                    Style::new().fg(theme.memory),
                )];
                if latest.memory_limit > 0 {
                    let slash = if compact { "/" } else { " / " };
                    spans.push(Span::styled(
                        format!("{slash}{}", human_bytes(latest.memory_limit)),
                        Style::new().fg(theme.error),
                    ));
                    if !compact {
                        spans.push(Span::styled(
                            format!(
                                " ({:.0}%)",
                                latest.memory_used as f64 * 100.0 / latest.memory_limit as f64
                            ),
                            Style::new().fg(theme.memory),
                        ));
                    }
                }
                spans
            }
            Metric::Pids => {
                let mut spans = vec![Span::styled(
                    format!("pids {}", latest.pids),
                    Style::new().fg(theme.accent),
                )];
                if let Some(limit) = latest.pids_limit {
                    spans.push(Span::styled(
                        format!(" / {limit}"),
                        Style::new().fg(theme.error),
                    ));
                }
                spans
            }
            Metric::Net | Metric::Block => {
                let (name, read, written, value) = match (metric == Metric::Net, compact) {
                    (true, _) => ("net", "↓", "↑", latest.net),
                    (false, false) => ("block I/O", "read ", "write ", latest.block),
                    (false, true) => ("blk", "r ", "w ", latest.block),
                };
                vec![
                    Span::styled(format!("{name} "), theme.text()),
                    Span::styled(
                        format!("{read}{}", rate(value, |r| r.read)),
                        Style::new().fg(theme.ok),
                    ),
                    Span::styled(
                        format!(" {written}{}", rate(value, |r| r.written)),
                        Style::new().fg(theme.accent),
                    ),
                ]
            }
        }
    }

    fn render_charts(&self, area: Rect, buf: &mut Buffer, metrics: &[Metric], columns: u16) {
        let Some(latest) = self.history.latest_point() else {
            return;
        };
        let columns = usize::from(columns.max(1));
        let rows: Vec<&[Metric]> = metrics.chunks(columns).collect();
        let row_areas = Layout::vertical(vec![Constraint::Fill(1); rows.len()]).split(area);
        for (row, row_area) in rows.iter().zip(row_areas.iter()) {
            let cells = Layout::horizontal(vec![Constraint::Fill(1); row.len()])
                .spacing(1)
                .split(*row_area);
            for (metric, cell) in row.iter().zip(cells.iter()) {
                self.render_chart(*metric, latest, *cell, buf);
            }
        }
    }

    /// How far back the charts reach: the history's span rounded up to a
    /// whole minute, at least one and at most [`WINDOW_MS`], so a session
    /// just started fills its charts rather than a sliver at their right.
    fn window_ms(&self) -> i64 {
        const MINUTE_MS: i64 = 60_000;
        let span = match (self.history.points().next(), self.history.latest_point()) {
            (Some(first), Some(last)) => last.at_ms - first.at_ms,
            _ => 0,
        };
        ((span.max(1) + MINUTE_MS - 1) / MINUTE_MS * MINUTE_MS).clamp(MINUTE_MS, WINDOW_MS)
    }

    /// One chart: its figures as a title, then the plot over the window.
    fn render_chart(&self, metric: Metric, latest: &Point, area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let compact = area.width < COMPACT_BELOW;
        let block = Block::new().title(Line::from(self.figures(metric, latest, compact)));
        let inner = block.inner(area);
        block.render(area, buf);
        let points = || self.history.points();
        let mut series: Vec<Series> = Vec::new();
        let mut add = |value: &dyn Fn(&Point) -> Option<f64>, style: Style, kind: GraphType| {
            for segment in segments(points(), latest.at_ms, value) {
                series.push((segment, style, kind));
            }
        };
        let peak = |value: &dyn Fn(&Point) -> f64| points().map(value).fold(0.0, f64::max);
        let window_ms = self.window_ms();
        let window = (-(window_ms as f64) / 1000.0, 0.0);
        let limit_line = |limit: f64| vec![(window.0, limit), (window.1, limit)];
        let limit_style = Style::new().fg(theme.error);
        let (top, labels) = match metric {
            Metric::Cpu => {
                add(
                    &|p| Some(f64::from(p.cpu_percent)),
                    Style::new().fg(theme.cpu),
                    GraphType::Line,
                );
                // Whole cores: 100% is one busy core.
                let top = (peak(&|p| f64::from(p.cpu_percent)) / 100.0)
                    .ceil()
                    .max(1.0)
                    * 100.0;
                (top, (format!("{top:.0}%"), "0%".to_string()))
            }
            Metric::Memory => {
                add(
                    &|p| Some(p.memory_used as f64),
                    Style::new().fg(theme.memory),
                    GraphType::Area,
                );
                let limit = latest.memory_limit as f64;
                let top = peak(&|p| p.memory_used as f64).max(limit).max(1.0);
                if latest.memory_limit > 0 {
                    series.push((limit_line(limit), limit_style, GraphType::Line));
                }
                (top, (human_bytes(top as u64), "0".to_string()))
            }
            Metric::Pids => {
                add(
                    &|p| Some(p.pids as f64),
                    Style::new().fg(theme.accent),
                    GraphType::Line,
                );
                let peak = peak(&|p| p.pids as f64);
                let top = match latest.pids_limit {
                    Some(limit) => {
                        series.push((limit_line(limit as f64), limit_style, GraphType::Line));
                        peak.max(limit as f64)
                    }
                    None => nice_ceiling(peak * 1.25, 10.0),
                };
                (top, (format!("{top:.0}"), "0".to_string()))
            }
            Metric::Net | Metric::Block => {
                let pick = move |p: &Point| {
                    if metric == Metric::Net {
                        p.net
                    } else {
                        p.block
                    }
                };
                add(
                    &|p| pick(p).map(|r| f64::from(r.read)),
                    Style::new().fg(theme.ok),
                    GraphType::Line,
                );
                add(
                    &|p| pick(p).map(|r| f64::from(r.written)),
                    Style::new().fg(theme.accent),
                    GraphType::Line,
                );
                let peak = peak(&|p| pick(p).map_or(0.0, |r| f64::from(r.read.max(r.written))));
                // At least 1 KiB/s, so an idle sandbox draws a flat line at
                // the bottom rather than noise scaled up.
                let top = nice_ceiling(peak.max(1024.0), 1024.0);
                (top, (axis_rate(top), "0".to_string()))
            }
        };
        let datasets = series
            .iter()
            .map(|(data, style, kind)| {
                Dataset::default()
                    .data(data)
                    .marker(Marker::Braille)
                    .graph_type(*kind)
                    .style(*style)
            })
            .collect();
        let (top_label, bottom_label) = labels;
        let window_label = |ms: i64| format!("-{}", short_duration(ms));
        let x_labels = if inner.width >= 40 {
            vec![
                window_label(window_ms),
                window_label(window_ms / 2),
                "now".to_string(),
            ]
        } else {
            vec![window_label(window_ms), "now".to_string()]
        };
        Chart::new(datasets)
            .x_axis(
                Axis::default()
                    .bounds([window.0, window.1])
                    .labels(x_labels)
                    .style(theme.muted()),
            )
            .y_axis(
                Axis::default()
                    .bounds([0.0, top])
                    .labels([bottom_label, top_label])
                    .style(theme.muted()),
            )
            .render(inner, buf);
    }

    fn render_sparklines(&self, area: Rect, buf: &mut Buffer) {
        let Some(latest) = self.history.latest_point() else {
            return;
        };
        let rest: Vec<Metric> = self
            .available()
            .into_iter()
            .filter(|metric| !matches!(metric, Metric::Cpu | Metric::Memory))
            .collect();
        let summary = self.pack(&rest, area.width);
        let [summary_area, cpu_label, cpu_area, memory_label, memory_area] = Layout::vertical([
            Constraint::Length(summary.len() as u16),
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(1),
            Constraint::Fill(1),
        ])
        .areas(area);
        Paragraph::new(summary).render(summary_area, buf);
        // Newest at the right edge: the data goes in newest first.
        let width = usize::from(area.width);
        let newest: Vec<&Point> = self.history.points().rev().take(width).collect();
        let cpu: Vec<u64> = newest
            .iter()
            .map(|p| (p.cpu_percent * 10.0).round() as u64)
            .collect();
        let cpu_max = cpu.iter().copied().max().unwrap_or(0).max(1000);
        let memory: Vec<u64> = newest.iter().map(|p| p.memory_used).collect();
        let memory_max = memory
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(latest.memory_limit)
            .max(1);
        for (label, spark, data, max, metric, color) in [
            (
                cpu_label,
                cpu_area,
                &cpu,
                cpu_max,
                Metric::Cpu,
                self.theme.cpu,
            ),
            (
                memory_label,
                memory_area,
                &memory,
                memory_max,
                Metric::Memory,
                self.theme.memory,
            ),
        ] {
            Line::from(self.figures(metric, latest, area.width < COMPACT_BELOW)).render(label, buf);
            Sparkline::default()
                .data(data)
                .max(max)
                .direction(RenderDirection::RightToLeft)
                .style(Style::new().fg(color))
                .render(spark, buf);
        }
    }
}

impl Widget for StatsCharts<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() || self.history.is_empty() {
            return;
        }
        match self.plan(area) {
            Plan::Charts {
                metrics,
                columns,
                summary_lines,
            } => {
                let rest: Vec<Metric> = self
                    .available()
                    .into_iter()
                    .filter(|metric| !metrics.contains(metric))
                    .collect();
                let [summary_area, charts_area] =
                    Layout::vertical([Constraint::Length(summary_lines), Constraint::Fill(1)])
                        .areas(area);
                Paragraph::new(self.pack(&rest, area.width)).render(summary_area, buf);
                self.render_charts(charts_area, buf, &metrics, columns);
            }
            Plan::Sparklines => self.render_sparklines(area, buf),
            Plan::Text => {
                let all = self.available();
                Paragraph::new(self.pack(&all, area.width)).render(area, buf);
            }
        }
    }
}

/// One line (or filled area) of a chart: its points, colour and kind.
type Series = (Vec<(f64, f64)>, Style, GraphType);

/// The runs of points where `value` is known and the samples are joined,
/// as chart coordinates: seconds before `latest_ms`, and the value.
fn segments<'p>(
    points: impl Iterator<Item = &'p Point>,
    latest_ms: i64,
    value: &dyn Fn(&Point) -> Option<f64>,
) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut open = false;
    for point in points {
        let Some(y) = value(point) else {
            open = false;
            continue;
        };
        let x = (point.at_ms - latest_ms) as f64 / 1000.0;
        match runs.last_mut() {
            Some(run) if open && !point.starts_segment => run.push((x, y)),
            _ => runs.push(vec![(x, y)]),
        }
        open = true;
    }
    runs
}

/// The smallest of 1, 2 or 5 times a power of `base`, or `base` times a
/// power of it, at or above `value`: a round top for an axis. `base` is 10
/// for counts and 1024 for bytes, so bytes read as `2.0 MiB`, not `2.1 MiB`.
pub fn nice_ceiling(value: f64, base: f64) -> f64 {
    if !value.is_finite() || value <= 1.0 {
        return 1.0;
    }
    let mut unit = 1.0;
    while unit * base < value {
        unit *= base;
    }
    [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, base]
        .into_iter()
        .map(|step| step * unit)
        .find(|candidate| *candidate >= value)
        .unwrap_or(unit * base)
}

/// Bytes a second: `1.5 MiB/s`, `0 B/s`.
pub fn human_rate(bytes_per_second: f64) -> String {
    format!(
        "{}/s",
        human_bytes(bytes_per_second.max(0.0).round() as u64)
    )
}

/// A round rate for an axis, short so it fits beside a narrow chart:
/// `512B/s`, `50K/s`, `2M/s`, `1.5G/s` (K is 1024).
pub fn axis_rate(bytes_per_second: f64) -> String {
    let mut value = bytes_per_second.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit < 3 {
        value /= 1024.0;
        unit += 1;
    }
    let suffix = ["B", "K", "M", "G"][unit];
    if value.fract() == 0.0 {
        format!("{value:.0}{suffix}/s")
    } else {
        format!("{value:.1}{suffix}/s")
    }
}

/// `5m`, `2m30s`, `45s`.
fn short_duration(ms: i64) -> String {
    let seconds = ms / 1000;
    match (seconds / 60, seconds % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::stats::{ByteCounters, StatsSample};
    use crate::tui::theme::ThemeSet;

    fn history(seconds: i64, io: bool) -> SessionHistory {
        let mut history = SessionHistory::new();
        for s in 0..seconds {
            history.push(StatsSample {
                at_ms: s * 1000,
                cpu_percent: 50.0,
                memory_used: 100 << 20,
                memory_limit: 1 << 30,
                pids: 3,
                pids_limit: Some(256),
                net: io.then_some(ByteCounters {
                    read: s as u64 * 1000,
                    written: 0,
                }),
                block: io.then_some(ByteCounters::default()),
            });
        }
        history
    }

    fn theme() -> Theme {
        ThemeSet::builtin().themes.remove(0)
    }

    #[test]
    fn plans_fill_the_area_and_degrade() {
        let theme = theme();
        let plain = history(60, false);
        let charts = StatsCharts::new(&plain, &theme);
        // Room for everything there is, stacked.
        assert_eq!(
            charts.plan(Rect::new(0, 0, 80, 30)),
            Plan::Charts {
                metrics: vec![Metric::Cpu, Metric::Memory, Metric::Pids],
                columns: 1,
                summary_lines: 0
            }
        );
        // The default layout's pane: two side by side, pids as text.
        assert_eq!(
            charts.plan(Rect::new(0, 0, 46, 10)),
            Plan::Charts {
                metrics: vec![Metric::Cpu, Metric::Memory],
                columns: 2,
                summary_lines: 1
            }
        );
        assert_eq!(charts.plan(Rect::new(0, 0, 30, 8)), Plan::Sparklines);
        assert_eq!(charts.plan(Rect::new(0, 0, 43, 10)), Plan::Sparklines);
        assert_eq!(charts.plan(Rect::new(0, 0, 30, 3)), Plan::Text);
        assert_eq!(charts.plan(Rect::new(0, 0, 5, 40)), Plan::Text);
        // I/O charts only where the engine reported counters.
        let io = history(60, true);
        let Plan::Charts { metrics, .. } =
            StatsCharts::new(&io, &theme).plan(Rect::new(0, 0, 120, 40))
        else {
            panic!("a big area gets charts");
        };
        assert_eq!(metrics, Metric::ORDER);
    }

    #[test]
    fn segments_break_at_gaps_and_unknown_values() {
        let mut history = SessionHistory::new();
        for at in [0, 1000, 2000, 60_000, 61_000] {
            history.push(StatsSample {
                at_ms: at,
                cpu_percent: 1.0,
                net: Some(ByteCounters::default()),
                ..Default::default()
            });
        }
        let cpu = segments(history.points(), 61_000, &|p| {
            Some(f64::from(p.cpu_percent))
        });
        assert_eq!(
            cpu,
            [
                vec![(-61.0, 1.0), (-60.0, 1.0), (-59.0, 1.0)],
                vec![(-1.0, 1.0), (0.0, 1.0)]
            ]
        );
        // Rates are unknown at each segment's first point.
        let net = segments(history.points(), 61_000, &|p| {
            p.net.map(|r| f64::from(r.read))
        });
        assert_eq!(net, [vec![(-60.0, 0.0), (-59.0, 0.0)], vec![(0.0, 0.0)]]);
    }

    #[test]
    fn the_window_grows_by_minutes_up_to_five() {
        let theme = theme();
        for (seconds, minutes) in [(1, 1), (20, 1), (61, 1), (62, 2), (150, 3), (400, 5)] {
            let history = history(seconds, false);
            // `seconds` samples span `seconds - 1` seconds.
            assert_eq!(
                StatsCharts::new(&history, &theme).window_ms(),
                minutes * 60_000,
                "{seconds} s"
            );
        }
    }

    #[test]
    fn nice_ceilings_and_labels() {
        assert_eq!(nice_ceiling(0.0, 10.0), 1.0);
        assert_eq!(nice_ceiling(3.0, 10.0), 5.0);
        assert_eq!(nice_ceiling(10.0, 10.0), 10.0);
        assert_eq!(nice_ceiling(11.0, 10.0), 20.0);
        assert_eq!(nice_ceiling(4.0, 10.0), 5.0);
        assert_eq!(nice_ceiling(f64::NAN, 10.0), 1.0);
        assert_eq!(nice_ceiling(1500.0, 1024.0), 2048.0);
        assert_eq!(nice_ceiling(1024.0, 1024.0), 1024.0);
        assert_eq!(nice_ceiling(3.0 * 1048576.0, 1024.0), 5.0 * 1048576.0);
        assert_eq!(nice_ceiling(600.0 * 1024.0, 1024.0), 1048576.0);
        assert_eq!(human_rate(1536.0), "1.5 KiB/s");
        assert_eq!(axis_rate(512.0), "512B/s");
        assert_eq!(axis_rate(50.0 * 1024.0), "50K/s");
        assert_eq!(axis_rate(2.0 * 1048576.0), "2M/s");
        assert_eq!(axis_rate(1.5 * 1073741824.0), "1.5G/s");
        assert_eq!(human_rate(-3.0), "0 B/s");
        assert_eq!(short_duration(WINDOW_MS), "5m");
        assert_eq!(short_duration(150_000), "2m30s");
        assert_eq!(short_duration(45_000), "45s");
    }

    #[test]
    fn any_size_renders_without_panicking() {
        let theme = theme();
        let io = history(400, true);
        let empty = SessionHistory::new();
        for (w, h) in [
            (0, 0),
            (1, 1),
            (3, 2),
            (10, 4),
            (23, 6),
            (24, 6),
            (48, 13),
            (200, 60),
        ] {
            let area = Rect::new(0, 0, w, h);
            let mut buf = Buffer::empty(area);
            StatsCharts::new(&io, &theme)
                .note("disk 1 MiB")
                .render(area, &mut buf);
            StatsCharts::new(&empty, &theme).render(area, &mut buf);
        }
    }
}
