//! `sandpit activity`: the shared log of actions on sandboxes, as a table or
//! JSON lines, optionally followed live.

use std::io::Write as _;
use std::time::Duration;

use futures_util::StreamExt as _;

use crate::activity::{self, ActivityLog, ActivityQuery, ActivityRow, Retention, Source};
use crate::config::DurationSetting;
use crate::engine::sandbox::UserId;
use crate::units::{human_duration_ms, utc_datetime};

use super::Context;

/// Rows shown before following, unless `--limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Clone, clap::Args)]
pub struct ActivityArgs {
    /// Only this user's actions
    #[arg(long)]
    user: Option<UserId>,
    /// Only actions of the last DURATION: 30s, 15m, 1h, 2d
    #[arg(long, value_name = "DURATION", value_parser = parse_since)]
    since: Option<Duration>,
    /// Only actions from mcp, cli or dashboard
    #[arg(long, value_parser = parse_source)]
    source: Option<Source>,
    /// Newest rows shown (before following)
    #[arg(long, default_value_t = DEFAULT_LIMIT)]
    limit: usize,
    /// One JSON object per line
    #[arg(long)]
    json: bool,
    /// Keep printing new actions as any sandpit process records them
    #[arg(long)]
    follow: bool,
}

fn parse_since(text: &str) -> Result<Duration, String> {
    DurationSetting::parse(text).map(|d| d.0)
}

fn parse_source(text: &str) -> Result<Source, String> {
    text.parse()
}

pub async fn activity(context: &Context, args: &ActivityArgs) -> anyhow::Result<i32> {
    let root = context
        .config
        .workspace_root(context.workspace_root.as_deref())?;
    let log = ActivityLog::open_with(&root, Retention::from_config(&context.config.activity))?;
    let query = ActivityQuery {
        user: args.user.clone(),
        source: args.source,
        since_ms: args.since.map(|since| {
            activity::now_ms().saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
        }),
        after_id: None,
        limit: Some(args.limit),
    };
    // Read before the query: a row recorded in between is then either shown
    // now or followed, never lost.
    let latest = log.latest_id()?;
    let rows = log.query(&query)?;
    let mut out = std::io::stdout().lock();
    let printed = (|| {
        if !args.json {
            writeln!(out, "{}", header())?;
        }
        for row in &rows {
            print_row(&mut out, row, args.json)?;
        }
        out.flush()
    })();
    if let Some(code) = stdout_closed(printed)? {
        return Ok(code);
    }
    drop(out);
    if !args.follow {
        return Ok(0);
    }
    let after = rows.last().map_or(latest, |row| row.id.max(latest));
    let follow_query = ActivityQuery {
        since_ms: None,
        after_id: Some(after),
        limit: None,
        ..query
    };
    let mut rows = Box::pin(log.follow(follow_query, activity::FOLLOW_INTERVAL));
    while let Some(row) = rows.next().await {
        match row {
            Ok(row) => {
                let mut out = std::io::stdout().lock();
                let printed = print_row(&mut out, &row, args.json).and_then(|()| out.flush());
                if let Some(code) = stdout_closed(printed)? {
                    return Ok(code);
                }
            }
            // A passing trouble (a locked or replaced file) is told, and
            // following goes on.
            Err(err) => eprintln!("warning: {err:#}"),
        }
    }
    Ok(0)
}

/// A reader that went away (`| head`) ends the command quietly.
fn stdout_closed(result: std::io::Result<()>) -> anyhow::Result<Option<i32>> {
    match result {
        Ok(()) => Ok(None),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(Some(0)),
        Err(err) => Err(anyhow::anyhow!("cannot write to stdout: {err}")),
    }
}

fn header() -> String {
    format!(
        "{:<19} {:<16} {:<9} {:<14} {:>5} {:>8} {:<10} SUMMARY",
        "TIME (UTC)", "USER", "SOURCE", "ACTION", "EXIT", "DURATION", "FLAGS"
    )
}

fn print_row(out: &mut impl std::io::Write, row: &ActivityRow, json: bool) -> std::io::Result<()> {
    if json {
        let line = serde_json::to_string(row).map_err(std::io::Error::other)?;
        return writeln!(out, "{line}");
    }
    writeln!(out, "{}", table_line(row))
}

/// One table line. Every text is cleaned again: the file is shared, and
/// what another writer put there must not reach the terminal raw.
fn table_line(row: &ActivityRow) -> String {
    let a = &row.activity;
    let flags = a.flags.words();
    let mut summary = activity::clean(&a.summary, activity::SUMMARY_MAX_CHARS);
    if let Some(error) = &a.error {
        summary.push_str(" [error: ");
        summary.push_str(&activity::clean(error, activity::ERROR_MAX_CHARS));
        summary.push(']');
    }
    format!(
        "{:<19} {:<16} {:<9} {:<14} {:>5} {:>8} {:<10} {}",
        utc_datetime(a.time_ms),
        activity::clean(&a.user, 64),
        a.source,
        activity::clean(&a.action, activity::ACTION_MAX_CHARS),
        a.exit_code
            .map_or_else(|| "-".to_string(), |code| code.to_string()),
        human_duration_ms(a.duration_ms),
        if flags.is_empty() {
            "-".to_string()
        } else {
            flags.join(",")
        },
        summary
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::{Activity, ActivityFlags};

    #[test]
    fn since_and_source_parse() {
        assert_eq!(parse_since("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_since("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_since("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_since("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_since("yesterday").unwrap_err().contains("yesterday"));
        assert_eq!(parse_source("mcp"), Ok(Source::Mcp));
        assert!(parse_source("http").is_err());
    }

    #[test]
    fn table_lines_are_clean() {
        let user = UserId::parse("bob").unwrap();
        let mut activity = Activity::new(Source::Mcp, &user, "execute", "python3 main.py")
            .with_exit_code(1)
            .with_duration(Duration::from_millis(1500))
            .with_flags(ActivityFlags {
                timed_out: true,
                ..Default::default()
            });
        activity.time_ms = 0;
        // As if another writer had put raw control characters in the file.
        activity.error = Some("bad\u{1b}[2Jthing".to_string());
        let line = table_line(&ActivityRow { id: 1, activity });
        assert!(
            line.starts_with("1970-01-01 00:00:00 bob              mcp       execute"),
            "{line}"
        );
        assert!(
            line.contains("    1     1.5s timeout    python3 main.py"),
            "{line}"
        );
        assert!(line.ends_with(r"[error: bad\u{1b}[2Jthing]"), "{line}");
        assert!(!line.chars().any(char::is_control), "{line}");
    }
}
