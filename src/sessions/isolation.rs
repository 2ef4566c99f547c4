//! The isolation check: probes run from one user's sandbox against another's,
//! each reported as blocked or LEAKED. It looks from inside, as the sandboxed
//! code would, and sends no traffic anywhere.

use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::engine::exec::ExecRequest;
use crate::engine::sandbox::Sandbox;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProbeResult {
    pub probe: String,
    pub blocked: bool,
    pub detail: String,
}

impl ProbeResult {
    pub fn verdict(&self) -> &'static str {
        if self.blocked { "blocked" } else { "LEAKED" }
    }
}

/// The probes, in the order they are shown.
pub const PROBES: [&str; 6] = [
    "read the other user's workspace",
    "list the other user's processes",
    "reach the network",
    "write outside the workspace",
    "gain capabilities",
    "read host files",
];

const CANARY_FILE: &str = ".sandpit-isolation-canary";

/// Each script prints `LEAKED <detail>` lines for what got through, or
/// nothing. `$TOKEN`, `$OTHER_WORKSPACE` and `$WORK_DIR` are set.
const READ_WORKSPACE_SH: &str = r#"
for path in "$OTHER_WORKSPACE/.sandpit-isolation-canary" "$WORK_DIR/../$OTHER_USER/.sandpit-isolation-canary"; do
  if grep -qs "$TOKEN" "$path"; then echo "LEAKED read $path"; fi
done
found=$(find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -name .sandpit-isolation-canary -print 2>/dev/null | head -n 5)
for path in $found; do
  if grep -qs "$TOKEN" "$path"; then echo "LEAKED found $path"; fi
done
"#;

const LIST_PROCESSES_SH: &str = r#"
for cmdline in /proc/[0-9]*/cmdline; do
  if tr '\0' ' ' < "$cmdline" 2>/dev/null | grep -q "$TOKEN"; then echo "LEAKED saw ${cmdline%/cmdline}"; fi
done
"#;

const NETWORK_SH: &str = r#"
for dev in /sys/class/net/*; do
  name=${dev##*/}
  [ "$name" = lo ] || echo "LEAKED interface $name"
done
"#;

const WRITE_OUTSIDE_SH: &str = r#"
for dir in / /etc /usr /usr/local /var /opt /root "$WORK_DIR/.."; do
  probe="$dir/.sandpit-isolation-probe-$$"
  if ( : > "$probe" ) 2>/dev/null; then rm -f "$probe"; echo "LEAKED wrote into $dir"; fi
done
"#;

const CAPABILITIES_SH: &str = r#"
while read -r key value; do
  case $key in
    CapEff:|CapPrm:|CapBnd:|CapAmb:) [ "$value" = 0000000000000000 ] || echo "LEAKED $key $value" ;;
    NoNewPrivs:) [ "$value" = 1 ] || echo "LEAKED NoNewPrivs $value" ;;
  esac
done < /proc/self/status
[ "$(id -u)" = 0 ] && echo "LEAKED runs as root"
"#;

const HOST_FILES_SH: &str = r#"
for sock in /var/run/docker.sock /run/docker.sock /run/containerd/containerd.sock; do
  [ -e "$sock" ] && echo "LEAKED $sock"
done
while read -r line; do
  set -- $line
  mount_point=$5
  fs_type=${line#* - }; fs_type=${fs_type%% *}
  case $fs_type in proc|sysfs|tmpfs|devpts|mqueue|cgroup|cgroup2|overlay|shm) continue ;; esac
  case $mount_point in
    "$WORK_DIR"|/etc/hosts|/etc/hostname|/etc/resolv.conf|/usr/sbin/docker-init|/sbin/docker-init|/proc/*|/sys/*|/dev/*) continue ;;
  esac
  echo "LEAKED host folder mounted at $mount_point"
done < /proc/self/mountinfo
"#;

fn new_token() -> String {
    // Digits only: it also serves as a sleep duration's fraction.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// Runs every probe from `from` against `target`, whose workspace on the host
/// is `target_workspace`. Leaves a canary file in the target's workspace
/// briefly and removes it after.
pub async fn check_isolation(
    from: &Sandbox,
    target: &Sandbox,
    target_workspace: &str,
) -> anyhow::Result<Vec<ProbeResult>> {
    let token = new_token();
    target
        .write_file(CANARY_FILE, format!("{token}\n").into_bytes())
        .await
        .context("cannot place the canary in the other user's workspace")?;
    // A process in the target whose command line carries the token.
    let marker_cancel = CancellationToken::new();
    let marker = {
        let target = target.clone();
        let cancel = marker_cancel.clone();
        let script = format!("exec sleep 600.{token}");
        tokio::spawn(async move {
            target
                .exec(
                    ExecRequest::shell(script).timeout(Duration::from_secs(600)),
                    None,
                    cancel,
                )
                .await
        })
    };
    let marker_seen = wait_for_marker(target, &token).await;

    let results = run_probes(from, target, target_workspace, &token).await;

    marker_cancel.cancel();
    let _ = marker.await;
    let _ = target.delete(CANARY_FILE).await;
    let mut results = results?;
    if !marker_seen {
        // Without a visible marker the process probe proves nothing: say so,
        // and do not let it pass.
        if let Some(result) = results.iter_mut().find(|r| r.probe == PROBES[1]) {
            result.blocked = false;
            result.detail =
                "inconclusive: the marker process did not start in the other sandbox".to_string();
        }
    }
    Ok(results)
}

async fn wait_for_marker(target: &Sandbox, token: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let probe = ExecRequest::shell(LIST_PROCESSES_SH).env("TOKEN", token);
        if let Ok(result) = target.exec_collect(probe).await
            && result.stdout_text().contains("LEAKED")
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn run_probes(
    from: &Sandbox,
    target: &Sandbox,
    target_workspace: &str,
    token: &str,
) -> anyhow::Result<Vec<ProbeResult>> {
    let scripts = [
        READ_WORKSPACE_SH,
        LIST_PROCESSES_SH,
        NETWORK_SH,
        WRITE_OUTSIDE_SH,
        CAPABILITIES_SH,
        HOST_FILES_SH,
    ];
    let mut results = Vec::with_capacity(PROBES.len());
    for (probe, script) in PROBES.iter().zip(scripts) {
        let request = ExecRequest::shell(script)
            .env("TOKEN", token)
            .env("OTHER_WORKSPACE", target_workspace)
            .env("OTHER_USER", target.user().as_str())
            .env("WORK_DIR", from.work_dir())
            .timeout(Duration::from_secs(60));
        let result = from
            .exec_collect(request)
            .await
            .with_context(|| format!("probe `{probe}` could not run"))?;
        let leaks: Vec<String> = result
            .stdout_text()
            .lines()
            .filter_map(|line| line.strip_prefix("LEAKED "))
            .map(str::to_string)
            .collect();
        let mut detail = leaks.join("; ");
        // The file API must refuse the other workspace too.
        if *probe == PROBES[0] {
            let through_api = format!("../{}/{CANARY_FILE}", target.user());
            if let Ok(data) = from.read_file(&through_api, 4096).await
                && String::from_utf8_lossy(&data.bytes).contains(token)
            {
                detail = format!("{detail}; file API read {through_api}");
            }
        }
        results.push(ProbeResult {
            probe: probe.to_string(),
            blocked: detail.is_empty(),
            detail: if detail.is_empty() {
                "nothing got through".to_string()
            } else {
                detail.trim_start_matches("; ").to_string()
            },
        });
    }
    Ok(results)
}
