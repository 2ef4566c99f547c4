//! File operations confined to a sandbox's workspace.
//!
//! They run inside the sandbox as its own uid, through the engine's exec API,
//! so they work against a remote engine and never gain rights the sandboxed
//! code lacks. A path is checked twice: lexically here (no `..` above the
//! workspace, no absolute path elsewhere), then inside the sandbox after
//! resolving symlinks — including ones the sandboxed code made — in the same
//! shell that then touches the file.
//!
//! In a sandbox with the runner they go through it instead (see
//! [`super::runner::files`]), which resolves paths beneath the workspace
//! one component at a time without following links; the refusals and their
//! messages are the same.

use std::fmt;

use anyhow::{anyhow, bail};

use super::exec::ExecRequest;
use super::names;
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

/// One entry of a folder listing.
#[derive(Debug, Clone, PartialEq)]
pub struct DirEntry {
    /// The name's bytes: anything but NUL and `/`, not necessarily UTF-8.
    /// Show it with [`DirEntry::display_name`].
    pub name: Vec<u8>,
    pub kind: EntryKind,
    /// Bytes, as `stat` reports them (a symlink's own size).
    pub size: u64,
    /// Unix seconds.
    pub mtime: f64,
}

impl DirEntry {
    /// The name as text, escaped reversibly ([`names::escape`]): the form
    /// the CLI and the Files pane show and take back.
    pub fn display_name(&self) -> String {
        names::escape(&self.name)
    }
}

/// JSON form: `name` is the escaped text form, which `sandpit files` takes
/// back; `name_bytes` (an array of numbers) is added exactly when that text
/// is not the name itself, i.e. the name is not plain printable UTF-8
/// without a backslash. Without `name_bytes`, `name` is the exact name.
impl serde::Serialize for DirEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Shown<'a> {
            name: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            name_bytes: Option<&'a [u8]>,
            kind: EntryKind,
            size: u64,
            mtime: f64,
        }
        Shown {
            name: self.display_name(),
            name_bytes: (!names::is_plain(&self.name)).then_some(self.name.as_slice()),
            kind: self.kind,
            size: self.size,
            mtime: self.mtime,
        }
        .serialize(serializer)
    }
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
    /// The path as requested, escaped ([`names::escape`]).
    pub path: String,
    pub reason: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "path `{}` refused: {}", self.path, self.reason)
    }
}

impl std::error::Error for PathError {}

/// The absolute path inside the sandbox for `requested`, which is relative to
/// the workspace or absolute inside it; `..` may not climb above it. Paths
/// are bytes: a name may hold any byte but NUL (and `/`, which separates
/// names). The result has no `.`, `..`, empty or trailing parts.
///
/// Errors: a NUL byte, an absolute path outside `work_dir`, or a `..` above it.
pub fn confine(work_dir: &str, requested: impl AsRef<[u8]>) -> Result<Vec<u8>, PathError> {
    let requested = requested.as_ref();
    let refuse = |reason: &str| PathError {
        path: names::escape(requested),
        reason: reason.to_string(),
    };
    if requested.contains(&0) {
        return Err(refuse("it contains a NUL byte"));
    }
    let work_dir = work_dir.trim_end_matches('/');
    let relative = if let Some(rest) = requested.strip_prefix(b"/") {
        let inner = work_dir.trim_start_matches('/').as_bytes();
        let inside = rest == inner
            || rest
                .strip_prefix(inner)
                .is_some_and(|tail| tail.starts_with(b"/"));
        if !inside {
            return Err(refuse(&format!("it is outside the workspace {work_dir}")));
        }
        &requested[work_dir.len()..]
    } else {
        requested
    };
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in relative.split(|byte| *byte == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() {
                    return Err(refuse(&format!("`..` leaves the workspace {work_dir}")));
                }
            }
            part => parts.push(part),
        }
    }
    let mut path = work_dir.as_bytes().to_vec();
    for part in parts {
        path.push(b'/');
        path.extend_from_slice(part);
    }
    if path.is_empty() {
        // The workspace is `/` itself.
        path.push(b'/');
    }
    Ok(path)
}

