//! Live resource figures of a sandbox: CPU % by the docker stats formula,
//! memory without the reclaimable file cache, pids, and a short history.

use std::collections::VecDeque;

use bollard::models::{ContainerCpuStats, ContainerMemoryStats, ContainerStatsResponse};
use bollard::query_parameters::StatsOptionsBuilder;
use futures_util::{Stream, StreamExt as _};

use super::Engine;

/// One sample of a sandbox's resource use.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StatsSample {
    pub cpu_percent: f64,
    pub memory_used: u64,
    pub memory_limit: u64,
    pub pids: u64,
}

impl StatsSample {
    pub fn memory_percent(&self) -> f64 {
        if self.memory_limit == 0 {
            0.0
        } else {
            self.memory_used as f64 * 100.0 / self.memory_limit as f64
        }
    }
}

/// CPU % as `docker stats` computes it: the container's share of the host's
/// CPU time since the previous sample, scaled by the online CPUs, so one busy
/// core reads 100%.
pub fn cpu_percent(cpu: &ContainerCpuStats, previous: &ContainerCpuStats) -> f64 {
    let total = |stats: &ContainerCpuStats| {
        stats
            .cpu_usage
            .as_ref()
            .and_then(|usage| usage.total_usage)
            .unwrap_or(0)
    };
    let cpu_delta = total(cpu).saturating_sub(total(previous)) as f64;
    let system_delta = cpu
        .system_cpu_usage
        .unwrap_or(0)
        .saturating_sub(previous.system_cpu_usage.unwrap_or(0)) as f64;
    let online_cpus = match cpu.online_cpus {
        Some(online) if online > 0 => f64::from(online),
        _ => cpu
            .cpu_usage
            .as_ref()
            .and_then(|usage| usage.percpu_usage.as_ref())
            .map_or(0.0, |per_cpu| per_cpu.len() as f64),
    };
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * online_cpus * 100.0
    } else {
        0.0
    }
}

/// Memory in use, without the inactive file cache the kernel can reclaim —
/// the figure `docker stats` shows. The key is `total_inactive_file` on
/// cgroup v1 and `inactive_file` on v2.
pub fn memory_used(memory: &ContainerMemoryStats) -> u64 {
    let usage = memory.usage.unwrap_or(0);
    let inactive = memory.stats.as_ref().and_then(|stats| {
        stats
            .get("total_inactive_file")
            .or_else(|| stats.get("inactive_file"))
            .copied()
    });
    match inactive {
        Some(inactive) if inactive < usage => usage - inactive,
        _ => usage,
    }
}

/// A sample from one stats response; `None` for a stopped container.
pub fn sample(stats: &ContainerStatsResponse) -> Option<StatsSample> {
    let cpu = stats.cpu_stats.as_ref()?;
    let memory = stats.memory_stats.as_ref()?;
    memory.usage?;
    Some(StatsSample {
        cpu_percent: stats
            .precpu_stats
            .as_ref()
            .map_or(0.0, |previous| cpu_percent(cpu, previous)),
        memory_used: memory_used(memory),
        memory_limit: memory.limit.unwrap_or(0),
        pids: stats
            .pids_stats
            .as_ref()
            .and_then(|p| p.current)
            .unwrap_or(0),
    })
}

/// The most recent samples, oldest first, for charts.
#[derive(Debug, Clone)]
pub struct StatsHistory {
    samples: VecDeque<StatsSample>,
    capacity: usize,
}

