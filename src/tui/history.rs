//! Each session's recent resource use, as time series for the Stats charts:
//! CPU %, memory against its limit, pids against theirs, and network and
//! block I/O as rates (bytes a second) worked out from the engine's
//! cumulative counters.
//!
//! Bounded twice: points older than [`WINDOW_MS`] before the newest go, and
//! at most [`CAPACITY`] are kept, so a session costs at most
//! `CAPACITY * size_of::<Point>()` (about 24 KiB) however long it runs.

use std::collections::VecDeque;

use crate::engine::stats::{ByteCounters, StatsSample};

/// How far back the charts reach: five minutes, in milliseconds.
pub const WINDOW_MS: i64 = 5 * 60 * 1000;
/// Points kept per session: the window at the engine's one sample a second.
pub const CAPACITY: usize = (WINDOW_MS / 1000) as usize;
/// Samples further apart than this (milliseconds) are not joined: the line
/// breaks there and no rate spans the gap. The engine sends one a second;
/// a longer silence means the stream stopped (a stopped or restarted
/// sandbox, an engine that went away).
pub const MAX_GAP_MS: i64 = 5_000;

/// Bytes a second through a pair of counters over one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Received (network) or read (block devices), bytes a second.
    pub read: f32,
    /// Sent (network) or written (block devices), bytes a second.
    pub written: f32,
}

/// One point of the series: a sample, with its I/O counters turned into
/// rates over the interval since the sample before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// When the sample arrived, Unix milliseconds.
    pub at_ms: i64,
    /// Share of one CPU: two busy cores read 200.
    pub cpu_percent: f32,
    /// Bytes in use.
    pub memory_used: u64,
    /// Bytes allowed.
    pub memory_limit: u64,
    /// Processes and threads.
    pub pids: u64,
    /// Most processes and threads allowed; `None` when unlimited or unknown.
    pub pids_limit: Option<u64>,
    /// `None` when the engine reports no network counters, at the first
    /// point of a segment, and where the counters went backwards (a restart).
    pub net: Option<Rate>,
    /// As `net`, for block devices.
    pub block: Option<Rate>,
    /// The first point, or the first after a gap: not joined to the one
    /// before it.
    pub starts_segment: bool,
}

/// Bytes a second from a counter that went from `previous` to `current`
/// over `elapsed_ms`; `None` when there is no honest answer: no time
/// passed (or it ran backwards), the interval is a gap longer than
/// [`MAX_GAP_MS`], or the counter went down (it restarted from zero, so the
/// bytes moved in between are unknown).
pub fn rate(previous: u64, current: u64, elapsed_ms: i64) -> Option<f64> {
    if elapsed_ms <= 0 || elapsed_ms > MAX_GAP_MS || current < previous {
        return None;
    }
    Some((current - previous) as f64 * 1000.0 / elapsed_ms as f64)
}

/// Both rates of a pair of counters; `None` when either side is missing or
/// either [`rate`] has no answer.
fn pair_rate(
    previous: Option<ByteCounters>,
    current: Option<ByteCounters>,
    elapsed_ms: i64,
) -> Option<Rate> {
    let (previous, current) = (previous?, current?);
    Some(Rate {
        read: rate(previous.read, current.read, elapsed_ms)? as f32,
        written: rate(previous.written, current.written, elapsed_ms)? as f32,
    })
}

/// One session's series. Feed it the samples in the order they arrive.
#[derive(Debug, Clone, Default)]
pub struct SessionHistory {
    points: VecDeque<Point>,
    /// The newest sample as it came, for its counters and for the tables.
    last: Option<StatsSample>,
}

