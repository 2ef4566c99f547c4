//! Live resource figures of a sandbox: CPU % by the docker stats formula,
//! memory without the reclaimable file cache, pids, the network and block
//! I/O byte counters where the engine reports them. The dashboard keeps
//! their history (`tui::history`).

use std::collections::HashMap;

use bollard::models::{
    ContainerBlkioStats, ContainerCpuStats, ContainerMemoryStats, ContainerNetworkStats,
    ContainerStatsResponse,
};
use bollard::query_parameters::StatsOptionsBuilder;
use futures_util::{Stream, StreamExt as _};

use super::Engine;

/// One sample of a sandbox's resource use.
///
/// Serialised (`sandpit stats --json`) with these field names; `net` and
/// `block` are `null` when the engine reports no such counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StatsSample {
    /// When the sample reached sandpit, Unix milliseconds (0 when not set):
    /// rates are counter differences over these times.
    pub at_ms: i64,
    /// Share of one CPU, so two busy cores read 200.
    pub cpu_percent: f64,
    /// Bytes in use, without the reclaimable file cache.
    pub memory_used: u64,
    /// Bytes the sandbox may use (the host's memory when unlimited).
    pub memory_limit: u64,
    /// Processes and threads.
    pub pids: u64,
    /// Most processes and threads allowed; `None` when unlimited or unknown.
    pub pids_limit: Option<u64>,
    /// Network bytes since the sandbox started, summed over its interfaces:
    /// `None` without networking (sandboxes default to none).
    pub net: Option<ByteCounters>,
    /// Block-device bytes since the sandbox started: `None` when the engine
    /// reports none (gVisor, or cgroup v1 with no throttle data).
    pub block: Option<ByteCounters>,
}

/// A pair of cumulative byte counters: received and sent for a network,
/// read and written for block devices. They only grow while the sandbox
/// runs, and start again from zero when it restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ByteCounters {
    /// Bytes received (network) or read (block devices).
    pub read: u64,
    /// Bytes sent (network) or written (block devices).
    pub written: u64,
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

/// Network bytes summed over every interface, as `docker stats` shows
/// them; `None` when the engine lists no interface (network `none`).
pub fn net_counters(
    networks: Option<&HashMap<String, ContainerNetworkStats>>,
) -> Option<ByteCounters> {
    let networks = networks.filter(|networks| !networks.is_empty())?;
    Some(
        networks
            .values()
            .fold(ByteCounters::default(), |sum, net| ByteCounters {
                read: sum.read.saturating_add(net.rx_bytes.unwrap_or(0)),
                written: sum.written.saturating_add(net.tx_bytes.unwrap_or(0)),
            }),
    )
}

/// Block-device bytes read and written, summed over devices as `docker
/// stats` does: entries whose operation starts with `r`/`R` are reads,
/// `w`/`W` writes (cgroup v1 writes `Read`, v2 `read`; `Total` and the
/// others are skipped). `None` when the engine lists no entry: it tracks
/// nothing for this sandbox, which is not the same as zero bytes.
pub fn block_counters(blkio: Option<&ContainerBlkioStats>) -> Option<ByteCounters> {
    let entries = blkio?
        .io_service_bytes_recursive
        .as_ref()
        .filter(|entries| !entries.is_empty())?;
    Some(entries.iter().fold(ByteCounters::default(), |sum, entry| {
        let value = entry.value.unwrap_or(0);
        match entry.op.as_deref().and_then(|op| op.chars().next()) {
            Some('r' | 'R') => ByteCounters {
                read: sum.read.saturating_add(value),
                ..sum
            },
            Some('w' | 'W') => ByteCounters {
                written: sum.written.saturating_add(value),
                ..sum
            },
            _ => sum,
        }
    }))
}

/// A sample from one stats response received at `at_ms` (Unix
/// milliseconds); `None` for a stopped container.
pub fn sample(stats: &ContainerStatsResponse, at_ms: i64) -> Option<StatsSample> {
    let cpu = stats.cpu_stats.as_ref()?;
    let memory = stats.memory_stats.as_ref()?;
    memory.usage?;
    let pids = stats.pids_stats.as_ref();
    Some(StatsSample {
        at_ms,
        cpu_percent: stats
            .precpu_stats
            .as_ref()
            .map_or(0.0, |previous| cpu_percent(cpu, previous)),
        memory_used: memory_used(memory),
        memory_limit: memory.limit.unwrap_or(0),
        pids: pids.and_then(|p| p.current).unwrap_or(0),
        // The engine says 0 (cgroup v1) or u64::MAX (v2's `max`) for none.
        pids_limit: pids
            .and_then(|p| p.limit)
            .filter(|limit| *limit != 0 && *limit != u64::MAX),
        net: net_counters(stats.networks.as_ref()),
        block: block_counters(stats.blkio_stats.as_ref()),
    })
}