/// Shell run for every operation: `$W` is the workspace, `$1` the operation,
/// then paths (encoded by `names::printf_escape`), then other arguments. Exit codes 80+
/// are refusals, read back by `files_op`: 83 and 88 say the first or the
/// second path resolves outside the workspace.
const FILES_SH: &str = r#"
set -u
W=$(realpath -e -- "$SANDPIT_WORKSPACE") || exit 84
inside() { case "$1" in "$W"|"$W"/*) return 0;; esac; return 1; }
# Sets R to the bytes argument $1 stands for. The x keeps trailing newlines,
# which $(...) strips.
dec() { R=$(printf '%bx' "$1"); R=${R%x}; }
# Sets R to path $1 with every symlink resolved (the last part may not exist
# yet); exits with $2 unless that is inside the workspace.
full() {
  R=$(realpath -m -- "$1" && echo x) || exit "$2"
  R=${R%?x}
  inside "$R" || exit "$2"
}
# Sets R to path $1 with its parent resolved only: the entry itself (even a
# symlink) is the target.
entry() {
  n=${1##*/}; d=${1%/*}
  [ -n "$n" ] || exit "$2"
  full "${d:-/}" "$2"
  R="$R/$n"
}
op=$1; shift
case $op in
  ls)
    dec "$1"; full "$R" 83; p=$R
    [ -e "$p" ] || exit 81
    [ -d "$p" ] || exit 86
    find "$p" -mindepth 1 -maxdepth 1 -printf '%y\t%s\t%T@\t%f\0' ;;
  read)
    dec "$1"; full "$R" 83; p=$R
    [ -e "$p" ] || exit 81
    [ -f "$p" ] || exit 87
    # find's %s where stat(1) fails: gVisor releases before 2023 answer
    # statx with EINVAL.
    size=$(stat -c %s -- "$p" 2>/dev/null || find "$p" -maxdepth 0 -printf %s)
    [ "$size" -le "$2" ] || { printf '%s' "$size"; exit 85; }
    cat -- "$p" ;;
  write)
    dec "$1"; full "$R" 83; p=$R
    [ -d "$p" ] && exit 87
    dir=${p%/*}
    mkdir -p -- "$dir" || exit 1
    # Re-check after creating parents: none of them may be a symlink out.
    full "$dir" 83
    # Written whole under a temporary name, then renamed over the file, so
    # the file is always the old or the new contents. The name carries the
    # exec's tag: a temporary whose exec is gone (its sandbox removed
    # mid-write) is a leftover, cleared here.
    for old in "$dir"/.sandpit-write.*; do
      t=${old##*/.sandpit-write.}
      case $t in ''|*[!0-9a-f-]*) continue ;; esac
      [ -f "$old" ] || continue
      live=""
      for e in /proc/[0-9]*/environ; do
        tr '\0' '\n' < "$e" 2>/dev/null | grep -qxF "SANDPIT_EXEC_TAG=$t" && { live=1; break; }
      done
      [ -n "$live" ] || rm -f -- "$old"
    done
    tmp="$dir/.sandpit-write.${SANDPIT_EXEC_TAG:-$$}"
    cat > "$tmp" || { rm -f -- "$tmp"; exit 1; }
    # A client killed mid-transfer closes stdin early, and cat ends as if
    # the data were complete: only the whole size may replace the file.
    # (gVisor answers stat's statx with EINVAL: find reads the size then.)
    got=$(stat -c %s -- "$tmp" 2>/dev/null || find "$tmp" -maxdepth 0 -printf %s)
    [ "$got" = "$2" ] || { rm -f -- "$tmp"; printf '%s' "$got"; exit 89; }
    mv -f -- "$tmp" "$p" || { rm -f -- "$tmp"; exit 1; } ;;
  mkdir)
    dec "$1"; full "$R" 83
    mkdir -p -- "$R" ;;
  rename)
    dec "$1"; entry "$R" 83; from=$R
    dec "$2"; entry "$R" 88; to=$R
    [ -e "$from" ] || [ -L "$from" ] || exit 81
    [ -e "$to" ] || [ -L "$to" ] && exit 82
    mkdir -p -- "${to%/*}" && mv -T -- "$from" "$to" ;;
  delete)
    dec "$1"; entry "$R" 83; p=$R
    [ -e "$p" ] || [ -L "$p" ] || exit 81
    rm -rf -- "$p" ;;
  *) exit 2 ;;
esac
"#;

