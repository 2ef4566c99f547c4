//! File operations confined to a sandbox's workspace.
//!
//! They run inside the sandbox as its own uid, through the engine's exec API,
//! so they work against a remote engine and never gain rights the sandboxed
//! code lacks. A path is checked twice: lexically here (no `..` above the
//! workspace, no absolute path elsewhere), then inside the sandbox after
//! resolving symlinks — including ones the sandboxed code made — in the same
//! shell that then touches the file.

use std::fmt;

use anyhow::bail;

use super::exec::ExecRequest;
use super::sandbox::Sandbox;

/// The largest file `read` returns unless told otherwise.
pub const DEFAULT_READ_CAP: u64 = 32 << 20;
/// How much of a file is looked at to tell text from binary.
const BINARY_SNIFF_LEN: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DirEntry {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Unix seconds.
    pub mtime: f64,
}

/// A file's contents, with whether they look binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileData {
    pub bytes: Vec<u8>,
    pub binary: bool,
}

/// Why a path was refused before anything was touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "path `{}` refused: {}",
            self.path.escape_debug(),
            self.reason
        )
    }
}

impl std::error::Error for PathError {}

/// The absolute path inside the sandbox for `requested`, which is relative to
/// the workspace or absolute inside it. `..` may not climb above it.
pub fn confine(work_dir: &str, requested: &str) -> Result<String, PathError> {
    let refuse = |reason: &str| PathError {
        path: requested.to_string(),
        reason: reason.to_string(),
    };
    if requested.chars().any(|c| c == '\0' || c.is_control()) {
        return Err(refuse("it contains a control character"));
    }
    let work_dir = work_dir.trim_end_matches('/');
    let relative = if let Some(rest) = requested.strip_prefix('/') {
        let inside = rest == work_dir.trim_start_matches('/')
            || rest.starts_with(&format!("{}/", work_dir.trim_start_matches('/')));
        if !inside {
            return Err(refuse(&format!("it is outside the workspace {work_dir}")));
        }
        &requested[work_dir.len()..]
    } else {
        requested
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(refuse(&format!("`..` leaves the workspace {work_dir}")));
                }
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        Ok(work_dir.to_string())
    } else {
        Ok(format!("{work_dir}/{}", parts.join("/")))
    }
}