impl Engine {
    /// A live stream of samples, about one a second, from one long-lived
    /// stats request, each stamped with the time it arrived. The first
    /// response has no previous CPU figure, so it is skipped: every sample
    /// yielded carries a real CPU %.
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
                Ok(stats) => sample(&stats, now_ms())
                    .ok_or_else(|| anyhow::anyhow!("{container} is not running")),
                Err(err) => {
                    Err(anyhow::Error::new(err)
                        .context(format!("stats stream of {container} failed")))
                }
            })
    }
}

/// Now, Unix milliseconds; 0 for a clock before 1970.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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
        let sample = sample(&stats, 1234).unwrap();
        assert_eq!(sample.at_ms, 1234);
        assert_eq!(sample.pids_limit, Some(256));
        // No networking, no block entries: not reported, rather than zero.
        assert_eq!((sample.net, sample.block), (None, None));
        assert!((sample.cpu_percent - 50.0).abs() < 1e-9);
        assert_eq!(sample.memory_used, 200 << 20);
        assert_eq!(sample.memory_limit, 1 << 30);
        assert_eq!(sample.pids, 7);
        assert!((sample.memory_percent() - 200.0 / 1024.0 * 100.0).abs() < 1e-9);
        let stopped = ContainerStatsResponse::default();
        assert_eq!(super::sample(&stopped, 0), None);
    }

    #[test]
    fn network_bytes_sum_over_interfaces() {
        let net = |rx, tx| ContainerNetworkStats {
            rx_bytes: Some(rx),
            tx_bytes: Some(tx),
            ..Default::default()
        };
        let networks = HashMap::from([
            ("eth0".to_string(), net(1000, 200)),
            ("eth1".to_string(), net(24, 56)),
        ]);
        assert_eq!(
            net_counters(Some(&networks)),
            Some(ByteCounters {
                read: 1024,
                written: 256
            })
        );
        assert_eq!(net_counters(None), None);
        assert_eq!(net_counters(Some(&HashMap::new())), None);
        // Counters near the top do not wrap into small numbers.
        let huge = HashMap::from([
            ("a".to_string(), net(u64::MAX, 0)),
            ("b".to_string(), net(5, 0)),
        ]);
        assert_eq!(net_counters(Some(&huge)).unwrap().read, u64::MAX);
    }

    #[test]
    fn block_bytes_count_reads_and_writes_of_v1_and_v2() {
        use bollard::models::ContainerBlkioStatEntry;
        let entry = |op: &str, value| ContainerBlkioStatEntry {
            major: Some(8),
            minor: Some(0),
            op: Some(op.to_string()),
            value: Some(value),
        };
        let blkio = |entries| ContainerBlkioStats {
            io_service_bytes_recursive: Some(entries),
            ..Default::default()
        };
        // cgroup v1: capitalised, with Sync/Async/Total that must not count.
        let v1 = blkio(vec![
            entry("Read", 4096),
            entry("Write", 8192),
            entry("Sync", 12288),
            entry("Async", 0),
            entry("Total", 12288),
            entry("Read", 1),
        ]);
        assert_eq!(
            block_counters(Some(&v1)),
            Some(ByteCounters {
                read: 4097,
                written: 8192
            })
        );
        // cgroup v2: lower case, one pair per device.
        let v2 = blkio(vec![
            entry("read", 10),
            entry("write", 20),
            entry("read", 1),
            entry("write", 2),
        ]);
        assert_eq!(
            block_counters(Some(&v2)),
            Some(ByteCounters {
                read: 11,
                written: 22
            })
        );
        // What this engine (cgroup v1, no throttle data) sends: empty lists.
        assert_eq!(block_counters(Some(&blkio(Vec::new()))), None);
        assert_eq!(block_counters(Some(&ContainerBlkioStats::default())), None);
        assert_eq!(block_counters(None), None);
    }

    #[test]
    fn unlimited_pids_read_as_no_limit() {
        let with_limit = |limit| ContainerStatsResponse {
            cpu_stats: Some(cpu(0, 0, Some(1), 1)),
            memory_stats: Some(memory(1, "inactive_file", 0)),
            pids_stats: Some(ContainerPidsStats {
                current: Some(1),
                limit,
            }),
            ..Default::default()
        };
        for unlimited in [None, Some(0), Some(u64::MAX)] {
            let sample = sample(&with_limit(unlimited), 0).unwrap();
            assert_eq!(sample.pids_limit, None, "{unlimited:?}");
        }
        assert_eq!(
            sample(&with_limit(Some(64)), 0).unwrap().pids_limit,
            Some(64)
        );
    }
}
