//! Every file name the sandboxed code can make works: listed, read, renamed
//! and deleted through the library and through `sandpit files`, shown in the
//! escaped form and taken back in it, and through the dashboard's engine
//! worker with the paths the Files tree holds. Also: a refusal names the
//! path it is about. One sandbox for the lot.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Output};

use std::time::Duration;

use sandpit::engine::names::{escape, is_plain};
use sandpit::engine::runtimes::RuntimeSet;
use sandpit::engine::sandbox::Sandbox;
use sandpit::sessions::SessionConfig;
use sandpit::tui::collector::{self, FileOp, Request, Update};
use sandpit::tui::files::FileTree;
use tokio::sync::mpsc;

/// Names that broke file operations before: not UTF-8, control
/// characters, shell metacharacters, an option look-alike, the longest name.
fn odd_names() -> Vec<Vec<u8>> {
    let longest = "é".repeat(126) + "xyz";
    assert_eq!(longest.len(), 255);
    [
        b"bad\xc3(utf8".as_slice(),
        b"\xff\xfe",
        b"new\nline",
        b"tab\there",
        b"trailing newline\n",
        b"\n",
        b"cr\r",
        b"\x1b[31mred",
        b"with  spaces ",
        b"-leading-dash",
        "unicodé ☃ 🦀".as_bytes(),
        "bidi\u{202e}txt.py".as_bytes(),
        b"quotes ' \" `$(x)",
        b"star*?[ab]",
        b"back\\slash\\n",
        b"...",
        longest.as_bytes(),
    ]
    .into_iter()
    .map(<[u8]>::to_vec)
    .collect()
}

/// What file `index` holds.
fn body(index: usize) -> Vec<u8> {
    format!("body {index}\n").into_bytes()
}

fn join(dir: &str, name: &[u8]) -> Vec<u8> {
    let mut path = format!("{dir}/").into_bytes();
    path.extend_from_slice(name);
    path
}

/// Makes `dir/<name>` for every odd name from inside the sandbox, with the
/// sandbox's own `printf`: octal escapes in the format, all ASCII in argv.
async fn make_inside(sandbox: &Sandbox, dir: &str, names: &[Vec<u8>]) {
    let mut script = format!("set -e; mkdir -p {dir}; cd {dir}\n");
    for (index, name) in names.iter().enumerate() {
        let octal: String = name.iter().map(|byte| format!("\\{byte:03o}")).collect();
        script.push_str(&format!(
            "n=$(printf '{octal}x'); n=${{n%x}}; printf 'body {index}\\n' > \"$n\"\n"
        ));
    }
    let made = common::sh(sandbox, &script).await;
    assert_eq!(made.exit_code, Some(0), "{}", made.stderr_text());
}

async fn listed(sandbox: &Sandbox, dir: &str) -> BTreeSet<Vec<u8>> {
    sandbox
        .list_dir(dir)
        .await
        .unwrap_or_else(|err| panic!("list {dir}: {err:#}"))
        .into_iter()
        .map(|entry| entry.name)
        .collect()
}

struct Cli {
    workspace_root: tempfile::TempDir,
    user: String,
}

impl Cli {
    fn files(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sandpit"));
        command
            .arg("--workspace-root")
            .arg(self.workspace_root.path())
            .args(["files", "--user", &self.user])
            .args(args);
        if let Some(ca) = common::build_options().ca_file {
            command.env(sandpit::config::CA_FILE_ENV, ca);
        }
        common::output_within(
            &mut command,
            common::CLI_DEADLINE,
            &format!("sandpit files {args:?}"),
        )
    }

