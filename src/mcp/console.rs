//! The console tools on top of the library's sandbox file operations and
//! exec: every path goes through the same confinement as `sandpit files`
//! (lexical, then resolved inside the sandbox), and nothing touches the
//! host's copy of the workspace, so it works against a remote engine.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::exec::ExecRequest;
use crate::engine::files::{EntryKind, PathError, confine};
use crate::engine::sandbox::Sandbox;

use super::ToolOutcome;
use super::text::{self, GrepMatch, LsEntry};
use super::tools::{
    EditFileParams, GlobParams, GrepParams, LsParams, ReadFileParams, WriteFileParams,
};

/// Largest file `read_file` and `edit_file` take in.
pub const READ_CAP: u64 = 32 << 20;
/// Ceiling on `glob` and `grep`, which walk a tree.
const SEARCH_TIMEOUT: Duration = Duration::from_secs(120);
/// Output a search may print before it is cut.
const SEARCH_OUTPUT_CAP: usize = 16 << 20;
/// Hint given with a file too large to read whole.
const READ_LIMIT_HINT: &str =
    "Read a slice with execute() instead, e.g. \"sed -n '1,200p' <path>\".";

/// What went wrong with a file operation, from the library's error.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// The path leaves the workspace: refused before or after resolving it.
    Refused(String),
    Missing,
    NotAFolder,
    AFolder,
    TooLarge(String),
    Other(String),
}

fn classify(err: &anyhow::Error) -> Failure {
    if let Some(refusal) = err.downcast_ref::<PathError>() {
        return Failure::Refused(refusal.to_string());
    }
    // The library's messages are the only signal it gives; see
    // `Sandbox::files_op` in src/engine/files.rs.
    let message = format!("{err:#}");
    if message.contains(" refused: ") {
        Failure::Refused(message)
    } else if message.contains("does not exist") {
        Failure::Missing
    } else if message.contains("is not a folder") {
        Failure::NotAFolder
    } else if message.contains("is a folder, not a file") {
        Failure::AFolder
    } else if message.contains("over the read limit") {
        Failure::TooLarge(message)
    } else {
        Failure::Other(message)
    }
}

