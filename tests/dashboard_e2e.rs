//! The real binary in tmux against the real engine: create a session with
//! keystrokes and see it listed with live CPU and memory; the engine goes
//! away and comes back (a proxy socket, and a real restart of an engine of
//! the test's own).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(args: &[&str]) -> String {
    let output = Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux is needed for this test (.ci/run installs it)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits until the screen satisfies `done`, returning it; panics with the
/// last screen at the deadline.
fn wait_for_screen(
    session: &str,
    deadline: Duration,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let until = Instant::now() + deadline;
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", session]);
        if done(&screen) {
            return screen;
        }
        assert!(
            Instant::now() < until,
            "timed out waiting for {what}; screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct TmuxSession(String);

impl Drop for TmuxSession {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

/// Starts the dashboard in a detached tmux session with its own config,
/// state and workspace folders under `home`; `env` adds settings. The pane
/// stays after the program exits, for its exit status.
fn start_dashboard(name: &str, home: &std::path::Path, env: &str, size: (u16, u16)) -> TmuxSession {
    let command = format!(
        "env XDG_CONFIG_HOME={home}/config XDG_STATE_HOME={home}/state {env} {bin} --workspace-root {home}/ws",
        home = home.display(),
        bin = env!("CARGO_BIN_EXE_sandpit"),
    );
    let (width, height) = (size.0.to_string(), size.1.to_string());
    tmux(&[
        "new-session",
        "-d",
        "-s",
        name,
        "-x",
        &width,
        "-y",
        &height,
        &command,
    ]);
    tmux(&["set-option", "-t", name, "remain-on-exit", "on"]);
    TmuxSession(name.to_string())
}

#[test]
fn create_a_session_from_the_dashboard_and_see_it_live() {
    let user = common::test_user("e2e");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    let home = tempfile::tempdir().unwrap();
    let name = format!("sandpit-e2e-{}", std::process::id());
    let ca = common::build_options()
        .ca_file
        .map(|path| format!("SANDPIT_BUILD_CA_FILE={}", path.display()))
        .unwrap_or_default();
    let session = start_dashboard(&name, home.path(), &ca, (120, 35));

    // Connected: the title names the engine's version and counts sessions.
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the dashboard connected",
        |screen| screen.contains("Sessions (") && screen.contains(" running · theme"),
    );
    tmux(&["send-keys", "-t", &name, "n"]);
    wait_for_screen(
        &name,
        Duration::from_secs(10),
        "the new-session dialog",
        |screen| screen.contains("New session"),
    );
    tmux(&["send-keys", "-t", &name, "-l", user.as_str()]);
    tmux(&["send-keys", "-t", &name, "Enter"]);

    // Listed as running, with a CPU figure and a memory figure from live stats.
    let screen = wait_for_screen(
        &name,
        Duration::from_secs(120),
        "the session with live stats",
        |screen| {
            screen.lines().any(|line| {
                line.contains(user.as_str())
                    && line.contains("running")
                    && line
                        .split_whitespace()
                        .any(|word| word.parse::<f64>().is_ok() && word.contains('.'))
                    && line.contains("iB")
            })
        },
    );
    assert!(screen.contains("Stats"), "{screen}");

    // A session made by another sandpit process appears, and goes when removed.
    let other = common::test_user("e2c");
    let _other_cleanup = common::Cleanup(vec![other.container_name()]);
    let cli = |args: &[&str]| {
        let output = common::output_within(
            Command::new(env!("CARGO_BIN_EXE_sandpit"))
                .arg("--workspace-root")
                .arg(home.path().join("ws"))
                .args(args),
            common::CLI_DEADLINE,
            "the sandpit CLI",
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    cli(&["new", other.as_str()]);
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the CLI's session to appear",
        |screen| screen.contains(other.as_str()),
    );
    cli(&["rm", other.as_str()]);
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the CLI's session to go",
        |screen| !screen.contains(other.as_str()),
    );

    // q quits cleanly; the session keeps running. tmux sees the pane's
    // output end before it reaps the process, so wait for the exit status.
    tmux(&["send-keys", "-t", &name, "q"]);
    wait_for_screen(
        &name,
        Duration::from_secs(10),
        "the dashboard's exit status",
        |_| {
            !tmux(&["display-message", "-p", "-t", &name, "#{pane_dead_status}"])
                .trim()
                .is_empty()
        },
    );
    let status = tmux(&["display-message", "-p", "-t", &name, "#{pane_dead_status}"]);
    assert_eq!(status.trim(), "0");
    let state = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Status}}", &user.container_name()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "running");
    drop(session);
}