impl Sandbox {
    /// Runs `op` of `FILES_SH` on `paths` (absolute, confined), then `extra`
    /// arguments, and turns its refusals into errors naming the path each
    /// is about.
    async fn files_op(
        &self,
        op: &str,
        paths: &[&[u8]],
        extra: &[String],
        stdin: Option<Vec<u8>>,
        output_cap: usize,
    ) -> anyhow::Result<Vec<u8>> {
        let mut argv: Vec<String> = ["sh", "-c", FILES_SH, "sandpit-files", op]
            .map(str::to_string)
            .into();
        argv.extend(
            paths
                .iter()
                .map(|path| crate::engine::names::printf_escape(path)),
        );
        argv.extend_from_slice(extra);
        let mut request = ExecRequest::argv(argv)
            .env("SANDPIT_WORKSPACE", self.work_dir())
            .output_cap(output_cap)
            .work_dir("/");
        request.stdin = stdin;
        let result = self.exec_collect(request).await?;
        if result.truncated {
            bail!(
                "file operation `{op}` on `{}` returned more than {output_cap} bytes; \
                 the file grew past the read limit while it was read",
                names::escape(paths.first().copied().unwrap_or_default())
            );
        }
        match result.exit_code {
            Some(0) => Ok(result.stdout),
            code => Err(self.refusal(
                op,
                code,
                paths,
                result.stdout_text().trim(),
                extra.first().map_or("?", String::as_str),
                &result.stderr,
            )),
        }
    }

    /// The error for a file operation's refusal `code`: `FILES_SH`'s exit
    /// status, or the runner's error code (the same numbers). `detail` is
    /// the size a too-large read or a cut-short write reports, `asked` the
    /// size a write asked for, `message` what the operation said otherwise.
    pub(crate) fn refusal(
        &self,
        op: &str,
        code: Option<i64>,
        paths: &[&[u8]],
        detail: &str,
        asked: &str,
        message: &[u8],
    ) -> anyhow::Error {
        let shown = |index: usize| names::escape(paths.get(index).copied().unwrap_or_default());
        let path = shown(0);
        let outside = |path: String| {
            anyhow!(
                "path `{path}` refused: it resolves outside the workspace {} (through a symlink)",
                self.work_dir()
            )
        };
        match code {
            Some(81) => anyhow!("`{path}` does not exist in the workspace"),
            Some(82) => anyhow!("`{}` exists already", shown(1)),
            Some(83) => outside(path),
            Some(88) => outside(shown(1)),
            Some(84) => anyhow!(
                "the workspace {} is missing in the sandbox",
                self.work_dir()
            ),
            Some(85) => anyhow!("`{path}` is {detail} bytes, over the read limit"),
            Some(86) => anyhow!("`{path}` is not a folder"),
            Some(87) => anyhow!("`{path}` is a folder, not a file"),
            Some(89) => anyhow!(
                "the write of `{path}` was cut short ({detail} of {asked} bytes arrived); the file is unchanged"
            ),
            other => {
                let all: Vec<String> = (0..paths.len()).map(shown).collect();
                anyhow!(
                    "file operation `{op}` on `{}` failed (exit {}): {}",
                    all.join("` and `"),
                    other.map_or("unknown".to_string(), |code| code.to_string()),
                    // Names the sandboxed code chose reach a terminal here:
                    // escaped, no control character gets through.
                    super::names::escape(message.trim_ascii())
                )
            }
        }
    }

    /// Entries of a folder in the workspace, folders first, then by name
    /// (bytewise).
    pub async fn list_dir(&self, path: impl AsRef<[u8]>) -> anyhow::Result<Vec<DirEntry>> {
        let absolute = confine(self.work_dir(), path)?;
        let listed = match self.runner_files().await {
            Some(runner) => runner.list(self, &absolute).await?,
            None => self
                .files_op("ls", &[&absolute], &[], None, 16 << 20)
                .await?
                .split(|byte| *byte == 0)
                .filter(|record| !record.is_empty())
                .filter_map(parse_find_record)
                .collect(),
        };
        let mut entries: Vec<DirEntry> = listed
            .into_iter()
            .filter(|entry| !is_write_temporary(&entry.name))
            .collect();
        entries.sort_by(|a, b| {
            (a.kind != EntryKind::Dir, &a.name).cmp(&(b.kind != EntryKind::Dir, &b.name))
        });
        Ok(entries)
    }