/// Shell run for every operation: `$W` is the workspace, `$1` the operation,
/// then paths. Exit codes 80+ are refusals, read back by `refusal`.
const FILES_SH: &str = r#"
set -u
W=$(realpath -e -- "$SANDPIT_WORKSPACE") || exit 84
inside() { case "$1" in "$W"|"$W"/*) return 0;; esac; return 1; }
# Resolves every symlink; the last part may not exist yet.
full() { p=$(realpath -m -- "$1") && inside "$p" || exit 83; printf '%s' "$p"; }
# Resolves the parent only: the entry itself (even a symlink) is the target.
entry() {
  parent=$(realpath -m -- "$(dirname -- "$1")") && inside "$parent" || exit 83
  p="$parent/$(basename -- "$1")"
  [ "$p" = "$W/" ] && exit 83
  printf '%s' "$p"
}
op=$1; shift
case $op in
  ls)
    p=$(full "$1") || exit 83
    [ -e "$p" ] || exit 81
    [ -d "$p" ] || exit 86
    find "$p" -mindepth 1 -maxdepth 1 -printf '%y\t%s\t%T@\t%f\0' ;;
  read)
    p=$(full "$1") || exit 83
    [ -e "$p" ] || exit 81
    [ -f "$p" ] || exit 87
    size=$(stat -c %s -- "$p")
    [ "$size" -le "$2" ] || { printf '%s' "$size"; exit 85; }
    cat -- "$p" ;;
  write)
    p=$(full "$1") || exit 83
    [ -d "$p" ] && exit 87
    dir=$(dirname -- "$p")
    mkdir -p -- "$dir" || exit 1
    # Re-check after creating parents: none of them may be a symlink out.
    inside "$(realpath -e -- "$dir")" || exit 83
    tmp="$dir/.sandpit-write.$$"
    cat > "$tmp" && mv -f -- "$tmp" "$p" || { rm -f -- "$tmp"; exit 1; } ;;
  mkdir)
    p=$(full "$1") || exit 83
    mkdir -p -- "$p" ;;
  rename)
    from=$(entry "$1") || exit 83
    to=$(entry "$2") || exit 83
    [ -e "$from" ] || [ -L "$from" ] || exit 81
    [ -e "$to" ] || [ -L "$to" ] && exit 82
    mkdir -p -- "$(dirname -- "$to")" && mv -T -- "$from" "$to" ;;
  delete)
    p=$(entry "$1") || exit 83
    [ -e "$p" ] || [ -L "$p" ] || exit 81
    rm -rf -- "$p" ;;
  *) exit 2 ;;
esac
"#;

impl Sandbox {
    async fn files_op(
        &self,
        args: &[&str],
        stdin: Option<Vec<u8>>,
        output_cap: usize,
    ) -> anyhow::Result<Vec<u8>> {
        let mut argv = vec!["sh", "-c", FILES_SH, "sandpit-files"];
        argv.extend_from_slice(args);
        let mut request = ExecRequest::argv(argv)
            .env("SANDPIT_WORKSPACE", self.work_dir())
            .output_cap(output_cap)
            .work_dir("/");
        request.stdin = stdin;
        let result = self.exec_collect(request).await?;
        let path = args.get(1).copied().unwrap_or_default();
        if result.truncated {
            bail!(
                "file operation `{}` on `{path}` returned more than {output_cap} bytes; \
                 the file grew past the read limit while it was read",
                args.first().copied().unwrap_or_default()
            );
        }
        match result.exit_code {
            Some(0) => Ok(result.stdout),
            Some(81) => bail!("`{path}` does not exist in the workspace"),
            Some(82) => bail!(
                "`{}` exists already",
                args.get(2).copied().unwrap_or_default()
            ),
            Some(83) => bail!(
                "path `{path}` refused: it resolves outside the workspace {} (through a symlink)",
                self.work_dir()
            ),
            Some(84) => bail!(
                "the workspace {} is missing in the sandbox",
                self.work_dir()
            ),
            Some(85) => bail!(
                "`{path}` is {} bytes, over the read limit",
                result.stdout_text().trim()
            ),
            Some(86) => bail!("`{path}` is not a folder"),
            Some(87) => bail!("`{path}` is a folder, not a file"),
            other => bail!(
                "file operation `{}` on `{path}` failed (exit {}): {}",
                args.first().copied().unwrap_or_default(),
                other.map_or("unknown".to_string(), |code| code.to_string()),
                result.stderr_text().trim()
            ),
        }
    }

    /// Entries of a folder in the workspace, folders first, then by name.
    pub async fn list_dir(&self, path: &str) -> anyhow::Result<Vec<DirEntry>> {
        let absolute = confine(self.work_dir(), path)?;
        let output = self.files_op(&["ls", &absolute], None, 16 << 20).await?;
        let mut entries: Vec<DirEntry> = output
            .split(|byte| *byte == 0)
            .filter(|record| !record.is_empty())
            .filter_map(|record| parse_find_record(&String::from_utf8_lossy(record)))
            .collect();
        entries.sort_by(|a, b| {
            (a.kind != EntryKind::Dir, &a.name).cmp(&(b.kind != EntryKind::Dir, &b.name))
        });
        Ok(entries)
    }

    /// A file's contents, refused past `cap` bytes.
    pub async fn read_file(&self, path: &str, cap: u64) -> anyhow::Result<FileData> {
        let absolute = confine(self.work_dir(), path)?;
        let output_cap = usize::try_from(cap.saturating_add(1)).unwrap_or(usize::MAX);
        let bytes = self
            .files_op(&["read", &absolute, &cap.to_string()], None, output_cap)
            .await?;
        let binary = looks_binary(&bytes);
        Ok(FileData { bytes, binary })
    }

    /// Writes a file, creating parent folders; replaces it atomically.
    pub async fn write_file(&self, path: &str, contents: Vec<u8>) -> anyhow::Result<()> {
        let absolute = confine(self.work_dir(), path)?;
        self.files_op(&["write", &absolute], Some(contents), 4096)
            .await
            .map(drop)
    }

    pub async fn make_dir(&self, path: &str) -> anyhow::Result<()> {
        let absolute = confine(self.work_dir(), path)?;
        self.files_op(&["mkdir", &absolute], None, 4096)
            .await
            .map(drop)
    }

    /// Renames or moves an entry; refuses to replace an existing one.
    pub async fn rename(&self, from: &str, to: &str) -> anyhow::Result<()> {
        let from = confine(self.work_dir(), from)?;
        let to = confine(self.work_dir(), to)?;
        if from == self.work_dir() || to == self.work_dir() {
            bail!("the workspace folder itself cannot be renamed");
        }
        self.files_op(&["rename", &from, &to], None, 4096)
            .await
            .map(drop)
    }

    /// Deletes a file or a folder with its contents.
    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        let absolute = confine(self.work_dir(), path)?;
        if absolute == self.work_dir() {
            bail!("the workspace folder itself cannot be deleted");
        }
        self.files_op(&["delete", &absolute], None, 4096)
            .await
            .map(drop)
    }
}

fn parse_find_record(record: &str) -> Option<DirEntry> {
    let mut fields = record.splitn(4, '\t');
    let kind = match fields.next()? {
        "f" => EntryKind::File,
        "d" => EntryKind::Dir,
        "l" => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    let size = fields.next()?.parse().ok()?;
    let mtime = fields.next()?.parse().ok()?;
    let name = fields.next()?.to_string();
    Some(DirEntry {
        name,
        kind,
        size,
        mtime,
    })
}

/// Text unless the start holds a NUL byte or is not UTF-8 (allowing a
/// character cut at the sniff boundary).
pub fn looks_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(BINARY_SNIFF_LEN)];
    if head.contains(&0) {
        return true;
    }
    match std::str::from_utf8(head) {
        Ok(_) => false,
        Err(err) => err.error_len().is_some() || head.len() == bytes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_paths_inside_are_accepted() {
        let w = "/workspace";
        assert_eq!(confine(w, "main.py").unwrap(), "/workspace/main.py");
        assert_eq!(confine(w, "./a/./b/../c").unwrap(), "/workspace/a/c");
        assert_eq!(confine(w, "").unwrap(), "/workspace");
        assert_eq!(confine(w, ".").unwrap(), "/workspace");
        assert_eq!(confine(w, "/workspace").unwrap(), "/workspace");
        assert_eq!(confine(w, "/workspace/x/y").unwrap(), "/workspace/x/y");
        assert_eq!(confine(w, "a//b/").unwrap(), "/workspace/a/b");
        assert_eq!(confine(w, "a/..").unwrap(), "/workspace");
    }

    #[test]
    fn escapes_are_refused() {
        let w = "/workspace";
        for bad in [
            "..",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "/workspace2/x",
            "/workspace/../etc",
            "/",
            "a\0b",
            "a\nb",
        ] {
            assert!(confine(w, bad).is_err(), "{bad:?} should be refused");
        }
        let err = confine(w, "../x").unwrap_err();
        assert!(err.to_string().contains("`../x`"), "{err}");
    }

    #[test]
    fn find_records() {
        let entry = parse_find_record("f\t12\t1700000000.5\tmy file.txt").unwrap();
        assert_eq!(entry.name, "my file.txt");
        assert_eq!(entry.kind, EntryKind::File);
        assert_eq!(entry.size, 12);
        assert_eq!(
            parse_find_record("d\t4096\t1.0\tsrc").unwrap().kind,
            EntryKind::Dir
        );
        assert_eq!(parse_find_record("garbage"), None);
    }

    #[test]
    fn binary_detection() {
        assert!(!looks_binary(b"print('hi')\n"));
        assert!(!looks_binary("héllo".as_bytes()));
        assert!(looks_binary(b"\x89PNG\r\n\x1a\n\0\0"));
        assert!(looks_binary(&[0xff, 0xfe, 0x41]));
        // A multi-byte character cut at the sniff boundary is still text.
        let mut long = vec![b'a'; BINARY_SNIFF_LEN - 1];
        long.extend_from_slice("é".as_bytes());
        assert!(!looks_binary(&long));
    }
}
