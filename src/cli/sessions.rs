use std::time::{Duration, SystemTime};

use futures_util::StreamExt as _;
use futures_util::future::join_all;

use crate::engine::Engine;
use crate::engine::policy::PolicyOverrides;
use crate::engine::sandbox::UserId;
use crate::engine::stats::StatsSample;
use crate::sessions::Session;
use crate::sessions::isolation;
use crate::sessions::isolation::Verdict;

use super::Context;
use super::build::build_progress;
use crate::units::{disk_text, human_bytes};

#[derive(serde::Serialize)]
struct SessionRow {
    #[serde(flatten)]
    session: Session,
    stats: Option<StatsSample>,
}

/// One real sample (with CPU %), or none when the sandbox is not running.
async fn one_sample(engine: &Engine, container: &str) -> Option<StatsSample> {
    let mut stream = Box::pin(engine.stats_stream(container));
    match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        Ok(Some(Ok(sample))) => Some(sample),
        _ => None,
    }
}

pub async fn list(context: &Context, json: bool) -> anyhow::Result<i32> {
    let sessions = context.sessions().await?;
    let listed = sessions.list().await?;
    let engine = sessions.engine();
    let samples = join_all(listed.iter().map(|session| async {
        if session.sandbox.is_running() {
            one_sample(engine, &session.sandbox.container_id).await
        } else {
            None
        }
    }))
    .await;
    let rows: Vec<SessionRow> = listed
        .into_iter()
        .zip(samples)
        .map(|(session, stats)| SessionRow { session, stats })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    println!(
        "{:<20} {:<20} {:<8} {:<12} {:<9} {:<9} {:>6} {:>10}  DISK",
        "USER", "RUNTIME", "STATE", "CONTAINER", "CREATED", "LAST USED", "CPU %", "MEMORY"
    );
    let now = unix_now();
    for row in rows {
        let sandbox = &row.session.sandbox;
        let (cpu, memory) = match row.stats {
            Some(stats) => (
                format!("{:.1}", stats.cpu_percent),
                human_bytes(stats.memory_used),
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        println!(
            "{:<20} {:<20} {:<8} {:<12} {:<9} {:<9} {:>6} {:>10}  {}",
            sandbox.user,
            sandbox.runtime,
            sandbox.state,
            sandbox
                .container_id
                .get(..12)
                .unwrap_or(&sandbox.container_id),
            ago(now - sandbox.created),
            ago(now - row.session.last_used),
            cpu,
            memory,
            disk_text(row.session.disk.as_ref())
        );
    }
    Ok(0)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `42s ago`, `5m ago`, `3h ago`, `2d ago`.
pub fn ago(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds}s ago"),
        60..3600 => format!("{}m ago", seconds / 60),
        3600..86400 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86400),
    }
}

pub async fn check_isolation(
    context: &Context,
    user: &UserId,
    other: &UserId,
    json: bool,
) -> anyhow::Result<i32> {
    if user == other {
        anyhow::bail!("check-isolation needs two different users");
    }
    let sessions = context.sessions().await?;
    let from = sessions
        .get_or_create(
            user,
            None,
            &PolicyOverrides::default(),
            &mut build_progress(),
        )
        .await?;
    let target = sessions
        .get_or_create(
            other,
            None,
            &PolicyOverrides::default(),
            &mut build_progress(),
        )
        .await?;
    let target_workspace = target.inspect().await?.info.workspace;
    let results = isolation::check_isolation(&from, &target, &target_workspace).await?;
    let count = |verdict: Verdict| results.iter().filter(|r| r.verdict == verdict).count();
    let (leaked, untested) = (count(Verdict::Leaked), count(Verdict::Untested));
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        println!("isolation of `{other}` as seen from `{user}`'s sandbox");
        let width = results.iter().map(|r| r.probe.len()).max().unwrap_or(10);
        for result in &results {
            println!(
                "{:<width$}  {:<8}  {}",
                result.probe,
                result.verdict(),
                // What the other sandbox's processes and files are named
                // comes from sandboxed code: escaped, one line per probe.
                crate::engine::names::escape(result.evidence.as_bytes())
            );
        }
        if leaked == 0 && untested == 0 {
            println!("every probe blocked ({} probes)", results.len());
        } else {
            println!(
                "{leaked} probe(s) LEAKED, {untested} untested, of {}",
                results.len()
            );
        }
    }
    Ok(if leaked == 0 && untested == 0 { 0 } else { 1 })
}

pub async fn reap(context: &Context) -> anyhow::Result<i32> {
    let sessions = context.sessions().await?;
    let stopped = sessions.reap_idle(SystemTime::now()).await?;
    for user in &stopped {
        println!("stopped idle session of {user}");
    }
    println!("{} session(s) stopped", stopped.len());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::ago;

    #[test]
    fn ages() {
        assert_eq!(ago(-5), "0s ago");
        assert_eq!(ago(59), "59s ago");
        assert_eq!(ago(60), "1m ago");
        assert_eq!(ago(7200), "2h ago");
        assert_eq!(ago(200_000), "2d ago");
    }
}