    /// A file's contents, refused past `cap` bytes.
    pub async fn read_file(&self, path: impl AsRef<[u8]>, cap: u64) -> anyhow::Result<FileData> {
        let absolute = confine(self.work_dir(), path)?;
        let bytes = match self.runner_files().await {
            Some(runner) => runner.read(self, &absolute, cap).await?,
            None => {
                let output_cap = usize::try_from(cap.saturating_add(1)).unwrap_or(usize::MAX);
                self.files_op("read", &[&absolute], &[cap.to_string()], None, output_cap)
                    .await?
            }
        };
        let binary = looks_binary(&bytes);
        Ok(FileData { bytes, binary })
    }

    /// Writes a file, creating parent folders; replaces it atomically: the
    /// file holds the old or the new contents whatever happens to sandpit or
    /// the sandbox meanwhile. Errors: the path is refused, or the contents
    /// did not all arrive (the file is then unchanged).
    pub async fn write_file(
        &self,
        path: impl AsRef<[u8]>,
        contents: Vec<u8>,
    ) -> anyhow::Result<()> {
        let absolute = confine(self.work_dir(), path)?;
        if let Some(runner) = self.runner_files().await {
            return runner.write(self, &absolute, contents).await;
        }
        let size = contents.len().to_string();
        self.files_op("write", &[&absolute], &[size], Some(contents), 4096)
            .await
            .map(drop)
    }

    /// Makes a folder and any missing parents; an existing folder is fine.
    pub async fn make_dir(&self, path: impl AsRef<[u8]>) -> anyhow::Result<()> {
        let absolute = confine(self.work_dir(), path)?;
        if let Some(runner) = self.runner_files().await {
            return runner.mkdir(self, &absolute).await;
        }
        self.files_op("mkdir", &[&absolute], &[], None, 4096)
            .await
            .map(drop)
    }

    /// Renames or moves an entry; refuses to replace an existing one. An
    /// error about the destination names the destination.
    pub async fn rename(&self, from: impl AsRef<[u8]>, to: impl AsRef<[u8]>) -> anyhow::Result<()> {
        let from = confine(self.work_dir(), from)?;
        let to = confine(self.work_dir(), to)?;
        let work_dir = self.work_dir().trim_end_matches('/').as_bytes();
        if from == work_dir || to == work_dir {
            bail!("the workspace folder itself cannot be renamed");
        }
        if let Some(runner) = self.runner_files().await {
            return runner.rename(self, &from, &to).await;
        }
        self.files_op("rename", &[&from, &to], &[], None, 4096)
            .await
            .map(drop)
    }

    /// Deletes a file or a folder with its contents.
    pub async fn delete(&self, path: impl AsRef<[u8]>) -> anyhow::Result<()> {
        let absolute = confine(self.work_dir(), path)?;
        if absolute == self.work_dir().trim_end_matches('/').as_bytes() {
            bail!("the workspace folder itself cannot be deleted");
        }
        if let Some(runner) = self.runner_files().await {
            return runner.delete(self, &absolute).await;
        }
        self.files_op("delete", &[&absolute], &[], None, 4096)
            .await
            .map(drop)
    }
}

/// Whether `name` is a temporary of a write in progress or cut short:
/// `.sandpit-write.` and an exec tag (hex digits and dashes), the names
/// `FILES_SH`'s write uses and clears. Listings leave them out.
pub fn is_write_temporary(name: &[u8]) -> bool {
    name.strip_prefix(b".sandpit-write.").is_some_and(|tag| {
        !tag.is_empty()
            && tag
                .iter()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte) || *byte == b'-')
    })
}