    /// Runs `files ARGS` and returns its stdout; fails unless it succeeds.
    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let output = self.files(args);
        assert!(
            output.status.success(),
            "files {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }
}

#[tokio::test]
async fn every_name_round_trips_through_the_library_and_the_cli() {
    let (sandbox, _root) = common::sandbox("names").await;
    let names = odd_names();
    let expected: BTreeSet<Vec<u8>> = names.iter().cloned().collect();

    // The library: list, read, rename, delete.
    make_inside(&sandbox, "lib", &names).await;
    assert_eq!(listed(&sandbox, "lib").await, expected);
    for (index, name) in names.iter().enumerate() {
        let shown = escape(name);
        let data = sandbox
            .read_file(join("lib", name), 1 << 20)
            .await
            .unwrap_or_else(|err| panic!("read {shown}: {err:#}"));
        assert_eq!(data.bytes, body(index), "{shown}");
        sandbox
            .rename(join("lib", name), join("moved", name))
            .await
            .unwrap_or_else(|err| panic!("rename {shown}: {err:#}"));
    }
    assert!(listed(&sandbox, "lib").await.is_empty());
    assert_eq!(listed(&sandbox, "moved").await, expected);
    for name in &names {
        sandbox
            .delete(join("moved", name))
            .await
            .unwrap_or_else(|err| panic!("delete {}: {err:#}", escape(name)));
    }
    assert!(listed(&sandbox, "moved").await.is_empty());
    // Written and made through the library, seen by the sandbox's `find`.
    for (index, name) in names.iter().enumerate() {
        let dir = join("made", name);
        sandbox.make_dir(&dir).await.unwrap();
        let mut file = dir;
        file.extend_from_slice(b"/f");
        sandbox.write_file(&file, body(index)).await.unwrap();
        assert_eq!(
            sandbox.read_file(&file, 100).await.unwrap().bytes,
            body(index)
        );
    }
    let seen = common::sh(
        &sandbox,
        "cd made && find . -mindepth 1 -maxdepth 1 -printf '%f\\0'",
    )
    .await;
    let seen: BTreeSet<Vec<u8>> = seen
        .stdout
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(seen, expected);

    // The CLI: `ls` shows escaped names, `--json` carries them losslessly,
    // and every other command takes the escaped form back.
    make_inside(&sandbox, "cli", &names).await;
    let cli = Cli {
        workspace_root: tempfile::tempdir().unwrap(),
        user: sandbox.user().to_string(),
    };
    let listing = String::from_utf8(cli.ok(&["ls", "cli"])).expect("`ls` prints UTF-8");
    // `{kind:<5} {size:>10}  {name}`: the name starts at column 18.
    let shown: BTreeSet<String> = listing
        .lines()
        .map(|line| {
            line.get(18..)
                .unwrap_or_else(|| panic!("{line:?} is not `kind size  name` in {listing}"))
                .to_string()
        })
        .collect();
    let expected_shown: BTreeSet<String> = names.iter().map(|name| escape(name)).collect();
    assert_eq!(shown, expected_shown, "{listing}");
    assert!(
        !listing.chars().any(|c| c.is_control() && c != '\n'),
        "{listing:?}"
    );

    let json: serde_json::Value =
        serde_json::from_slice(&cli.ok(&["ls", "--json", "cli"])).unwrap();
    let mut from_json = BTreeSet::new();
    for entry in json.as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let bytes = match entry.get("name_bytes") {
            Some(bytes) => {
                let bytes: Vec<u8> = serde_json::from_value(bytes.clone()).unwrap();
                assert!(!is_plain(&bytes), "{name}: name_bytes only when needed");
                assert_eq!(escape(&bytes), name);
                bytes
            }
            None => name.as_bytes().to_vec(),
        };
        from_json.insert(bytes);
    }
    assert_eq!(from_json, expected);

    for (index, name) in names.iter().enumerate() {
        let shown = escape(name);
        let from = format!("cli/{shown}");
        let to = format!("cli-moved/{shown}");
        assert_eq!(cli.ok(&["cat", &from]), body(index), "{shown}");
        cli.ok(&["mv", &from, &to]);
        assert_eq!(cli.ok(&["cat", &to]), body(index), "{shown}");
        cli.ok(&["rm", &to]);
    }
    assert!(listed(&sandbox, "cli").await.is_empty());
    assert!(listed(&sandbox, "cli-moved").await.is_empty());

    through_the_files_pane(&sandbox, &names).await;

    // A name that looks like an option, at the top: after `--`.
    sandbox.write_file("-rf", b"x".to_vec()).await.unwrap();
    cli.ok(&["rm", "--", "-rf"]);
    assert!(!listed(&sandbox, ".").await.contains(b"-rf".as_slice()));

    // Each name can be run with a runtime's `run` template, as the editor's
    // F5 and `sandpit run` do.
    for (index, name) in names.iter().enumerate() {
        let shown = escape(name);
        let script = join("run", name);
        sandbox
            .write_file(&script, format!("echo ran {index}\n").into_bytes())
            .await
            .unwrap();
        let command = sandpit::engine::runtimes::run_command("sh {file}", &script);
        let result = sandbox
            .exec_collect(sandpit::engine::exec::ExecRequest::shell(command))
            .await
            .unwrap();
        assert_eq!(
            result.stdout_text(),
            format!("ran {index}\n"),
            "{shown}: {}",
            result.stderr_text()
        );
    }

    // A bad escape is refused before anything runs, saying where.
    let bad = cli.files(&["cat", "a\\qb"]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("unknown escape `\\q` at character 2"),
        "{stderr}"
    );
    sandbox.remove(true).await.unwrap();
}

/// Waits for the first update `pick` accepts, failing after a deadline.
async fn next_update<T>(
    updates: &mut mpsc::UnboundedReceiver<Update>,
    what: &str,
    mut pick: impl FnMut(Update) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let update = tokio::time::timeout_at(deadline, updates.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} from the engine worker within 60 s"))
            .unwrap_or_else(|| panic!("the engine worker ended before {what}"));
        if let Update::Failure(error) = &update {
            panic!("the engine worker failed while waiting for {what}: {error}");
        }
        if let Some(found) = pick(update) {
            return found;
        }
    }
}