impl SessionHistory {
    /// An empty series.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample. A sample no newer than the last one is dropped (a
    /// duplicate); one older than the last by more than [`MAX_GAP_MS`]
    /// means the clock was set back, and starts the series afresh, since
    /// points from "the future" would hide every new one.
    pub fn push(&mut self, sample: StatsSample) {
        let elapsed = self.last.map(|last| sample.at_ms - last.at_ms);
        match elapsed {
            Some(elapsed) if elapsed < -MAX_GAP_MS => self.points.clear(),
            Some(elapsed) if elapsed <= 0 => return,
            _ => {}
        }
        let joined = self
            .last
            .filter(|_| !self.points.is_empty())
            .zip(elapsed)
            .filter(|(_, elapsed)| (1..=MAX_GAP_MS).contains(elapsed));
        let (net, block) = match joined {
            Some((last, elapsed)) => (
                pair_rate(last.net, sample.net, elapsed),
                pair_rate(last.block, sample.block, elapsed),
            ),
            None => (None, None),
        };
        self.points.push_back(Point {
            at_ms: sample.at_ms,
            cpu_percent: sample.cpu_percent as f32,
            memory_used: sample.memory_used,
            memory_limit: sample.memory_limit,
            pids: sample.pids,
            pids_limit: sample.pids_limit,
            net,
            block,
            starts_segment: joined.is_none(),
        });
        self.last = Some(sample);
        let oldest = sample.at_ms.saturating_sub(WINDOW_MS);
        while self.points.len() > CAPACITY
            || self
                .points
                .front()
                .is_some_and(|point| point.at_ms < oldest)
        {
            self.points.pop_front();
        }
    }

    /// The newest sample as the engine sent it.
    pub fn latest(&self) -> Option<&StatsSample> {
        self.last.as_ref()
    }

    /// The newest point, with its rates.
    pub fn latest_point(&self) -> Option<&Point> {
        self.points.back()
    }

    /// The points, oldest first.
    pub fn points(&self) -> impl DoubleEndedIterator<Item = &Point> + ExactSizeIterator + Clone {
        self.points.iter()
    }

    /// Points kept, at most [`CAPACITY`].
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// No sample yet.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Whether the engine reported network counters in the window.
    pub fn has_net(&self) -> bool {
        self.points.iter().any(|point| point.net.is_some())
    }

