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
