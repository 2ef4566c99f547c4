//! Drives the built `sandpit-runner serve` over pipes, on the host (no
//! engine needed). Every wait has a deadline and says what it waited for.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use sandpit_runner::proto::{
    self, ClientFrame, Decoder, Exit, MAX_FRAME, PROTOCOL_VERSION, Run, RunnerFrame, code,
};

const WAIT: Duration = Duration::from_secs(20);

struct Runner {
    child: Child,
    stdin: Option<ChildStdin>,
    frames: Receiver<Result<RunnerFrame, String>>,
    background: bool,
    /// From HelloOk: the serving process (the daemon's, when reached).
    pid: u32,
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sandpit-runner-test-{name}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Runner {
    fn start(workspace: &Path, key: &[u8], daemon_dir: Option<&Path>) -> Runner {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sandpit-runner"));
        command
            .arg("serve")
            .env("SANDPIT_WORKSPACE", workspace)
            .current_dir(workspace)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(dir) = daemon_dir {
            command.env("SANDPIT_RUNNER_DIR", dir);
        }
        let mut child = command.spawn().unwrap();
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut decoder = Decoder::<RunnerFrame>::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                decoder.push(&buf[..n]);
                loop {
                    match decoder.next() {
                        Ok(Some(frame)) => {
                            if tx.send(Ok(frame)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(err) => {
                            let _ = tx.send(Err(err.to_string()));
                            return;
                        }
                    }
                }
            }
        });
        let mut runner = Runner {
            child,
            stdin,
            frames: rx,
            background: false,
            pid: 0,
        };
        runner.send(&ClientFrame::Hello {
            version: PROTOCOL_VERSION,
            key: key.to_vec(),
        });
        match runner.next("HelloOk") {
            RunnerFrame::HelloOk {
                version,
                background,
                pid,
            } => {
                assert_eq!(version, PROTOCOL_VERSION);
                runner.background = background;
                runner.pid = pid;
            }
            other => panic!("expected HelloOk, got {other:?}"),
        }
        runner
    }

    fn send(&mut self, frame: &ClientFrame) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        self.send_raw(&bytes);
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    fn next(&self, what: &str) -> RunnerFrame {
        match self.frames.recv_timeout(WAIT) {
            Ok(Ok(frame)) => frame,
            Ok(Err(err)) => panic!("bad frame while waiting for {what}: {err}"),
            Err(RecvTimeoutError::Timeout) => panic!("no frame within {WAIT:?} waiting for {what}"),
            Err(RecvTimeoutError::Disconnected) => panic!("runner output ended waiting for {what}"),
        }
    }

    /// Collects a command's frames until its Exit (or Error).
    fn collect(&self, id: u32) -> Outcome {
        let mut outcome = Outcome::default();
        loop {
            match self.next(&format!("the end of command {id}")) {
                RunnerFrame::Started { id: got, pid, .. } if got == id => outcome.pid = Some(pid),
                RunnerFrame::Output {
                    id: got,
                    stream,
                    data,
                } if got == id => {
                    assert!(outcome.pid.is_some(), "Output before Started");
                    if stream == proto::STDOUT {
                        outcome.stdout.extend(data);
                    } else {
                        outcome.stderr.extend(data);
                    }
                }
                RunnerFrame::Exit(exit) if exit.id == id => {
                    outcome.exit = Some(exit);
                    return outcome;
                }
                RunnerFrame::Error {
                    id: got, message, ..
                } if got == id => {
                    outcome.error = Some(String::from_utf8_lossy(&message).into_owned());
                    return outcome;
                }
                other => panic!("unexpected frame for command {id}: {other:?}"),
            }
        }
    }