/// For each symlink given (absolute paths in the sandbox), what it leads
/// to when that is inside the workspace: `d`, or `f` and the size; `-` for a
/// link that leads nowhere or out of the workspace, which tells nothing of
/// what is outside.
const LINKS_SH: &str = r#"
W=$(realpath -e -- "$SANDPIT_WORKSPACE") || exit 84
for link in "$@"; do
  t=$(realpath -e -- "$link" 2>/dev/null) || { echo -; continue; }
  case "$t" in "$W"|"$W"/*) ;; *) echo -; continue ;; esac
  if [ -d "$t" ]; then echo d; else echo "f $(stat -c %s -- "$t" 2>/dev/null || echo -)"; fi
done
"#;

/// Entries as the reference lists them: a link shown as what it leads to
/// (inside the workspace only), folders first, then by name.
async fn follow_links(
    sandbox: &Sandbox,
    folder: &[u8],
    entries: Vec<crate::engine::files::DirEntry>,
) -> Vec<LsEntry> {
    // The exec API carries UTF-8 argv: a link whose path is not UTF-8 is
    // passed lossily, fails to resolve, and is listed as a plain entry
    // (one line of output per link keeps the answers in step).
    let links: Vec<String> = entries
        .iter()
        .filter(|entry| entry.kind == EntryKind::Symlink)
        .map(|entry| {
            let mut path = folder.to_vec();
            path.push(b'/');
            path.extend_from_slice(&entry.name);
            String::from_utf8_lossy(&path).into_owned()
        })
        .collect();
    let mut targets = std::collections::VecDeque::new();
    if !links.is_empty() {
        let mut argv = vec![
            "sh".to_string(),
            "-c".to_string(),
            LINKS_SH.to_string(),
            "sandpit-links".to_string(),
        ];
        argv.extend(links);
        let request = ExecRequest::argv(argv)
            .env("SANDPIT_WORKSPACE", sandbox.work_dir())
            .work_dir("/")
            .timeout(SEARCH_TIMEOUT);
        if let Ok(result) = sandbox.exec_collect(request).await {
            targets = result.stdout_text().lines().map(str::to_string).collect();
        }
    }
    let mut listed: Vec<LsEntry> = entries
        .into_iter()
        .map(|entry| match entry.kind {
            EntryKind::Symlink => match targets.pop_front().as_deref() {
                Some("d") => LsEntry {
                    name: entry.display_name(),
                    is_dir: true,
                    size: None,
                },
                Some(file) => LsEntry {
                    name: entry.display_name(),
                    is_dir: false,
                    size: file.strip_prefix("f ").and_then(|size| size.parse().ok()),
                },
                None => LsEntry {
                    name: entry.display_name(),
                    is_dir: false,
                    size: None,
                },
            },
            kind => LsEntry {
                is_dir: kind == EntryKind::Dir,
                name: entry.display_name(),
                size: (kind != EntryKind::Dir).then_some(entry.size),
            },
        })
        .collect();
    listed.sort_by(|a, b| (!a.is_dir, &a.name).cmp(&(!b.is_dir, &b.name)));
    listed
}

/// `ls`: a folder's entries, links shown as what they lead to inside the
/// workspace; a missing folder or a file gets the reference's sentence.
pub async fn ls(sandbox: &Sandbox, params: LsParams) -> ToolOutcome {
    match sandbox.list_dir(&params.path).await {
        Ok(entries) => {
            let folder = match confine(sandbox.work_dir(), &params.path) {
                Ok(folder) => folder,
                Err(err) => return ToolOutcome::tool_error(format!("Error: {err}")),
            };
            let entries = follow_links(sandbox, &folder, entries).await;
            ToolOutcome::text(text::ls(&params.path, &entries))
        }
        Err(err) => match classify(&err) {
            Failure::Refused(reason) => ToolOutcome::tool_error(format!("Error: {reason}")),
            Failure::Missing | Failure::NotAFolder => {
                ToolOutcome::text(text::ls(&params.path, &[]))
            }
            _ => ToolOutcome::failure(&err),
        },
    }
}

/// A file's text, or the tool error the model gets instead.
async fn read_text(
    sandbox: &Sandbox,
    path: &str,
    missing: impl Fn() -> String,
) -> Result<Option<String>, String> {
    match sandbox.read_file(path, READ_CAP).await {
        Ok(data) => Ok(text::decode(path, &data.bytes)),
        Err(err) => Err(match classify(&err) {
            Failure::Refused(reason) => format!("Error: {reason}"),
            Failure::Missing => missing(),
            Failure::AFolder => format!("Error: '{path}' is a directory, not a file"),
            Failure::TooLarge(message) => format!("Error: {message}. {READ_LIMIT_HINT}"),
            Failure::NotAFolder | Failure::Other(_) => format!("Error: {err:#}"),
        }),
    }
}

/// `read_file`: numbered lines `offset..offset+limit`; a missing file, an
/// offset past the end or a refused path is a tool error.
pub async fn read_file(sandbox: &Sandbox, params: ReadFileParams) -> ToolOutcome {
    let (Ok(offset), Ok(limit)) = (
        usize::try_from(params.offset),
        usize::try_from(params.limit),
    ) else {
        return ToolOutcome::tool_error(format!(
            "Error: offset and limit must not be negative (got offset {}, limit {})",
            params.offset, params.limit
        ));
    };
    let path = params.path;
    match read_text(sandbox, &path, || text::file_not_found(&path)).await {
        Err(message) => ToolOutcome::tool_error(message),
        Ok(None) => ToolOutcome::text(text::BINARY_FILE.to_string()),
        Ok(Some(content)) => match text::numbered_slice(&content, offset, limit) {
            Ok(slice) => ToolOutcome::text(slice),
            Err(past_end) => ToolOutcome::tool_error(past_end.0),
        },
    }
}

/// `write_file`: creates parent folders and replaces the file atomically.
pub async fn write_file(sandbox: &Sandbox, params: WriteFileParams) -> ToolOutcome {
    let WriteFileParams { path, content } = params;
    match sandbox
        .write_file(&path, content.clone().into_bytes())
        .await
    {
        Ok(()) => ToolOutcome::text(text::wrote(&path, &content)),
        Err(err) => ToolOutcome::tool_error(format!("Error: Failed to write '{path}': {err:#}")),
    }
}

/// Replaces exact text. The caller holds the user's edit lock, so two edits
/// in flight never lose one another's change.
pub async fn edit_file(sandbox: &Sandbox, params: EditFileParams) -> ToolOutcome {
    let EditFileParams {
        path,
        old_string,
        new_string,
        replace_all,
    } = params;
    let content = match read_text(sandbox, &path, || text::file_not_found(&path)).await {
        Ok(Some(content)) => content,
        Ok(None) => return ToolOutcome::tool_error("Error: [Binary File]".to_string()),
        Err(message) => return ToolOutcome::tool_error(message),
    };
    let (updated, occurrences) =
        match text::replace(&content, &old_string, &new_string, replace_all) {
            Ok(done) => done,
            Err(message) => return ToolOutcome::tool_error(message),
        };
    match sandbox.write_file(&path, updated.into_bytes()).await {
        Ok(()) => ToolOutcome::text(text::edited(&path, occurrences)),
        Err(err) => ToolOutcome::tool_error(format!("Error: Failed to write '{path}': {err:#}")),
    }
}

/// Runs `argv` inside the sandbox as its uid once `root` (relative to the
/// workspace or absolute inside it) is known to resolve inside the
/// workspace, symlinks included. Neither `find` nor `grep -r` follows a
/// symlink below the root, so nothing outside the workspace is read.
const SEARCH_SH: &str = r#"
set -u
W=$(realpath -e -- "$SANDPIT_WORKSPACE") || exit 84
r=$(realpath -m -- "$1") || exit 83
case "$r" in "$W"|"$W"/*) ;; *) exit 83 ;; esac
shift
exec "$@"
"#;

struct Search {
    exit_code: i64,
    stdout: String,
    stderr: String,
}

/// A root argument that no command mistakes for an option.
fn root_argument(path: &str) -> String {
    if path.starts_with('-') {
        format!("./{path}")
    } else {
        path.to_string()
    }
}

async fn search(
    sandbox: &Sandbox,
    root: &str,
    argv: Vec<String>,
    cancel: CancellationToken,
) -> Result<Search, String> {
    confine(sandbox.work_dir(), root).map_err(|err| format!("Error: {err}"))?;
    let mut full = vec![
        "sh".to_string(),
        "-c".to_string(),
        SEARCH_SH.to_string(),
        "sandpit-search".to_string(),
        root.to_string(),
    ];
    full.extend(argv);
    let request = ExecRequest::argv(full)
        .env("SANDPIT_WORKSPACE", sandbox.work_dir())
        .timeout(SEARCH_TIMEOUT)
        .output_cap(SEARCH_OUTPUT_CAP);
    let result = sandbox
        .exec(request, None, cancel)
        .await
        .map_err(|err| format!("Error: {err:#}"))?;
    match result.exit_code {
        Some(83) => Err(format!(
            "Error: path `{root}` refused: it resolves outside the workspace {}",
            sandbox.work_dir()
        )),
        Some(84) => Err(format!(
            "Error: the workspace {} is missing in the sandbox",
            sandbox.work_dir()
        )),
        _ if result.timed_out => Err(format!(
            "Error: the search took longer than {}s",
            SEARCH_TIMEOUT.as_secs()
        )),
        code => Ok(Search {
            exit_code: code.unwrap_or(1),
            stdout: result.stdout_text(),
            stderr: result.stderr_text(),
        }),
    }
}

/// `glob`: `find` inside the sandbox from a root confined to the workspace.
pub async fn glob(sandbox: &Sandbox, params: GlobParams, cancel: CancellationToken) -> ToolOutcome {
    let GlobParams { pattern, path } = params;
    let root = if matches!(path.trim(), "" | "/" | ".") {
        ".".to_string()
    } else {
        path.clone()
    };
    let anywhere = pattern.strip_prefix("**/").unwrap_or(&pattern);
    let argv = vec![
        "find".to_string(),
        root_argument(&root),
        "-path".to_string(),
        format!("*/{anywhere}"),
        "-type".to_string(),
        "f".to_string(),
    ];
    match search(sandbox, &root, argv, cancel).await {
        Err(message) => ToolOutcome::tool_error(message),
        Ok(found) => {
            let mut paths: Vec<String> = if found.exit_code == 0 {
                found.stdout.lines().map(text::pure_posix).collect()
            } else {
                Vec::new()
            };
            paths.sort();
            ToolOutcome::text(text::glob(&pattern, &path, &paths))
        }
    }
}