    /// Whether the engine reported block I/O counters in the window.
    pub fn has_block(&self) -> bool {
        self.points.iter().any(|point| point.block.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: i64) -> StatsSample {
        StatsSample {
            at_ms,
            cpu_percent: 12.5,
            memory_used: 100,
            memory_limit: 1000,
            pids: 3,
            pids_limit: Some(64),
            ..Default::default()
        }
    }

    fn with_io(at_ms: i64, net: (u64, u64), block: (u64, u64)) -> StatsSample {
        StatsSample {
            net: Some(ByteCounters {
                read: net.0,
                written: net.1,
            }),
            block: Some(ByteCounters {
                read: block.0,
                written: block.1,
            }),
            ..sample(at_ms)
        }
    }

    #[test]
    fn rate_is_bytes_a_second() {
        assert_eq!(rate(1000, 3000, 1000), Some(2000.0));
        assert_eq!(rate(0, 1000, 500), Some(2000.0));
        assert_eq!(rate(7, 7, 1000), Some(0.0));
        assert_eq!(rate(0, 5000, MAX_GAP_MS), Some(1000.0));
        // No time, time backwards, a gap, a reset: no answer.
        assert_eq!(rate(0, 1000, 0), None);
        assert_eq!(rate(0, 1000, -1000), None);
        assert_eq!(rate(0, 1000, MAX_GAP_MS + 1), None);
        assert_eq!(rate(5000, 100, 1000), None);
    }

    #[test]
    fn rates_come_from_counters_between_samples() {
        let mut history = SessionHistory::new();
        history.push(with_io(10_000, (0, 0), (0, 0)));
        history.push(with_io(11_000, (2048, 512), (4096, 0)));
        history.push(with_io(13_000, (4096, 512), (4096, 1000)));
        let points: Vec<&Point> = history.points().collect();
        // The first point has nothing to compare with.
        assert_eq!(points[0].net, None);
        assert!(points[0].starts_segment);
        assert_eq!(
            points[1].net,
            Some(Rate {
                read: 2048.0,
                written: 512.0
            })
        );
        assert_eq!(
            points[1].block,
            Some(Rate {
                read: 4096.0,
                written: 0.0
            })
        );
        // Over two seconds.
        assert_eq!(
            points[2].net,
            Some(Rate {
                read: 1024.0,
                written: 0.0
            })
        );
        assert_eq!(
            points[2].block,
            Some(Rate {
                read: 0.0,
                written: 500.0
            })
        );
        assert!(!points[2].starts_segment);
        assert!(history.has_net() && history.has_block());
        assert_eq!(history.latest().unwrap().at_ms, 13_000);
    }

    #[test]
    fn a_counter_reset_gives_no_rate_then_rates_resume() {
        let mut history = SessionHistory::new();
        history.push(with_io(0, (5000, 5000), (0, 0)));
        // A restart within the gap: counters start again from zero.
        history.push(with_io(1000, (100, 100), (0, 0)));
        history.push(with_io(2000, (300, 100), (0, 0)));
        let net: Vec<Option<Rate>> = history.points().map(|p| p.net).collect();
        assert_eq!(
            net,
            [
                None,
                None,
                Some(Rate {
                    read: 200.0,
                    written: 0.0
                })
            ]
        );
        // Only the network pair went down; block I/O kept its rate.
        assert!(history.points().nth(1).unwrap().block.is_some());
    }

    #[test]
    fn a_gap_breaks_the_line_and_spans_no_rate() {
        let mut history = SessionHistory::new();
        history.push(with_io(0, (0, 0), (0, 0)));
        history.push(with_io(1000, (1000, 0), (0, 0)));
        history.push(with_io(1000 + MAX_GAP_MS + 1, (9000, 0), (0, 0)));
        history.push(with_io(2000 + MAX_GAP_MS + 1, (10_000, 0), (0, 0)));
        let starts: Vec<bool> = history.points().map(|p| p.starts_segment).collect();
        assert_eq!(starts, [true, false, true, false]);
        let reads: Vec<Option<f32>> = history.points().map(|p| p.net.map(|r| r.read)).collect();
        assert_eq!(reads, [None, Some(1000.0), None, Some(1000.0)]);
    }

    #[test]
    fn missing_counters_give_no_rate() {
        let mut history = SessionHistory::new();
        history.push(sample(0));
        history.push(sample(1000));
        // Counters appear (the engine began to report them): no rate yet.
        history.push(with_io(2000, (10, 10), (10, 10)));
        history.push(with_io(3000, (20, 10), (10, 10)));
        let net: Vec<bool> = history.points().map(|p| p.net.is_some()).collect();
        assert_eq!(net, [false, false, false, true]);
        let mut quiet = SessionHistory::new();
        quiet.push(sample(0));
        quiet.push(sample(1000));
        assert!(!quiet.has_net() && !quiet.has_block());
    }

    #[test]
    fn duplicates_are_dropped_and_a_clock_set_back_starts_afresh() {
        let mut history = SessionHistory::new();
        history.push(sample(100_000));
        history.push(sample(101_000));
        history.push(sample(101_000));
        // A little backwards (two streams racing): dropped too.
        history.push(sample(100_500));
        assert_eq!(history.len(), 2);
        // An hour back: the old points would sit in the future.
        history.push(sample(100_000 - 3_600_000));
        assert_eq!(history.len(), 1);
        assert!(history.latest_point().unwrap().starts_segment);
        assert_eq!(history.latest().unwrap().at_ms, 100_000 - 3_600_000);
    }

    #[test]
    fn the_window_bounds_age_and_count() {
        let mut history = SessionHistory::new();
        // Twice the window at one a second.
        for second in 0..(2 * CAPACITY as i64) {
            history.push(sample(second * 1000));
        }
        assert_eq!(history.len(), CAPACITY);
        let first = history.points().next().unwrap().at_ms;
        let last = history.latest_point().unwrap().at_ms;
        assert!(last - first <= WINDOW_MS, "{first}..{last}");
        // Samples ten times a second: the count bound holds too.
        let mut fast = SessionHistory::new();
        for tenth in 0..(3 * CAPACITY as i64) {
            fast.push(sample(tenth * 100));
        }
        assert_eq!(fast.len(), CAPACITY);
        // A long pause: everything before it ages out at once.
        history.push(sample(last + WINDOW_MS + 1000));
        assert_eq!(history.len(), 1);
    }

    #[test]
    fn a_session_stays_small() {
        // The bound the module comment promises.
        assert!(CAPACITY * std::mem::size_of::<Point>() <= 24 << 10);
    }
}