    fn run(&mut self, run: Run) -> Outcome {
        let id = run.id;
        self.send(&ClientFrame::Run(run));
        self.collect(id)
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn wait_exit(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "runner did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default, Debug)]
struct Outcome {
    pid: Option<u32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    exit: Option<Exit>,
    error: Option<String>,
}

impl Outcome {
    fn exit(&self) -> &Exit {
        self.exit
            .as_ref()
            .unwrap_or_else(|| panic!("no Exit: {:?}", self.error))
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

fn argv(id: u32, args: &[&str]) -> Run {
    Run {
        id,
        argv: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        output_cap: 1 << 20,
        ..Run::default()
    }
}

fn shell(id: u32, script: &str) -> Run {
    argv(id, &["/bin/sh", "-c", script])
}

struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill with integer arguments.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks.
    let ret = unsafe { libc::kill(pid, 0) };
    ret == 0
}

/// Waits until none of `pids` is alive; false if some still are at the deadline.
fn all_gone(pids: &[i32], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if pids.iter().all(|&p| !alive(p)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pids_in(text: &str) -> Vec<i32> {
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[test]
fn true_argv_shell_and_output_order() {
    let ws = temp_dir("basic");
    let mut r = Runner::start(&ws, b"", None);
    let out = r.run(argv(1, &["true"]));
    assert_eq!(out.exit().exit_code, 0);
    assert!(out.pid.is_some());
    let out = r.run(shell(
        2,
        "echo one; echo e1 >&2; echo two; echo e2 >&2; exit 3",
    ));
    assert_eq!(out.exit().exit_code, 3);
    assert_eq!(out.stdout(), "one\ntwo\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "e1\ne2\n");
    assert_eq!(out.exit().stdout_bytes, 8);
    // Work dir and environment; the runner's SANDPIT_* are not passed on.
    let mut run = shell(3, "pwd; echo \"$FOO|${SANDPIT_WORKSPACE:-unset}\"");
    run.cwd = b"/".to_vec();
    run.env = vec![(b"FOO".to_vec(), b"bar".to_vec())];
    let out = r.run(run);
    assert_eq!(out.stdout(), "/\nbar|unset\n");
}

#[test]
fn exit_codes_as_the_engine_reports_them() {
    let ws = temp_dir("codes");
    let mut r = Runner::start(&ws, b"", None);
    let out = r.run(argv(1, &["no-such-program-xyz"]));
    assert_eq!(out.exit().exit_code, 127);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-program-xyz"));
    let script = ws.join("plain.sh");
    std::fs::write(&script, "echo hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = r.run(argv(2, &[script.to_str().unwrap()]));
    assert_eq!(out.exit().exit_code, 126);
    let out = r.run(shell(3, "kill -TERM $$"));
    assert_eq!(out.exit().exit_code, 143);
    assert_eq!(out.exit().signal, Some(15));
    let mut run = argv(4, &["true"]);
    run.cwd = b"/no/such/dir".to_vec();
    assert_eq!(r.run(run).exit().exit_code, 126);
    // An empty argv is refused, the runner lives on.
    let out = r.run(Run {
        id: 5,
        ..Run::default()
    });
    assert!(out.error.is_some());
    assert_eq!(r.run(argv(6, &["true"])).exit().exit_code, 0);
}

#[test]
fn stdin_is_streamed() {
    let ws = temp_dir("stdin");
    let mut r = Runner::start(&ws, b"", None);
    let mut run = argv(1, &["cat"]);
    run.stdin = true;
    run.output_cap = 8 << 20;
    r.send(&ClientFrame::Run(run));
    r.send(&ClientFrame::Stdin {
        id: 1,
        data: b"hello ".to_vec(),
    });
    let big = vec![b'x'; 3 << 20];
    for chunk in big.chunks(proto::MAX_CHUNK) {
        r.send(&ClientFrame::Stdin {
            id: 1,
            data: chunk.to_vec(),
        });
    }
    r.send(&ClientFrame::StdinEof { id: 1 });
    let out = r.collect(1);
    assert_eq!(out.exit().exit_code, 0);
    assert_eq!(out.stdout.len(), 6 + (3 << 20));
    assert!(out.stdout.starts_with(b"hello x"));
    // Without stdin the command reads EOF at once.
    assert_eq!(r.run(argv(3, &["cat"])).exit().exit_code, 0);
}

#[test]
fn heavy_output_arrives_byte_exact_and_in_order_per_stream() {
    // Megabytes at a time: the runner splices them (pipe to connection in
    // the kernel) while other frames wait; the bytes must be the file's.
    let ws = temp_dir("heavy");
    let data: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(ws.join("data"), &data).unwrap();
    let mut r = Runner::start(&ws, b"", None);
    let mut run = shell(
        1,
        "cat data; cat data >&2; echo -n mid; cat data; cat data >&2",
    );
    run.output_cap = 64 << 20;
    r.send(&ClientFrame::Run(run));
    // A second command on the same connection at once: its frames
    // interleave with the first one's without breaking either.
    let mut run = shell(2, "cat data");
    run.output_cap = 64 << 20;
    r.send(&ClientFrame::Run(run));
    let (mut out, mut err, mut second) = (Vec::new(), Vec::new(), Vec::new());
    let mut exits = 0;
    while exits < 2 {
        match r.next("the heavy commands' output") {
            RunnerFrame::Output {
                id: 1,
                stream,
                data,
            } => {
                if stream == proto::STDOUT {
                    out.extend(data);
                } else {
                    err.extend(data);
                }
            }
            RunnerFrame::Output { id: 2, data, .. } => second.extend(data),
            RunnerFrame::Exit(exit) => {
                assert_eq!(exit.exit_code, 0, "{exit:?}");
                assert!(!exit.truncated);
                exits += 1;
            }
            RunnerFrame::Started { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut want = data.clone();
    want.extend_from_slice(b"mid");
    want.extend_from_slice(&data);
    assert!(out == want, "stdout differs ({} bytes)", out.len());
    assert!(err == [&data[..], &data[..]].concat(), "stderr differs");
    assert!(second == data, "second command's stdout differs");
}

#[test]
fn a_cap_within_heavy_output_keeps_exactly_the_first_bytes() {
    let ws = temp_dir("heavy-cap");
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(ws.join("data"), &data).unwrap();
    let mut r = Runner::start(&ws, b"", None);
    let mut run = shell(1, "cat data; sleep 30");
    run.output_cap = 2_500_001;
    let out = r.run(run);
    assert!(out.exit().truncated, "{out:?}");
    assert_eq!(out.stdout.len(), 2_500_001);
    assert!(out.stdout == data[..2_500_001], "kept bytes differ");
}

#[test]
fn output_cap_stops_the_command_and_flags_it() {
    let ws = temp_dir("cap");
    let mut r = Runner::start(&ws, b"", None);
    let mut run = argv(1, &["yes"]);
    run.output_cap = 1000;
    let started = Instant::now();
    let out = r.run(run);
    assert!(out.exit().truncated, "{out:?}");
    assert_eq!(out.stdout.len(), 1000);
    // Killed by the runner (the pipe is drained, not closed), as the engine path reports it.
    assert_eq!(out.exit().exit_code, 137);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn timeout_kills_setsid_double_fork_env_scrubbed_and_tagged_children() {
    let ws = temp_dir("timeout");
    let mut r = Runner::start(&ws, b"", None);
    let script = r#"
        setsid sh -c 'sleep 300 & echo $!'
        (sleep 301 & echo $!)
        env -i /bin/sh -c 'sleep 302 & echo $!'
        SANDPIT_EXEC_TAG=x SANDPIT_KILLER=1 sh -c 'sleep 303 & echo $!'
        sh -c 'trap "" TERM HUP; exec sleep 304' & echo $!
        echo $$
        sleep 305
    "#;
    let mut run = shell(1, script);
    run.timeout_ms = 1000;
    let started = Instant::now();
    let out = r.run(run);
    let took = started.elapsed();
    let exit = out.exit();
    assert!(exit.timed_out, "{out:?}");
    assert!(exit.killed_verified, "{out:?}");
    assert_eq!(exit.survivors, 0);
    assert!(took < Duration::from_millis(2500), "timeout took {took:?}");
    let pids = pids_in(&out.stdout());
    assert_eq!(pids.len(), 6, "pids printed: {}", out.stdout());
    assert!(
        all_gone(&pids, Duration::from_millis(100)),
        "survivors among {pids:?}"
    );
}

#[test]
fn cancel_kills_the_tree() {
    let ws = temp_dir("cancel");
    let mut r = Runner::start(&ws, b"", None);
    r.send(&ClientFrame::Run(shell(
        1,
        "(sleep 300 & echo $!); echo ready; sleep 300",
    )));
    let mut stdout = String::new();
    loop {
        match r.next("output of the command to cancel") {
            RunnerFrame::Started { .. } => {}
            RunnerFrame::Output { data, .. } => {
                stdout.push_str(&String::from_utf8_lossy(&data));
                if stdout.contains("ready") {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let started = Instant::now();
    r.send(&ClientFrame::Cancel { id: 1 });
    let out = r.collect(1);
    assert!(out.exit().cancelled);
    assert!(out.exit().killed_verified);
    assert_eq!(out.exit().exit_code, 137);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(all_gone(&pids_in(&stdout), Duration::from_millis(100)));
}

#[test]
fn client_eof_kills_foreground_commands_within_two_seconds() {
    let ws = temp_dir("eof");
    let mut r = Runner::start(&ws, b"", None);
    r.send(&ClientFrame::Run(shell(
        1,
        "setsid sh -c 'sleep 300 & echo $!'; echo $$; sleep 300",
    )));
    let mut stdout = String::new();
    while pids_in(&stdout).len() < 2 {
        if let RunnerFrame::Output { data, .. } = r.next("the pids of the command") {
            stdout.push_str(&String::from_utf8_lossy(&data));
        }
    }
    let pids = pids_in(&stdout);
    assert!(pids.iter().all(|&p| alive(p)));
    r.close_stdin();
    assert!(
        all_gone(&pids, Duration::from_secs(2)),
        "still alive 2 s after the client left: {pids:?}"
    );
    r.wait_exit(Duration::from_secs(2));
}

#[test]
fn background_survives_its_client_and_is_read_and_stopped_from_another() {
    let ws = temp_dir("bg");
    let daemon_dir = temp_dir("bgsock").join("d");
    let key = b"0123456789abcdef-test-key";
    let mut first = Runner::start(&ws, key, Some(&daemon_dir));
    assert!(first.background, "the daemon was not reached");
    // The daemon lives as long as its sandbox; here, as long as the test.
    let _daemon = KillOnDrop(first.pid as i32);
    assert_ne!(
        first.pid,
        first.child.id(),
        "HelloOk came from serve, not the daemon"
    );
    let mut run = shell(
        1,
        "echo hi; (sleep 300 & echo $!); echo $$; echo oops >&2; sleep 300",
    );
    run.background = true;
    first.send(&ClientFrame::Run(run));
    let background_id = match first.next("Started of the background command") {
        RunnerFrame::Started {
            background_id: Some(bg),
            ..
        } => bg,
        other => panic!("expected Started with a background id, got {other:?}"),
    };
    // A foreground command of the same client dies with it.
    first.send(&ClientFrame::Run(shell(2, "echo $$; sleep 300")));
    let fg_pid = loop {
        if let RunnerFrame::Output { id: 2, data, .. } = first.next("the foreground pid") {
            break pids_in(&String::from_utf8_lossy(&data))[0];
        }
    };
    first.close_stdin();
    first.wait_exit(Duration::from_secs(2));
    assert!(
        all_gone(&[fg_pid], Duration::from_secs(2)),
        "foreground survived its client"
    );

    let mut second = Runner::start(&ws, key, Some(&daemon_dir));
    assert!(second.background);
    assert_eq!(second.pid, first.pid, "a second daemon was started");
    // Its output arrives in the ring as the shell writes it.
    let deadline = Instant::now() + WAIT;
    let text = loop {
        second.send(&ClientFrame::BgRead {
            id: 1,
            background_id,
            stream: proto::STDOUT,
            offset: 0,
            max: 4096,
        });
        let RunnerFrame::BgData { data, .. } = second.next("BgData") else {
            panic!("expected BgData");
        };
        let text = String::from_utf8_lossy(&data).into_owned();
        if pids_in(&text).len() >= 2 || Instant::now() >= deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(text.starts_with("hi\n"), "{text:?}");
    let pids = pids_in(&text);
    assert_eq!(pids.len(), 2, "{text:?}");
    assert!(
        pids.iter().all(|&p| alive(p)),
        "background died with its client"
    );
    second.send(&ClientFrame::BgList { id: 2 });
    match second.next("BgEntries") {
        RunnerFrame::BgEntries { list, .. } => {
            let bg = list
                .iter()
                .find(|b| b.background_id == background_id)
                .unwrap();
            assert!(bg.running);
        }
        other => panic!("expected BgEntries, got {other:?}"),
    }
    // An impostor key does not reach the daemon: foreground only.
    let third = Runner::start(&ws, b"another-key-0123456789", Some(&daemon_dir));
    assert!(!third.background);
    drop(third);

    second.send(&ClientFrame::BgStop {
        id: 3,
        background_id,
    });
    assert!(matches!(
        second.next("Done of BgStop"),
        RunnerFrame::Done { id: 3 }
    ));
    assert!(
        all_gone(&pids, Duration::from_millis(200)),
        "BgStop left {pids:?}"
    );
    second.send(&ClientFrame::BgList { id: 4 });
    match second.next("BgEntries") {
        RunnerFrame::BgEntries { list, .. } => {
            let bg = list
                .iter()
                .find(|b| b.background_id == background_id)
                .unwrap();
            assert!(!bg.running);
            assert_eq!(bg.exit_code, Some(137));
        }
        other => panic!("expected BgEntries, got {other:?}"),
    }
    second.send(&ClientFrame::BgRead {
        id: 5,
        background_id,
        stream: proto::STDERR,
        offset: 0,
        max: 100,
    });
    match second.next("BgData of stderr") {
        RunnerFrame::BgData {
            data, next_offset, ..
        } => {
            assert_eq!(data, b"oops\n");
            assert_eq!(next_offset, 5);
        }
        other => panic!("expected BgData, got {other:?}"),
    }
}

#[test]
fn many_commands_at_once() {
    let ws = temp_dir("many");
    let mut r = Runner::start(&ws, b"", None);
    let n = 60;
    for id in 1..=n {
        r.send(&ClientFrame::Run(shell(
            id,
            &format!("sleep 0.2; echo {id}"),
        )));
    }
    let started = Instant::now();
    let mut outputs = std::collections::HashMap::new();
    let mut done = 0;
    while done < n {
        match r.next("outputs of many commands") {
            RunnerFrame::Started { .. } => {}
            RunnerFrame::Output { id, data, .. } => {
                outputs.entry(id).or_insert_with(Vec::new).extend(data);
            }
            RunnerFrame::Exit(exit) => {
                assert_eq!(exit.exit_code, 0);
                done += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    for id in 1..=n {
        assert_eq!(outputs[&id], format!("{id}\n").into_bytes());
    }
    // They ran side by side, not one after another (60 × 0.2 s).
    assert!(started.elapsed() < Duration::from_secs(6));
}

fn fs_answer(r: &Runner, what: &str) -> RunnerFrame {
    r.next(what)
}

fn expect_error(frame: RunnerFrame, want: u32) {
    match frame {
        RunnerFrame::Error { code, .. } => assert_eq!(code, want, "error code"),
        other => panic!("expected Error {want}, got {other:?}"),
    }
}

#[test]
fn file_operations_and_symlink_escapes() {
    let ws = temp_dir("files");
    let outside = temp_dir("outside");
    std::fs::write(outside.join("secret"), "secret").unwrap();
    std::os::unix::fs::symlink(&outside, ws.join("escape")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", ws.join("up")).unwrap();
    let mut r = Runner::start(&ws, b"", None);

    let write = |r: &mut Runner, id: u32, path: &str, data: &[u8]| {
        r.send(&ClientFrame::Write {
            id,
            path: path.as_bytes().to_vec(),
            size: data.len() as u64,
            data: data.to_vec(),
        });
        r.next("write answer")
    };
    assert!(matches!(
        write(&mut r, 1, "a/b/c.txt", b"hello"),
        RunnerFrame::Done { id: 1 }
    ));
    assert_eq!(std::fs::read(ws.join("a/b/c.txt")).unwrap(), b"hello");
    // A chunked write.
    r.send(&ClientFrame::Write {
        id: 2,
        path: b"big".to_vec(),
        size: 10,
        data: b"01234".to_vec(),
    });
    r.send(&ClientFrame::WriteData {
        id: 2,
        data: b"56789".to_vec(),
    });
    assert!(matches!(
        r.next("chunked write"),
        RunnerFrame::Done { id: 2 }
    ));
    r.send(&ClientFrame::Read {
        id: 3,
        path: b"big".to_vec(),
        cap: 100,
    });
    match r.next("read") {
        RunnerFrame::Data {
            data,
            total_size,
            last,
            ..
        } => {
            assert_eq!(data, b"0123456789");
            assert_eq!(total_size, 10);
            assert!(last);
        }
        other => panic!("{other:?}"),
    }
    r.send(&ClientFrame::Read {
        id: 4,
        path: b"big".to_vec(),
        cap: 5,
    });
    expect_error(r.next("read over cap"), code::TOO_LARGE);
    r.send(&ClientFrame::Read {
        id: 5,
        path: b"a".to_vec(),
        cap: 5,
    });
    expect_error(r.next("read of a folder"), code::IS_A_DIR);
    r.send(&ClientFrame::Read {
        id: 6,
        path: b"nope".to_vec(),
        cap: 5,
    });
    expect_error(r.next("read of nothing"), code::NOT_FOUND);

    // Escapes: through a symlink to outside, through `..` links, absolute.
    for (id, path) in [
        (10, "escape/secret"),
        (11, "up/tmp"),
        (12, "/etc/passwd"),
        (13, "../x"),
    ] {
        r.send(&ClientFrame::Read {
            id,
            path: path.as_bytes().to_vec(),
            cap: 100,
        });
        expect_error(fs_answer(&r, "escaping read"), code::OUTSIDE);
    }
    expect_error(write(&mut r, 14, "escape/planted", b"x"), code::OUTSIDE);
    assert!(!outside.join("planted").exists());
    r.send(&ClientFrame::List {
        id: 15,
        path: b"escape".to_vec(),
    });
    expect_error(r.next("escaping list"), code::OUTSIDE);
    r.send(&ClientFrame::Mkdir {
        id: 16,
        path: b"escape/newdir".to_vec(),
    });
    expect_error(r.next("escaping mkdir"), code::OUTSIDE);
    r.send(&ClientFrame::Rename {
        id: 17,
        from: b"big".to_vec(),
        to: b"escape/big".to_vec(),
    });
    expect_error(r.next("escaping rename"), code::OUTSIDE_SECOND);

    // A symlink that stays inside is followed, absolute or relative.
    std::os::unix::fs::symlink(ws.join("a/b"), ws.join("abs-link")).unwrap();
    r.send(&ClientFrame::Read {
        id: 20,
        path: b"abs-link/c.txt".to_vec(),
        cap: 100,
    });
    assert!(matches!(
        r.next("read through an inside link"),
        RunnerFrame::Data { .. }
    ));

    // List, mkdir, rename, delete.
    r.send(&ClientFrame::Mkdir {
        id: 21,
        path: b"d1/d2".to_vec(),
    });
    assert!(matches!(r.next("mkdir"), RunnerFrame::Done { .. }));
    r.send(&ClientFrame::Rename {
        id: 22,
        from: b"big".to_vec(),
        to: b"d1/d2/moved".to_vec(),
    });
    assert!(matches!(r.next("rename"), RunnerFrame::Done { .. }));
    r.send(&ClientFrame::Rename {
        id: 23,
        from: b"a/b/c.txt".to_vec(),
        to: b"d1/d2/moved".to_vec(),
    });
    expect_error(r.next("rename onto an existing entry"), code::EXISTS);
    r.send(&ClientFrame::List {
        id: 24,
        path: b"".to_vec(),
    });
    match r.next("list") {
        RunnerFrame::Entries { entries, .. } => {
            let mut names: Vec<_> = entries
                .iter()
                .map(|e| String::from_utf8_lossy(&e.name).into_owned())
                .collect();
            names.sort();
            assert_eq!(names, ["a", "abs-link", "d1", "escape", "up"]);
            let escape = entries.iter().find(|e| e.name == b"escape").unwrap();
            assert_eq!(escape.kind, proto::entry_kind::SYMLINK);
        }
        other => panic!("{other:?}"),
    }
    // Deleting the escaping symlink removes the link, not the target.
    r.send(&ClientFrame::Delete {
        id: 25,
        path: b"escape".to_vec(),
        recursive: true,
    });
    assert!(matches!(r.next("delete a link"), RunnerFrame::Done { .. }));
    assert!(outside.join("secret").exists());
    r.send(&ClientFrame::Delete {
        id: 26,
        path: b"d1".to_vec(),
        recursive: false,
    });
    expect_error(r.next("non-recursive delete of a full folder"), code::OTHER);
    r.send(&ClientFrame::Delete {
        id: 27,
        path: b"d1".to_vec(),
        recursive: true,
    });
    assert!(matches!(
        r.next("recursive delete"),
        RunnerFrame::Done { .. }
    ));
    assert!(!ws.join("d1").exists());
}

#[test]
fn a_symlink_swapped_in_mid_operation_never_leaks_outside() {
    let ws = temp_dir("swap");
    let outside = temp_dir("swap-outside");
    std::fs::write(outside.join("f"), "OUTSIDE").unwrap();
    std::fs::create_dir(ws.join("real")).unwrap();
    std::fs::write(ws.join("real/f"), "inside").unwrap();
    let mut r = Runner::start(&ws, b"", None);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (ws, outside, stop) = (ws.clone(), outside.clone(), stop.clone());
        std::thread::spawn(move || {
            let link = ws.join("d");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::remove_file(&link);
                let _ = std::os::unix::fs::symlink(ws.join("real"), &link);
                let _ = std::fs::remove_file(&link);
                let _ = std::os::unix::fs::symlink(&outside, &link);
            }
        })
    };
    let mut inside = 0;
    for id in 1..=400 {
        r.send(&ClientFrame::Read {
            id,
            path: b"d/f".to_vec(),
            cap: 100,
        });
        match r.next("racing read") {
            RunnerFrame::Data { data, .. } => {
                assert_eq!(data, b"inside", "read outside the workspace");
                inside += 1;
            }
            RunnerFrame::Error { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    eprintln!("racing reads: {inside} of 400 read the inside file, the rest were refused");
}

#[test]
fn oversize_frames_are_refused() {
    let ws = temp_dir("frames");
    let mut r = Runner::start(&ws, b"", None);
    r.send_raw(&((MAX_FRAME as u32) + 1).to_le_bytes());
    expect_error(r.next("a refusal of the oversize frame"), code::PROTOCOL);
    r.wait_exit(Duration::from_secs(2));
    // Before Hello, too.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandpit-runner"))
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&u32::MAX.to_le_bytes()).unwrap();
    drop(stdin);
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let mut decoder = Decoder::<RunnerFrame>::new();
    decoder.push(&out);
    assert!(matches!(
        decoder.next(),
        Ok(Some(RunnerFrame::Error {
            code: code::PROTOCOL,
            ..
        }))
    ));
    assert!(!child.wait().unwrap().success());
}

#[test]
fn true_round_trip_timing() {
    let ws = temp_dir("timing");
    let mut r = Runner::start(&ws, b"", None);
    let mut times = Vec::new();
    for id in 1..=200 {
        let started = Instant::now();
        let out = r.run(argv(id, &["/bin/true"]));
        times.push(started.elapsed());
        assert_eq!(out.exit().exit_code, 0);
    }
    times.sort();
    let mut direct = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        Command::new("/bin/true").status().unwrap();
        direct.push(started.elapsed());
    }
    direct.sort();
    eprintln!(
        "std::process::Command of `true` on the host (fork+exec+wait floor): p50 {:?}, p95 {:?}",
        direct[100], direct[190]
    );
    eprintln!(
        "runner round trip of `true` on the host: p50 {:?}, p95 {:?} (200 runs)",
        times[100], times[190]
    );
}

fn read_pids(r: &Runner, id: u32, count: usize) -> Vec<i32> {
    let mut stdout = String::new();
    while pids_in(&stdout).len() < count {
        match r.next("the pids a command prints") {
            RunnerFrame::Output { id: got, data, .. } if got == id => {
                stdout.push_str(&String::from_utf8_lossy(&data));
            }
            RunnerFrame::Started { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    pids_in(&stdout)
}

#[test]
fn a_command_that_kills_its_shepherd_still_loses_its_tree() {
    let ws = temp_dir("shepherd");
    let mut r = Runner::start(&ws, b"", None);
    // $PPID of the shell is its shepherd.
    r.send(&ClientFrame::Run(shell(
        1,
        "setsid sh -c 'sleep 300 & echo $!'; echo $$; sleep 0.2; kill -9 $PPID; sleep 300",
    )));
    let pids = read_pids(&r, 1, 2);
    let out = r.collect(1);
    assert!(out.error.is_some(), "expected an error, got {out:?}");
    assert!(
        all_gone(&pids, Duration::from_secs(2)),
        "orphans of a killed shepherd live: {pids:?}"
    );
    // The runner goes on.
    assert_eq!(r.run(argv(2, &["true"])).exit().exit_code, 0);
}

#[test]
fn killing_the_runner_kills_its_commands() {
    let ws = temp_dir("runner-killed");
    let mut r = Runner::start(&ws, b"", None);
    let mut run = shell(1, "(sleep 300 & echo $!); echo $$; sleep 300");
    run.timeout_ms = 60_000;
    r.send(&ClientFrame::Run(run));
    let pids = read_pids(&r, 1, 2);
    r.child.kill().unwrap();
    assert!(
        all_gone(&pids, Duration::from_secs(2)),
        "commands outlived the runner: {pids:?}"
    );
}

/// A pids cgroup (v1) holding at most `max` processes, when this host lets
/// the tests make one (root, writable controller); removed on drop.
struct PidsCgroup(PathBuf);

impl PidsCgroup {
    fn new(max: u32) -> Option<PidsCgroup> {
        let root = Path::new("/sys/fs/cgroup/pids");
        let dir = root.join(format!("sandpit-runner-test-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        let group = PidsCgroup(dir);
        std::fs::write(group.0.join("pids.max"), max.to_string()).ok()?;
        Some(group)
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.0).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_fork_bomb_is_killed_and_the_runner_survives_a_full_pids_limit() {
    let ws = temp_dir("bomb");
    let Some(group) = PidsCgroup::new(48) else {
        eprintln!("skipped: no writable pids cgroup here (needs root and cgroup v1 pids)");
        return;
    };
    let mut r = Runner::start(&ws, b"", None);
    group.add(r.child.id());
    // The bomb in a child, the main process a sleep that needs no fork.
    let mut bomb = shell(1, "sh -c 'b() { b | b & }; b' & exec sleep 300");
    bomb.timeout_ms = 1500;
    r.send(&ClientFrame::Run(bomb));
    std::thread::sleep(Duration::from_millis(500));
    // With the limit full, a new command gets an answer, not a hang.
    r.send(&ClientFrame::Run(argv(2, &["true"])));
    let (mut bomb_exit, mut second) = (None, None);
    let deadline = Instant::now() + WAIT;
    while bomb_exit.is_none() || second.is_none() {
        assert!(
            Instant::now() < deadline,
            "no end of the bomb and the second command"
        );
        match r.next("the bomb's end and the second command's answer") {
            RunnerFrame::Exit(exit) if exit.id == 1 => bomb_exit = Some(exit),
            RunnerFrame::Exit(exit) if exit.id == 2 => second = Some(Ok(exit.exit_code)),
            RunnerFrame::Error { id: 2, code, .. } => second = Some(Err(code)),
            _ => {}
        }
    }
    let bomb_exit = bomb_exit.unwrap();
    assert!(bomb_exit.timed_out, "{bomb_exit:?}");
    assert!(bomb_exit.killed_verified, "{bomb_exit:?}");
    eprintln!("command run while the pids limit was full: {second:?}");
    // Once the bomb is gone, commands run again.
    assert_eq!(r.run(argv(3, &["true"])).exit().exit_code, 0);
    drop(r);
}

#[test]
fn leftovers_of_an_ended_command_die_at_its_deadline_or_with_its_client() {
    let ws = temp_dir("leftovers");
    let mut r = Runner::start(&ws, b"", None);
    let mut run = shell(1, "(sleep 300 & echo $!)");
    run.timeout_ms = 700;
    let out = r.run(run);
    assert_eq!(out.exit().exit_code, 0);
    assert!(!out.exit().timed_out);
    let pids = pids_in(&out.stdout());
    assert_eq!(pids.len(), 1);
    assert!(
        alive(pids[0]),
        "the leftover is not running before the deadline"
    );
    assert!(
        all_gone(&pids, Duration::from_secs(2)),
        "a leftover outlived its command's deadline"
    );
    // Without a deadline, it lives until the client goes.
    let out = r.run(shell(2, "(sleep 300 & echo $!)"));
    let pids = pids_in(&out.stdout());
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(pids[0]));
    r.close_stdin();
    assert!(
        all_gone(&pids, Duration::from_secs(2)),
        "a leftover outlived its client"
    );
}

#[test]
fn an_impostor_daemon_is_refused_and_commands_still_run() {
    let ws = temp_dir("impostor");
    let dir = temp_dir("impostor-sock").join("d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The impostor holds the lock (no real daemon can start) and the socket.
    let lock = std::fs::File::create(dir.join("lock")).unwrap();
    // SAFETY: flock on an open file; socket/bind/listen/accept on our own
    // descriptors with a valid sockaddr_un.
    let listener = unsafe {
        use std::os::fd::AsRawFd as _;
        assert_eq!(
            libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB),
            0
        );
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let path = dir.join("sock");
        let path = path.to_str().unwrap().as_bytes();
        for (slot, byte) in addr.sun_path.iter_mut().zip(path) {
            *slot = *byte as libc::c_char;
        }
        let len = (std::mem::size_of::<libc::sa_family_t>() + path.len() + 1) as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, (&addr as *const libc::sockaddr_un).cast(), len),
            0
        );
        assert_eq!(libc::listen(fd, 8), 0);
        fd
    };
    let impostor = std::thread::spawn(move || {
        // SAFETY: accept/recv/send on descriptors this thread owns.
        unsafe {
            let conn = libc::accept(listener, std::ptr::null_mut(), std::ptr::null_mut());
            assert!(conn >= 0);
            let mut nonce = [0u8; 16];
            libc::recv(conn, nonce.as_mut_ptr().cast(), 16, 0);
            // A made-up nonce and proof.
            let answer = [7u8; 24];
            libc::send(conn, answer.as_ptr().cast(), 24, libc::MSG_NOSIGNAL);
            // Whatever comes next must not be the runner's descriptors.
            let mut buf = [0u8; 64];
            let mut control = [0u8; 64];
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = control.len() as _;
            let n = libc::recvmsg(conn, &mut msg, 0);
            libc::close(conn);
            libc::close(listener);
            (n, msg.msg_controllen)
        }
    });
    let mut r = Runner::start(&ws, b"0123456789abcdef", Some(&dir));
    assert!(!r.background, "the runner trusted an impostor");
    let (n, control) = impostor.join().unwrap();
    assert!(
        n <= 0 && control == 0,
        "the impostor was handed something: {n} bytes"
    );
    let out = r.run(shell(1, "echo fine"));
    assert_eq!(out.stdout(), "fine\n");
    let mut run = argv(2, &["true"]);
    run.background = true;
    let out = r.run(run);
    assert!(
        out.error.is_some(),
        "a background command without a daemon: {out:?}"
    );
    drop(lock);
}

#[test]
fn stdout_throughput() {
    let ws = temp_dir("throughput");
    let mut r = Runner::start(&ws, b"", None);
    let size: u64 = 256 << 20;
    let mut run = argv(1, &["head", "-c", &size.to_string(), "/dev/zero"]);
    run.output_cap = 1 << 30;
    let started = Instant::now();
    r.send(&ClientFrame::Run(run));
    let mut got = 0u64;
    loop {
        match r.next("output of the throughput command") {
            RunnerFrame::Output { data, .. } => got += data.len() as u64,
            RunnerFrame::Exit(exit) => {
                assert_eq!(exit.exit_code, 0);
                break;
            }
            RunnerFrame::Started { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let took = started.elapsed();
    assert_eq!(got, size);
    eprintln!(
        "runner stdout throughput on the host: {:.0} MB/s ({size} bytes in {took:?})",
        size as f64 / took.as_secs_f64() / 1e6
    );
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn leftovers_that_end_release_their_descriptors() {
    let ws = temp_dir("linger");
    let mut r = Runner::start(&ws, b"", None);
    assert_eq!(r.run(argv(1, &["true"])).exit().exit_code, 0);
    let baseline = fd_count(r.child.id());
    for id in 2..22 {
        assert_eq!(r.run(shell(id, "(sleep 0.2 &)")).exit().exit_code, 0);
    }
    assert!(
        fd_count(r.child.id()) > baseline,
        "no shepherd lingers for the leftovers"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // The runner notices on its next wake-up.
        assert_eq!(r.run(argv(99, &["true"])).exit().exit_code, 0);
        let now = fd_count(r.child.id());
        if now <= baseline {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "descriptors of ended leftovers kept: {now} open, {baseline} before"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_client_gone_behind_unread_stdin_still_kills_its_commands() {
    use std::os::fd::AsRawFd as _;
    let ws = temp_dir("stdin-stall");
    let mut r = Runner::start(&ws, b"", None);
    let mut run = shell(1, "echo $$; exec sleep 300");
    run.stdin = true;
    r.send(&ClientFrame::Run(run));
    let pids = read_pids(&r, 1, 1);
    // Stdin the command never reads, written until the runner stops taking
    // it (flow control).
    let stdin = r.stdin.take().unwrap();
    let fd = stdin.as_raw_fd();
    // SAFETY: fcntl on our own descriptor.
    unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
    let mut frame = Vec::new();
    ClientFrame::Stdin {
        id: 1,
        data: vec![b'x'; 64 << 10],
    }
    .encode(&mut frame);
    let (mut sent, mut at) = (0usize, 0usize);
    let mut idle_since = Instant::now();
    let deadline = Instant::now() + WAIT;
    while idle_since.elapsed() < Duration::from_millis(300) {
        assert!(
            Instant::now() < deadline,
            "the runner kept taking stdin: {sent} bytes"
        );
        // SAFETY: writing from a live buffer to our own descriptor.
        let n = unsafe { libc::write(fd, frame[at..].as_ptr().cast(), frame.len() - at) };
        if n > 0 {
            sent += n as usize;
            at = (at + n as usize) % frame.len();
            idle_since = Instant::now();
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(
        sent < 40 << 20,
        "the runner buffered {sent} bytes of unread stdin"
    );
    assert!(alive(pids[0]));
    // The client goes: its end of the pipe closes.
    drop(stdin);
    assert!(
        all_gone(&pids, Duration::from_secs(2)),
        "a command outlived its client behind unread stdin"
    );
    eprintln!(
        "stdin taken before the runner stopped reading: {} MiB",
        sent >> 20
    );
}
