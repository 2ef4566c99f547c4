//! Human-readable figures shared by the CLI and the dashboard.

/// `1.5 GiB`, `300.0 MiB`, `12 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A Unix time in milliseconds as `2026-11-29 14:47:03` (UTC, to the
/// second). sandpit has no time-zone database, so it never guesses local time.
pub fn utc_datetime(unix_ms: i64) -> String {
    let seconds = unix_ms.div_euclid(1000);
    let (days, in_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar; Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `850ms`, `12.3s`, `4m05s`, `2h10m`.
pub fn human_duration_ms(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// A workspace's usage against its limit: `1.2 MiB / 1.0 GiB`; `(not
/// enforced)` after a limit nothing holds; `no limit`; `-` when unknown.
pub fn disk_text(disk: Option<&crate::engine::quota::DiskUsage>) -> String {
    let Some(disk) = disk else {
        return "-".to_string();
    };
    let used = format!(
        "{}{}",
        if disk.complete { "" } else { "≥" },
        human_bytes(disk.used)
    );
    match disk.limit {
        None => format!("{used} / no limit"),
        Some(limit) if disk.enforced => format!("{used} / {}", human_bytes(limit)),
        Some(limit) => format!("{used} / {} (not enforced)", human_bytes(limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        assert_eq!(utc_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(utc_datetime(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc_datetime(1_795_963_623_999), "2026-11-29 14:47:03");
        assert_eq!(utc_datetime(-1000), "1969-12-31 23:59:59");
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration_ms(850), "850ms");
        assert_eq!(human_duration_ms(12_340), "12.3s");
        assert_eq!(human_duration_ms(245_000), "4m05s");
        assert_eq!(human_duration_ms(7_800_000), "2h10m");
    }

    #[test]
    fn disk_texts() {
        let usage = |limit, enforced, complete| crate::engine::quota::DiskUsage {
            used: 3 << 20,
            limit,
            enforced,
            complete,
            image: None,
            image_size: None,
            note: None,
        };
        assert_eq!(disk_text(None), "-");
        assert_eq!(
            disk_text(Some(&usage(Some(1 << 30), true, true))),
            "3.0 MiB / 1.0 GiB"
        );
        assert_eq!(
            disk_text(Some(&usage(Some(1 << 30), false, false))),
            "≥3.0 MiB / 1.0 GiB (not enforced)"
        );
        assert_eq!(
            disk_text(Some(&usage(None, false, true))),
            "3.0 MiB / no limit"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(300 << 20), "300.0 MiB");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
    }
}