/// Forwards a unix socket to the engine's, standing in for an engine that
/// comes back after being away.
fn start_engine_proxy(path: std::path::PathBuf) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::UnixListener::bind(&path).unwrap();
            // Bounded: the test needs a handful of connections.
            for _ in 0..10_000 {
                let Ok((mut client, _)) = listener.accept().await else {
                    break;
                };
                tokio::spawn(async move {
                    if let Ok(mut engine) =
                        tokio::net::UnixStream::connect("/var/run/docker.sock").await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                    }
                });
            }
        });
    })
}

#[test]
fn engine_down_shows_a_banner_and_the_dashboard_reconnects() {
    let home = tempfile::tempdir().unwrap();
    let socket = home.path().join("engine.sock");
    let name = format!("sandpit-e2e-down-{}", std::process::id());
    let _session = start_dashboard(
        &name,
        home.path(),
        &format!("DOCKER_HOST=unix://{}", socket.display()),
        (120, 35),
    );
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the engine-down banner",
        |screen| screen.contains("Docker engine not answering"),
    );
    let _proxy = start_engine_proxy(socket);
    wait_for_screen(&name, Duration::from_secs(30), "the reconnect", |screen| {
        screen.contains(" running · theme") && !screen.contains("not answering")
    });
    tmux(&["send-keys", "-t", &name, "q"]);
}

fn peak_rss_mib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches(" kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib / 1024)
}