/// One `find -printf '%y\t%s\t%T@\t%f'` record; the name is the last field,
/// so tabs in it stay.
fn parse_find_record(record: &[u8]) -> Option<DirEntry> {
    let mut fields = record.splitn(4, |byte| *byte == b'\t');
    let kind = match fields.next()? {
        b"f" => EntryKind::File,
        b"d" => EntryKind::Dir,
        b"l" => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    let number = |field: &[u8]| std::str::from_utf8(field).ok().map(str::to_string);
    let size = number(fields.next()?)?.parse().ok()?;
    let mtime = number(fields.next()?)?.parse().ok()?;
    let name = fields.next()?.to_vec();
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

    fn confined(w: &str, path: impl AsRef<[u8]>) -> String {
        names::escape(&confine(w, path).unwrap())
    }

    #[test]
    fn write_temporaries_are_told_from_user_files() {
        assert!(is_write_temporary(b".sandpit-write.1f-18a2b-0"));
        assert!(!is_write_temporary(b".sandpit-write."));
        assert!(!is_write_temporary(b".sandpit-write.notes"));
        assert!(!is_write_temporary(b"sandpit-write.1f-2-3"));
    }

    #[test]
    fn relative_and_absolute_paths_inside_are_accepted() {
        let w = "/workspace";
        assert_eq!(confined(w, "main.py"), "/workspace/main.py");
        assert_eq!(confined(w, "./a/./b/../c"), "/workspace/a/c");
        assert_eq!(confined(w, ""), "/workspace");
        assert_eq!(confined(w, "."), "/workspace");
        assert_eq!(confined(w, "/workspace"), "/workspace");
        assert_eq!(confined(w, "/workspace/x/y"), "/workspace/x/y");
        assert_eq!(confined(w, "a//b/"), "/workspace/a/b");
        assert_eq!(confined(w, "a/.."), "/workspace");
        assert_eq!(confined("/", "a/b"), "/a/b");
        assert_eq!(confined("/", "a/.."), "/");
    }

    #[test]
    fn any_byte_but_nul_makes_a_name() {
        let w = "/workspace";
        assert_eq!(
            confine(w, b"d/\xc3(\n\t\x1b.txt\n").unwrap(),
            b"/workspace/d/\xc3(\n\t\x1b.txt\n"
        );
        assert_eq!(confined(w, "-rf/ *'\"\\"), "/workspace/-rf/ *'\"\\\\");
        let long = "é".repeat(127) + "x";
        assert_eq!(confined(w, &long), format!("/workspace/{long}"));
        // `..` inside a name is just a name.
        assert_eq!(confined(w, "..x/x.."), "/workspace/..x/x..");
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
        ] {
            assert!(confine(w, bad).is_err(), "{bad:?} should be refused");
        }
        let err = confine(w, "../x").unwrap_err();
        assert!(err.to_string().contains("`../x`"), "{err}");
        let err = confine(w, b"\xff/../../x").unwrap_err();
        assert!(err.to_string().contains("`\\xff/../../x`"), "{err}");
        let err = confine(w, "a\0b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "path `a\\x00b` refused: it contains a NUL byte"
        );
    }

    #[test]
    fn shell_args_are_ascii_octal_escapes() {
        assert_eq!(
            crate::engine::names::printf_escape(b"/w/a-b_c.d"),
            "/w/a-b_c.d"
        );
        assert_eq!(
            crate::engine::names::printf_escape(b"a b\n\xc3\\"),
            "a\\0040b\\0012\\0303\\0134"
        );
        for byte in 1..=255u8 {
            assert!(crate::engine::names::printf_escape(&[byte]).is_ascii());
        }
    }

    #[test]
    fn find_records() {
        let entry = parse_find_record(b"f\t12\t1700000000.5\tmy file.txt").unwrap();
        assert_eq!(entry.name, b"my file.txt");
        assert_eq!(entry.kind, EntryKind::File);
        assert_eq!(entry.size, 12);
        assert_eq!(
            parse_find_record(b"d\t4096\t1.0\tsrc").unwrap().kind,
            EntryKind::Dir
        );
        let odd = parse_find_record(b"f\t1\t1.0\ta\tb\n\xc3(").unwrap();
        assert_eq!(odd.name, b"a\tb\n\xc3(");
        assert_eq!(odd.display_name(), "a\\tb\\n\\xc3(");
        assert_eq!(parse_find_record(b"garbage"), None);
    }

    #[test]
    fn json_names_are_lossless() {
        let entry = |name: &[u8]| DirEntry {
            name: name.to_vec(),
            kind: EntryKind::File,
            size: 1,
            mtime: 2.0,
        };
        let plain = serde_json::to_value(entry("héllo.py".as_bytes())).unwrap();
        assert_eq!(
            plain,
            serde_json::json!({"name": "héllo.py", "kind": "file", "size": 1, "mtime": 2.0})
        );
        let odd = serde_json::to_value(entry(b"a\\\n\xc3")).unwrap();
        assert_eq!(odd["name"], "a\\\\\\n\\xc3");
        assert_eq!(odd["name_bytes"], serde_json::json!([97, 92, 10, 195]));
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