impl StatsHistory {
    pub fn new(capacity: usize) -> Self {
        Self {
            samples: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&mut self, sample: StatsSample) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    pub fn latest(&self) -> Option<&StatsSample> {
        self.samples.back()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &StatsSample> {
        self.samples.iter()
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

impl Engine {
    /// A live stream of samples, about one a second, from one long-lived
    /// stats request. The first response has no previous CPU figure, so it is
    /// skipped: every sample yielded carries a real CPU %.
    pub fn stats_stream(
        &self,
        container: &str,
    ) -> impl Stream<Item = anyhow::Result<StatsSample>> + Send + 'static {
        let options = StatsOptionsBuilder::new()
            .stream(true)
            .one_shot(false)
            .build();
        let container = container.to_string();
        self.docker()
            .stats(&container, Some(options))
            .skip(1)
            .map(move |item| match item {
                Ok(stats) => {
                    sample(&stats).ok_or_else(|| anyhow::anyhow!("{container} is not running"))
                }
                Err(err) => {
                    Err(anyhow::Error::new(err)
                        .context(format!("stats stream of {container} failed")))
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::{ContainerCpuUsage, ContainerPidsStats};

    use super::*;

    fn cpu(total: u64, system: u64, online: Option<u32>, per_cpu: usize) -> ContainerCpuStats {
        ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage {
                total_usage: Some(total),
                percpu_usage: Some(vec![0; per_cpu]),
                ..Default::default()
            }),
            system_cpu_usage: Some(system),
            online_cpus: online,
            ..Default::default()
        }
    }

    #[test]
    fn one_busy_core_of_two_reads_100_percent() {
        // 2 CPUs: the host's system time advances 2s per wall second.
        let before = cpu(1_000_000_000, 10_000_000_000, Some(2), 2);
        let after = cpu(2_000_000_000, 12_000_000_000, Some(2), 2);
        assert!((cpu_percent(&after, &before) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn half_a_core_reads_50_percent() {
        let before = cpu(0, 0, Some(4), 4);
        let after = cpu(500_000_000, 4_000_000_000, Some(4), 4);
        assert!((cpu_percent(&after, &before) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn online_cpus_fall_back_to_per_cpu_count() {
        let before = cpu(0, 0, None, 2);
        let after = cpu(1_000_000_000, 2_000_000_000, None, 2);
        assert!((cpu_percent(&after, &before) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn no_progress_reads_zero() {
        let same = cpu(5, 5, Some(2), 2);
        assert_eq!(cpu_percent(&same, &same), 0.0);
        // A counter reset (restart) must not underflow.
        let before = cpu(10, 10, Some(2), 2);
        let after = cpu(5, 20, Some(2), 2);
        assert_eq!(cpu_percent(&after, &before), 0.0);
    }

    fn memory(usage: u64, key: &str, inactive: u64) -> ContainerMemoryStats {
        ContainerMemoryStats {
            usage: Some(usage),
            limit: Some(1 << 30),
            stats: Some(HashMap::from([(key.to_string(), inactive)])),
            ..Default::default()
        }
    }

    #[test]
    fn memory_excludes_inactive_file_cache_on_v1_and_v2() {
        assert_eq!(
            memory_used(&memory(100 << 20, "total_inactive_file", 30 << 20)),
            70 << 20
        );
        assert_eq!(
            memory_used(&memory(100 << 20, "inactive_file", 40 << 20)),
            60 << 20
        );
        // Cache larger than usage (racy counters): fall back to usage.
        assert_eq!(memory_used(&memory(10, "inactive_file", 20)), 10);
        assert_eq!(memory_used(&memory(10, "other", 5)), 10);
    }

    #[test]
    fn sample_combines_the_figures() {
        let stats = ContainerStatsResponse {
            cpu_stats: Some(cpu(2_000_000_000, 12_000_000_000, Some(2), 2)),
            precpu_stats: Some(cpu(1_500_000_000, 10_000_000_000, Some(2), 2)),
            memory_stats: Some(memory(300 << 20, "total_inactive_file", 100 << 20)),
            pids_stats: Some(ContainerPidsStats {
                current: Some(7),
                limit: Some(256),
            }),
            ..Default::default()
        };
        let sample = sample(&stats).unwrap();
        assert!((sample.cpu_percent - 50.0).abs() < 1e-9);
        assert_eq!(sample.memory_used, 200 << 20);
        assert_eq!(sample.memory_limit, 1 << 30);
        assert_eq!(sample.pids, 7);
        assert!((sample.memory_percent() - 200.0 / 1024.0 * 100.0).abs() < 1e-9);
        let stopped = ContainerStatsResponse::default();
        assert_eq!(super::sample(&stopped), None);
    }

    #[test]
    fn history_keeps_the_latest() {
        let mut history = StatsHistory::new(3);
        for pids in 0..5 {
            history.push(StatsSample {
                cpu_percent: 0.0,
                memory_used: 0,
                memory_limit: 0,
                pids,
            });
        }
        let pids: Vec<u64> = history.iter().map(|s| s.pids).collect();
        assert_eq!(pids, [2, 3, 4]);
        assert_eq!(history.latest().unwrap().pids, 4);
    }
}