#[test]
fn type_a_program_run_it_and_survive_a_flood() {
    let user = common::test_user("run");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    let home = tempfile::tempdir().unwrap();
    let workspace_root = home.path().join("ws");
    let created = common::output_within(
        Command::new(env!("CARGO_BIN_EXE_sandpit"))
            .arg("--workspace-root")
            .arg(&workspace_root)
            .args(["new", user.as_str()]),
        common::CLI_DEADLINE,
        "the sandpit CLI",
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let name = format!("sandpit-e2e-run-{}", std::process::id());
    let _session = start_dashboard(&name, home.path(), "", (140, 40));
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the session listed",
        |screen| screen.contains(user.as_str()) && screen.contains(" running · theme"),
    );
    // Filter down to the session, then go to the editor.
    tmux(&["send-keys", "-t", &name, "/"]);
    tmux(&["send-keys", "-t", &name, "-l", user.as_str()]);
    tmux(&[
        "send-keys",
        "-t",
        &name,
        "Enter",
        "Tab",
        "Tab",
        "Tab",
        "Tab",
    ]);
    wait_for_screen(&name, Duration::from_secs(10), "the editor", |screen| {
        screen.contains(&format!("Editor — {user}: main.py"))
    });
    tmux(&["send-keys", "-t", &name, "-l", "print('sum is', 2 + 40)"]);
    tmux(&["send-keys", "-t", &name, "Enter", "F5"]);
    wait_for_screen(
        &name,
        Duration::from_secs(60),
        "the program's output",
        |screen| screen.contains("sum is 42") && screen.contains("exit 0 in"),
    );
    // The buffer was saved to the workspace on the host before it ran.
    let saved =
        std::fs::read_to_string(workspace_root.join(user.as_str()).join("main.py")).unwrap();
    assert!(saved.starts_with("print('sum is', 2 + 40)\n"), "{saved}");
    // The run is in the activity log, as the dashboard's, with its status.
    let log = sandpit::activity::ActivityLog::open(&workspace_root).unwrap();
    let rows = log
        .query(&sandpit::activity::ActivityQuery {
            user: Some(user.clone()),
            source: Some(sandpit::activity::Source::Dashboard),
            ..Default::default()
        })
        .unwrap();
    assert!(
        rows.iter().any(|row| row.activity.action == "run"
            && row.activity.exit_code == Some(0)
            && row.activity.summary.contains("main.py")),
        "{rows:?}"
    );

    // 100 MB of output: the run is cut at the cap, the dashboard keeps
    // answering keys and its memory stays bounded by the scrollback.
    tmux(&[
        "send-keys",
        "-t",
        &name,
        "-l",
        "import sys; [sys.stdout.write('x' * 99 + '\\n') for _ in range(1000000)]",
    ]);
    tmux(&["send-keys", "-t", &name, "Enter", "F5"]);
    wait_for_screen(
        &name,
        Duration::from_secs(120),
        "the flood to be cut",
        |screen| screen.contains("output truncated"),
    );
    tmux(&["send-keys", "-t", &name, "Escape"]);
    tmux(&["send-keys", "-t", &name, "Tab"]);
    wait_for_screen(
        &name,
        Duration::from_secs(10),
        "the dashboard to answer a key",
        |screen| screen.contains("new · ") || screen.contains("build"),
    );
    // A file made from the Files pane lands in the workspace on the host.
    tmux(&["send-keys", "-t", &name, "Tab", "Tab"]);
    wait_for_screen(&name, Duration::from_secs(10), "the files pane", |screen| {
        screen.contains("main.py") && screen.contains("a new file")
    });
    tmux(&["send-keys", "-t", &name, "a"]);
    tmux(&["send-keys", "-t", &name, "-l", "from-files.txt"]);
    tmux(&["send-keys", "-t", &name, "Enter"]);
    let made = workspace_root.join(user.as_str()).join("from-files.txt");
    let until = Instant::now() + Duration::from_secs(30);
    while !made.exists() {
        assert!(Instant::now() < until, "{} was not created", made.display());
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for_screen(
        &name,
        Duration::from_secs(10),
        "the new file listed",
        |screen| screen.contains("from-files.txt"),
    );

    let pid = tmux(&["display-message", "-p", "-t", &name, "#{pane_pid}"]);
    let peak = peak_rss_mib(pid.trim());
    assert!(peak > 0, "no dashboard process found");
    assert!(peak < 200, "the dashboard grew to {peak} MiB");
}

#[test]
fn sigterm_restores_the_terminal() {
    let home = tempfile::tempdir().unwrap();
    let name = format!("sandpit-e2e-term-{}", std::process::id());
    let _session = start_dashboard(&name, home.path(), "", (120, 35));
    wait_for_screen(&name, Duration::from_secs(30), "the dashboard", |screen| {
        screen.contains("Sessions (")
    });
    assert_eq!(
        tmux(&["display-message", "-p", "-t", &name, "#{alternate_on}"]).trim(),
        "1"
    );
    let pid = tmux(&["display-message", "-p", "-t", &name, "#{pane_pid}"]);
    let killed = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_for_screen(&name, Duration::from_secs(10), "a clean exit", |_| {
        tmux(&["display-message", "-p", "-t", &name, "#{pane_dead_status}"]).trim() == "0"
    });
    assert_eq!(
        tmux(&["display-message", "-p", "-t", &name, "#{alternate_on}"]).trim(),
        "0",
        "the alternate screen was left"
    );
}

/// Every single-letter key of the default keymap, after a line of code.
fn paste_text() -> String {
    let mut text = String::from("def parse(x): return x\n");
    for action in sandpit::tui::keymap::Action::ALL {
        for key in sandpit::tui::keymap::KeyMap::default().keys(action) {
            if let crossterm::event::KeyCode::Char(c) = key.code {
                text.push(c);
            }
        }
    }
    text.push_str("kpyKPY\n");
    text
}

/// Destructive engine events for `container` between two Unix times.
fn destructive_events(container: &str, since: u64, until: u64) -> Vec<String> {
    let mut command = Command::new("docker");
    command
        .args(["events", "--format", "{{.Action}}"])
        .args(["--since", &since.to_string(), "--until", &until.to_string()])
        .args(["--filter", &format!("container={container}")]);
    let output = common::output_within(
        &mut command,
        std::time::Duration::from_secs(60),
        "docker events over a past window",
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|action| ["kill", "die", "stop", "destroy", "restart"].contains(action))
        .map(str::to_string)
        .collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[test]
fn a_paste_deletes_nothing_and_lands_in_the_editor_as_text() {
    let user = common::test_user("paste");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    let home = tempfile::tempdir().unwrap();
    let workspace_root = home.path().join("ws");
    let cli = |args: &[&str]| {
        let output = common::output_within(
            Command::new(env!("CARGO_BIN_EXE_sandpit"))
                .arg("--workspace-root")
                .arg(&workspace_root)
                .args(args),
            common::CLI_DEADLINE,
            "the sandpit CLI",
        );
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    cli(&["new", user.as_str()]);
    cli(&[
        "exec",
        "--user",
        user.as_str(),
        "--",
        "sh",
        "-c",
        "echo precious > work.txt",
    ]);
    let precious = workspace_root.join(user.as_str()).join("work.txt");
    assert!(precious.is_file());
    let since = unix_now();

    let name = format!("sandpit-e2e-paste-{}", std::process::id());
    let _session = start_dashboard(&name, home.path(), "", (140, 40));
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the session listed",
        |screen| screen.contains(user.as_str()) && screen.contains(" running · theme"),
    );
    // The session selected, with the Sessions pane focused.
    tmux(&["send-keys", "-t", &name, "/"]);
    tmux(&["send-keys", "-t", &name, "-l", user.as_str()]);
    tmux(&["send-keys", "-t", &name, "Enter"]);
    wait_for_screen(
        &name,
        Duration::from_secs(10),
        "the filter kept",
        |screen| screen.contains("Sessions (1"),
    );
    let text = paste_text();
    for letter in ['d', 'p', 's', 'r', 'q', 'k'] {
        assert!(text.contains(letter), "{letter} in {text:?}");
    }
    tmux(&["set-buffer", "-b", &name, &text]);

    // A bracketed paste is text: ignored here, with a word why.
    tmux(&["paste-buffer", "-p", "-b", &name, "-t", &name]);
    wait_for_screen(
        &name,
        Duration::from_secs(10),
        "the paste to be ignored",
        |screen| screen.contains("pasted text ignored"),
    );

    // Without bracketed paste the same text arrives as a burst of keys:
    // none of them stops, restarts, deletes, purges or quits.
    tmux(&["paste-buffer", "-b", &name, "-t", &name]);
    wait_for_screen(
        &name,
        Duration::from_secs(10),
        "the burst's destructive keys refused",
        |screen| screen.contains("faster than anyone types"),
    );
    // Whatever dialog the burst opened, close it; then a deliberate key
    // shows that every key before it was handled.
    tmux(&["send-keys", "-t", &name, "Escape"]);
    wait_for_screen(&name, Duration::from_secs(10), "no dialog", |screen| {
        !screen.contains("New session") && !screen.contains("Delete session")
    });
    tmux(&["send-keys", "-t", &name, "?"]);
    wait_for_screen(&name, Duration::from_secs(10), "the help", |screen| {
        screen.contains("Keys — ") && screen.contains("esc close")
    });
    tmux(&["send-keys", "-t", &name, "Escape"]);

    // The engine saw nothing destructive (`--until` a second ahead also
    // gives a request in flight that long to show), and the work is there.
    let events = destructive_events(&user.container_name(), since, unix_now() + 1);
    assert!(events.is_empty(), "the paste caused {events:?}");
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "precious\n",
        "the workspace is intact"
    );
    let screen = wait_for_screen(&name, Duration::from_secs(10), "the list", |screen| {
        screen.contains("Sessions (1")
    });
    assert!(
        screen
            .lines()
            .any(|line| line.contains(user.as_str()) && line.contains("running")),
        "{screen}"
    );

    // In the editor, a pasted block lands intact, as one edit.
    tmux(&["send-keys", "-t", &name, "Tab", "Tab", "Tab", "Tab"]);
    wait_for_screen(&name, Duration::from_secs(10), "the editor", |screen| {
        screen.contains(&format!("Editor — {user}: main.py"))
    });
    tmux(&[
        "set-buffer",
        "-b",
        &name,
        "def parse(x):\n    return x\n\nprint(parse('pasted'))\n",
    ]);
    tmux(&["paste-buffer", "-p", "-b", &name, "-t", &name]);
    wait_for_screen(
        &name,
        Duration::from_secs(10),
        "the pasted block",
        |screen| {
            screen.contains("def parse(x):")
                && screen.contains("    return x")
                && screen.contains("print(parse('pasted'))")
        },
    );
    // One undo takes the whole paste back.
    tmux(&["send-keys", "-t", &name, "C-z"]);
    wait_for_screen(
        &name,
        Duration::from_secs(10),
        "the paste undone",
        |screen| !screen.contains("def parse(x):") && screen.contains("import platform"),
    );
}

/// Waits for a child to exit, killing it and failing at the deadline.
fn wait_child(
    child: &mut std::process::Child,
    deadline: Duration,
    what: &str,
) -> std::process::ExitStatus {
    let until = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Docker engine of the test's own: a second dockerd with its own socket,
/// data, state, pid file, (empty) config and network namespace, no bridge
/// and no iptables rules, started directly as scripts/docker-up starts the
/// shared one.
/// Restarting it for real disturbs no other test; the shared engine is left
/// alone. Dropping it stops it and deletes its folder.
struct PrivateEngine {
    dir: std::path::PathBuf,
    dockerd: Option<std::process::Child>,
}

impl PrivateEngine {
    fn new() -> Self {
        // Under /var/lib, beside the shared engine's data: overlay2 needs a
        // filesystem it can stack on, which a tmpfs /tmp may not be.
        let dir = std::path::PathBuf::from(format!(
            "/var/lib/sandpit-test-engine-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        let mut engine = Self { dir, dockerd: None };
        engine.start();
        engine
    }

    fn host(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.display())
    }

    fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        command.env("DOCKER_HOST", self.host());
        command
    }

    /// Starts dockerd and waits, with a deadline, until it answers.
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .unwrap();
        let dir = self.dir.display();
        // In a network namespace of its own: with no bridge, dockerd deletes
        // any `docker0` interface it sees, and the host's belongs to the
        // shared engine. Its containers have no network; its socket is a
        // file, reachable from any namespace.
        let dockerd = Command::new("unshare")
            .args(["--net", "--", "dockerd"])
            .arg(format!("--host={}", self.host()))
            .arg(format!("--data-root={dir}/data"))
            .arg(format!("--exec-root={dir}/exec"))
            .arg(format!("--pidfile={dir}/docker.pid"))
            .arg(format!("--config-file={dir}/daemon.json"))
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("this test runs a dockerd of its own; none is installed");
        self.dockerd = Some(dockerd);
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let answered = common::output_within(
                self.docker()
                    .args(["version", "--format", "{{.Server.Version}}"]),
                Duration::from_secs(30),
                "docker version against the test's engine",
            );
            if answered.status.success() {
                return;
            }
            assert!(
                Instant::now() < until,
                "timed out after 60 s waiting for the test's dockerd to answer; its log:\n{}",
                std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops dockerd (SIGTERM: it stops its containers first, as at a host
    /// shutdown) and waits, with a deadline, for it to exit.
    fn stop(&mut self) {
        let Some(mut dockerd) = self.dockerd.take() else {
            return;
        };
        let _ = Command::new("kill").arg(dockerd.id().to_string()).status();
        wait_child(
            &mut dockerd,
            Duration::from_secs(60),
            "the test's dockerd to exit",
        );
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if let Some(mut dockerd) = self.dockerd.take() {
            let _ = Command::new("kill").arg(dockerd.id().to_string()).status();
            let until = Instant::now() + Duration::from_secs(60);
            while dockerd.try_wait().ok().flatten().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = dockerd.kill();
            let _ = dockerd.wait();
        }
        // Anything still mounted below the folder goes before the folder.
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let prefix = self.dir.display().to_string();
        for point in mounts
            .lines()
            .filter_map(|line| line.split_whitespace().nth(1))
            .filter(|point| point.starts_with(&prefix))
        {
            let _ = Command::new("umount").args(["-l", point]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn engine_restart_ends_commands_and_the_dashboard_and_sessions_come_back() {
    // The shared engine's bridge must outlive the test's engine.
    let shared_bridge = std::path::Path::new("/sys/class/net/docker0");
    let had_bridge = shared_bridge.exists();
    let mut engine = PrivateEngine::new();
    // The runtime's image, copied from the shared engine: no build needed.
    let image = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { common::python_image(&common::engine().await).await });
    let loaded = common::output_within(
        Command::new("bash")
            .args([
                "-o",
                "pipefail",
                "-c",
                r#"docker save "$1" | DOCKER_HOST="$2" docker load"#,
                "load",
            ])
            .args([image.as_str(), engine.host().as_str()]),
        Duration::from_secs(180),
        "the runtime image copied to the test's engine",
    );
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );

    // Short: the Sessions column shows about 14 characters of a name.
    let user = common::test_user("rs");
    let home = tempfile::tempdir().unwrap();
    // The private engine's sandbox goes with that engine, but its workspace
    // image is mounted on this host: unmounted even when the test fails
    // (dropped before `home`).
    let _unmount = UnmountUnder(home.path().to_path_buf());
    let workspace = home.path().join("ws").join(user.as_str());
    let host = engine.host();
    let cli = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sandpit"));
        command
            .env("DOCKER_HOST", &host)
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_STATE_HOME", home.path().join("state"))
            .arg("--workspace-root")
            .arg(home.path().join("ws"))
            .args(args);
        command
    };
    let made = common::output_within(
        &mut cli(&[
            "exec",
            "--user",
            user.as_str(),
            "--",
            "sh",
            "-c",
            "echo kept > keep.txt",
        ]),
        common::CLI_DEADLINE,
        "the first command",
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let name = format!("sandpit-e2e-restart-{}", std::process::id());
    let _session = start_dashboard(
        &name,
        home.path(),
        &format!("DOCKER_HOST={}", engine.host()),
        (120, 35),
    );
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the session listed as running",
        |screen| {
            screen
                .lines()
                .any(|line| line.contains(user.as_str()) && line.contains("running"))
        },
    );

    // A command runs while the engine goes away.
    let mut running = cli(&[
        "exec",
        "--user",
        user.as_str(),
        "--",
        "sh",
        "-c",
        "touch started; sleep 300",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    while !workspace.join("started").exists() {
        assert!(
            Instant::now() < until,
            "timed out after 60 s waiting for the command to start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopped_at = Instant::now();
    engine.stop();

    // The command reports an error, while the engine is still away.
    let status = wait_child(
        &mut running,
        Duration::from_secs(60),
        "the command to end once the engine went away",
    );
    let output = running.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("command when the engine stopped: {status}; stderr: {stderr}");
    assert!(!status.success(), "the cut command must not report success");
    assert!(!stderr.contains("panicked"), "{stderr}");
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the engine-down banner",
        |screen| screen.contains("Docker engine not answering"),
    );

    engine.start();
    eprintln!(
        "engine away for {:.1} s",
        stopped_at.elapsed().as_secs_f64()
    );
    wait_for_screen(&name, Duration::from_secs(60), "the reconnect", |screen| {
        !screen.contains("not answering") && screen.contains(user.as_str())
    });

    // The session comes back with its workspace, and the dashboard sees it.
    let after = common::output_within(
        &mut cli(&["exec", "--user", user.as_str(), "--", "cat", "keep.txt"]),
        common::CLI_DEADLINE,
        "a command after the restart",
    );
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&after.stdout), "kept\n");
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the session running again",
        |screen| {
            screen
                .lines()
                .any(|line| line.contains(user.as_str()) && line.contains("running"))
        },
    );
    tmux(&["send-keys", "-t", &name, "q"]);
    let removed = common::output_within(
        engine.docker().args(["rm", "-f", &user.container_name()]),
        Duration::from_secs(60),
        "removing the session from the test's engine",
    );
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    drop(engine);
    assert_eq!(
        shared_bridge.exists(),
        had_bridge,
        "the test's engine touched the host's docker0"
    );
}

/// Unmounts every mount under a folder when dropped.
struct UnmountUnder(std::path::PathBuf);

impl Drop for UnmountUnder {
    fn drop(&mut self) {
        common::unmount_under(&self.0);
    }
}