/// `grep`: GNU `grep -rnH` inside the sandbox from a root confined to the
/// workspace; hidden files skipped unless `ignore_hidden` is false.
pub async fn grep(sandbox: &Sandbox, params: GrepParams, cancel: CancellationToken) -> ToolOutcome {
    let GrepParams {
        pattern,
        path,
        glob_pattern,
        output_mode,
        ignore_hidden,
    } = params;
    let root = path.clone().unwrap_or_else(|| ".".to_string());
    let mut argv = vec!["grep".to_string(), "-rnH".to_string()];
    if ignore_hidden {
        argv.push("--exclude-dir=.[!./]*".to_string());
        argv.push("--exclude-dir=*/.[!.]*".to_string());
    }
    if let Some(glob) = &glob_pattern {
        argv.push(format!("--include={glob}"));
    }
    argv.extend([
        "-e".to_string(),
        pattern.clone(),
        "--".to_string(),
        root.clone(),
    ]);
    let search_root = if root.trim().is_empty() {
        "."
    } else {
        root.as_str()
    };
    match search(sandbox, search_root, argv, cancel).await {
        Err(message) => ToolOutcome::tool_error(message),
        Ok(found) => {
            // The reference reads stdout and stderr together, as a shell does.
            let output = format!("{}{}", found.stdout, found.stderr);
            match found.exit_code {
                1 => ToolOutcome::text(text::grep(&pattern, output_mode, &[])),
                0 => {
                    let matches: Vec<GrepMatch> = text::parse_grep(&output)
                        .into_iter()
                        .filter(|m| !ignore_hidden || !text::hidden_match(&m.path, path.as_deref()))
                        .collect();
                    ToolOutcome::text(text::grep(&pattern, output_mode, &matches))
                }
                _ => ToolOutcome::text(format!("Error: {}", text::bounded(&output).0)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_apart() {
        let refused = anyhow::Error::new(confine("/workspace", "../x").unwrap_err());
        assert!(matches!(classify(&refused), Failure::Refused(_)));
        assert_eq!(
            classify(&anyhow::anyhow!("`a.py` does not exist in the workspace")),
            Failure::Missing
        );
        assert_eq!(
            classify(&anyhow::anyhow!("`a.py` is a folder, not a file")),
            Failure::AFolder
        );
        assert!(matches!(
            classify(&anyhow::anyhow!(
                "path `l` refused: it resolves outside the workspace /workspace (through a symlink)"
            )),
            Failure::Refused(_)
        ));
    }

    #[test]
    fn roots_are_never_options() {
        assert_eq!(root_argument("-delete"), "./-delete");
        assert_eq!(root_argument("src"), "src");
    }
}