/// The dashboard's engine worker, fed the paths the Files tree holds (the
/// escaped names it lists): open, rename and delete each odd name.
async fn through_the_files_pane(sandbox: &Sandbox, names: &[Vec<u8>]) {
    make_inside(sandbox, "pane", names).await;
    let root = tempfile::tempdir().unwrap();
    let mut config = SessionConfig::new(root.path().to_path_buf());
    config.build = common::build_options();
    // Reaping is not what is tested here.
    config.idle_timeout = Duration::ZERO;
    let (update_tx, mut updates) = mpsc::unbounded_channel();
    let (requests, request_rx) = mpsc::unbounded_channel();
    let activity =
        sandpit::activity::ActivityLog::open(root.path()).expect("an activity log in a temp dir");
    let worker = collector::spawn(
        config,
        RuntimeSet::builtin().unwrap(),
        activity,
        update_tx,
        request_rx,
    );
    let user = sandbox.user().to_string();
    let list = |path: &str| Request::ListDir {
        user: user.clone(),
        path: path.to_string(),
    };
    let mut tree = FileTree::default();
    for dir in ["", "pane"] {
        requests.send(list(dir)).unwrap();
        let entries = next_update(&mut updates, "a folder listing", |update| match update {
            Update::DirListing { path, result, .. } if path == dir => Some(result),
            _ => None,
        })
        .await
        .unwrap_or_else(|err| panic!("list {dir:?}: {err}"));
        tree.expand(dir);
        tree.set_listing(dir.to_string(), entries);
    }
    let rows: Vec<String> = tree
        .rows()
        .into_iter()
        .map(|row| row.path)
        .filter(|path| path.starts_with("pane/"))
        .collect();
    assert_eq!(rows.len(), names.len());

    for (index, name) in names.iter().enumerate() {
        let path = format!("pane/{}", escape(name));
        assert!(rows.contains(&path), "{path} not in {rows:?}");
        requests
            .send(Request::OpenFile {
                user: user.clone(),
                path: path.clone(),
            })
            .unwrap();
        let opened = next_update(&mut updates, "the opened file", |update| match update {
            Update::FileOpened {
                path: opened,
                result,
                ..
            } if opened == path => Some(result),
            _ => None,
        })
        .await
        .unwrap_or_else(|err| panic!("open {path}: {err}"));
        assert_eq!(opened.bytes, body(index), "{path}");

        let to = format!("pane-moved/{}", escape(name));
        for op in [
            FileOp::Rename {
                from: path.clone(),
                to: to.clone(),
            },
            FileOp::Delete(to.clone()),
        ] {
            requests
                .send(Request::FileOp {
                    user: user.clone(),
                    op,
                })
                .unwrap();
            next_update(&mut updates, "the files changed", |update| match update {
                Update::FilesChanged { .. } => Some(()),
                _ => None,
            })
            .await;
        }
    }
    assert!(listed(sandbox, "pane").await.is_empty());
    assert!(listed(sandbox, "pane-moved").await.is_empty());
    drop(requests);
    worker.abort();
}

#[tokio::test]
async fn a_refusal_names_the_path_it_is_about() {
    let (sandbox, _root) = common::sandbox("names-err").await;
    let made = common::sh(&sandbox, "echo ok > ok.txt && ln -s /tmp link").await;
    assert_eq!(made.exit_code, Some(0), "{}", made.stderr_text());
    let cli = Cli {
        workspace_root: tempfile::tempdir().unwrap(),
        user: sandbox.user().to_string(),
    };

    // The destination goes out through a link: the destination is named.
    let moved = cli.files(&["mv", "ok.txt", "link/out.txt"]);
    assert_eq!(moved.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&moved.stderr);
    assert!(
        stderr.contains("path `/workspace/link/out.txt` refused") && !stderr.contains("ok.txt"),
        "{stderr}"
    );
    // The source goes out: the source is named.
    let moved = cli.files(&["mv", "link/x", "in.txt"]);
    let stderr = String::from_utf8_lossy(&moved.stderr);
    assert!(
        stderr.contains("path `/workspace/link/x` refused") && !stderr.contains("in.txt"),
        "{stderr}"
    );
    // The destination exists: the destination is named.
    sandbox
        .write_file("other.txt", b"x".to_vec())
        .await
        .unwrap();
    let err = sandbox.rename("ok.txt", "other.txt").await.unwrap_err();
    assert_eq!(err.to_string(), "`/workspace/other.txt` exists already");
    // The source is missing: the source is named, escaped.
    let err = sandbox
        .rename(b"gone\n\xc3".as_slice(), "new.txt")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`/workspace/gone\\n\\xc3` does not exist in the workspace"
    );
    // Nothing moved.
    assert_eq!(
        common::sh(&sandbox, "cat ok.txt; ls -A /tmp")
            .await
            .stdout_text(),
        "ok\n"
    );
    sandbox.remove(true).await.unwrap();
}
