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

    // UPTIME is live: computed from the start time, it advances while
    // nothing else happens to the session.
    let first = uptime_seconds(&screen, user.as_str())
        .unwrap_or_else(|| panic!("no uptime for {user} in\n{screen}"));
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the uptime to advance by 2 s",
        |screen| uptime_seconds(screen, user.as_str()).is_some_and(|now| now >= first + 2),
    );

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

/// The UPTIME shown for `user` in the Sessions pane (`45s`, `12m 05s`,
/// `3h 07m`, `2d 04h`: the row's last cells), in seconds.
fn uptime_seconds(screen: &str, user: &str) -> Option<u64> {
    // The row is the Sessions pane's cells that start with the user (the
    // Stats pane's title names the user too).
    let row = screen
        .lines()
        .flat_map(|line| line.split(['│', '┃']))
        .find(|cells| cells.starts_with(user))?;
    let mut seconds = 0;
    let mut found = false;
    for word in row.split_whitespace().rev() {
        let unit = match word.chars().last()? {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => break,
        };
        let Ok(value) = word[..word.len() - 1].parse::<u64>() else {
            break;
        };
        seconds += value * unit;
        found = true;
    }
    found.then_some(seconds)
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
        // "esc to close", or "↑/↓ scroll, esc close" when the keys do not fit.
        screen.contains("Keys — ") && screen.contains("esc")
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

// ---- Output pane as a terminal shows it (issue 12, part 2) ----

/// The program the Output test runs: colours, a `\r` progress bar on
/// stderr, the terminal it was told of, and a line read with `input()`.
/// One statement a line, so the editor's indentation plays no part. The
/// prompt goes to stderr after the bar: the engine reads stdout and stderr
/// from two pipes, so their order between them is not kept.
const TERMINAL_PROGRAM: [&str; 6] = [
    "import os, sys, time",
    "print('\\x1b[31mRED\\x1b[0m and \\x1b[1;32mGREEN\\x1b[0m', 'TERM=' + os.environ.get('TERM', '-'), 'COLUMNS=' + os.environ.get('COLUMNS', '-'), flush=True)",
    "[(sys.stderr.write('\\rprogress %3d%%' % i), sys.stderr.flush(), time.sleep(0.3)) for i in range(0, 101, 25)]",
    "sys.stderr.write('\\n')",
    "sys.stderr.write('name? '); name = input()",
    "print('hello ' + name + '!'); sys.exit(0)",
];

/// The Output pane's part of a `capture-pane -p` screen of `size`.
fn output_pane_of(screen: &str, size: (u16, u16)) -> String {
    let area =
        sandpit::tui::ui::layout::Areas::compute(ratatui::layout::Rect::new(0, 0, size.0, size.1))
            .output
            .expect("the full layout has an Output pane");
    screen
        .lines()
        .skip(usize::from(area.y))
        .take(usize::from(area.height))
        .map(|line| {
            line.chars()
                .skip(usize::from(area.x))
                .take(usize::from(area.width))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn output_pane_shows_colours_one_progress_line_and_feeds_input() {
    let user = common::test_user("term");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    let home = tempfile::tempdir().unwrap();
    let created = common::output_within(
        Command::new(env!("CARGO_BIN_EXE_sandpit"))
            .arg("--workspace-root")
            .arg(home.path().join("ws"))
            .args(["new", user.as_str()]),
        common::CLI_DEADLINE,
        "the sandpit CLI",
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let size = (140, 40);
    let name = format!("sandpit-e2e-term-{}", std::process::id());
    let _session = start_dashboard(&name, home.path(), "", size);
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the session listed",
        |screen| screen.contains(user.as_str()) && screen.contains(" running · theme"),
    );
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
    for line in TERMINAL_PROGRAM {
        tmux(&["send-keys", "-t", &name, "-l", line]);
        tmux(&["send-keys", "-t", &name, "Enter"]);
    }
    // Run, then leave the editor and go round to the Output pane (one key
    // at a time: esc and shift-tab together read as alt-[).
    tmux(&["send-keys", "-t", &name, "F5"]);
    tmux(&["send-keys", "-t", &name, "Escape"]);
    wait_for_screen(
        &name,
        Duration::from_secs(10),
        "the sessions pane",
        |screen| screen.contains("n new · "),
    );
    // Shift-tab from Sessions reaches the last pane (Activity), then Output.
    tmux(&["send-keys", "-t", &name, "BTab"]);
    wait_for_screen(
        &name,
        Duration::from_secs(10),
        "the Activity pane's keys",
        |screen| screen.contains("a all/one"),
    );
    tmux(&["send-keys", "-t", &name, "BTab"]);
    let asking = wait_for_screen(
        &name,
        Duration::from_secs(60),
        "the program to ask for a name in the Output pane",
        |screen| {
            let pane = output_pane_of(screen, size);
            pane.contains("name? ") && pane.contains("typing goes to its stdin")
        },
    );
    let asking = output_pane_of(&asking, size);
    // The bar was redrawn in place: one line, at its last state.
    let bars: Vec<&str> = asking.lines().filter(|l| l.contains("progress")).collect();
    assert_eq!(bars.len(), 1, "progress lines: {bars:?}\n{asking}");
    assert!(bars[0].contains("progress 100%"), "{asking}");
    // Runs are told the terminal they are drawn in.
    let (columns, _) = sandpit::tui::ui::panes::output::text_size(ratatui::layout::Rect::new(
        0, 0, size.0, size.1,
    ));
    assert!(
        asking.contains("TERM=xterm-256color") && asking.contains(&format!("COLUMNS={columns}")),
        "{asking}"
    );

    tmux(&["send-keys", "-t", &name, "-l", "Ada Lovelace"]);
    tmux(&["send-keys", "-t", &name, "Enter"]);
    let done = wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the program to greet the typed name and end",
        |screen| screen.contains("hello Ada Lovelace!") && screen.contains("exit 0 in"),
    );
    let done = output_pane_of(&done, size);
    // The typed line is echoed where it was typed, as a terminal does.
    assert!(done.contains("name? Ada Lovelace"), "{done}");
    // Colours are drawn, not printed: no escape sequence shows as text, and
    // the words carry their SGR colours on the screen.
    assert!(!done.contains("[31m") && !done.contains("[0m"), "{done}");
    // Only the Output pane's rows (the editor holds the source, escapes and
    // all); the pane is the right-hand part of them.
    let area =
        sandpit::tui::ui::layout::Areas::compute(ratatui::layout::Rect::new(0, 0, size.0, size.1))
            .output
            .expect("the full layout has an Output pane");
    let styled = tmux(&["capture-pane", "-p", "-e", "-t", &name])
        .lines()
        .skip(usize::from(area.y))
        .take(usize::from(area.height))
        .map(|line| {
            line.rsplit_once("│")
                .map_or(line, |(_, pane)| pane)
                .to_string()
                + "\n"
        })
        .collect::<String>();
    // tmux writes base colours as palette indexes (red `38;5;1`) or as
    // `31`; the dashboard's theme colours are never these two.
    let red = styled
        .find("RED")
        .unwrap_or_else(|| panic!("no RED in\n{styled}"));
    let before_red = &styled[..red];
    assert!(
        before_red.ends_with("\x1b[31m") || before_red.ends_with("\x1b[38;5;1m"),
        "RED is not drawn red: {:?}",
        &before_red[before_red.len().saturating_sub(30)..]
    );
    let green = styled.find("GREEN").expect("GREEN on the screen");
    let between = &styled[red..green];
    let sgr = &between[between.rfind(" and ").expect("` and ` before GREEN")..];
    assert!(
        (sgr.contains("[32m") || sgr.contains("38;5;2m"))
            && (sgr.contains("[1m") || sgr.contains("[1;")),
        "GREEN is not drawn bold green: {sgr:?}"
    );
    assert_eq!(
        styled.lines().filter(|l| l.contains("progress")).count(),
        1,
        "{styled}"
    );
}

// --- Stats charts and the Activity pane (issue 12, parts 4 and 5) --------

/// A command run from the CLI, in another process, shows in the Activity
/// pane of a running dashboard (the selected session's view and the view of
/// all sessions), and the Stats pane charts the session's live samples.
#[test]
fn activity_pane_shows_a_cli_command_live_and_stats_are_charted() {
    let user = common::test_user("e2act");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    let home = tempfile::tempdir().unwrap();
    let name = format!("sandpit-e2e-act-{}", std::process::id());
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
            "sandpit {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    cli(&["new", user.as_str(), "--runtime", "python-minimal"]);
    let session = start_dashboard(&name, home.path(), "", (120, 35));
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the dashboard connected",
        |screen| screen.contains("Sessions (") && screen.contains(" running · theme"),
    );
    // Other tests' sessions share the engine: filter down to this one.
    tmux(&["send-keys", "-t", &name, "/"]);
    tmux(&["send-keys", "-t", &name, "-l", user.as_str()]);
    tmux(&["send-keys", "-t", &name, "Enter"]);
    let title = format!("Activity — {user}");
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the Activity pane on the session, and its stats charted",
        |screen| {
            screen.contains(&title)
                && screen.contains(&format!("Stats — {user}"))
                // The charts' time axis (a minute or more back) and a CPU
                // figure.
                && (1..=5).any(|minutes| screen.contains(&format!("-{minutes}m ")))
                && screen.contains("now")
                && screen.contains("CPU ")
        },
    );

    // Another process runs a command in the session.
    let marker = format!("charts-e2e-{}", std::process::id());
    cli(&["exec", "--user", user.as_str(), "--", "echo", &marker]);
    let shown = |screen: &str| {
        screen.lines().any(|line| {
            line.contains("cli")
                && line.contains(&format!("exec echo {marker}"))
                && line.split_whitespace().any(|word| word == "0")
        })
    };
    let screen = wait_for_screen(
        &name,
        Duration::from_secs(15),
        "the CLI's command in the Activity pane, with source cli and exit 0",
        shown,
    );
    assert!(screen.contains(&title), "{screen}");

    // The view of all sessions lists it with the session's name.
    tmux(&["send-keys", "-t", &name, "BTab"]);
    tmux(&["send-keys", "-t", &name, "a"]);
    wait_for_screen(
        &name,
        Duration::from_secs(10),
        "the Activity pane listing every session",
        |screen| {
            screen.contains("Activity — all sessions")
                && screen
                    .lines()
                    .any(|line| line.contains(user.as_str()) && line.contains(&marker))
        },
    );
    tmux(&["send-keys", "-t", &name, "q"]);
    drop(session);
}

// ---------------------------------------------------------------------------
// The interactive shell (issue 12, part 3): `sandpit shell U` in tmux, and
// the dashboard's shell key. Each sandbox is made with the CLI under a
// workspace root of the test's own.
// ---------------------------------------------------------------------------

/// A running sandbox for a test user, made by `sandpit new` under `home`.
fn shell_sandbox(
    tag: &str,
    home: &std::path::Path,
) -> (sandpit::engine::sandbox::UserId, common::Cleanup) {
    let user = common::test_user(tag);
    let cleanup = common::Cleanup(vec![user.container_name()]);
    let output = sandpit_cli(home, &["new", user.as_str()]);
    assert!(
        output.status.success(),
        "sandpit new {user}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (user, cleanup)
}

/// Runs the sandpit CLI to its end under `home`'s workspace root, without a
/// terminal.
fn sandpit_cli(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sandpit"));
    command
        .arg("--workspace-root")
        .arg(home.join("ws"))
        .args(args);
    if let Some(ca) = common::build_options().ca_file {
        command.env(sandpit::config::CA_FILE_ENV, ca);
    }
    common::output_within(&mut command, common::CLI_DEADLINE, "the sandpit CLI")
}

/// Runs `command` in a detached tmux session of `size` whose pane stays
/// after the program exits (for its exit status and last screen).
fn start_in_tmux(name: &str, command: &str, size: (u16, u16)) -> TmuxSession {
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
        command,
    ]);
    tmux(&["set-option", "-t", name, "remain-on-exit", "on"]);
    TmuxSession(name.to_string())
}

/// `sandpit shell USER` as the pane's own process (so its pid is the
/// pane's), with a known TERM.
fn start_shell(name: &str, home: &std::path::Path, user: &str, size: (u16, u16)) -> TmuxSession {
    let command = format!(
        "exec env TERM=xterm-256color {bin} --workspace-root {home}/ws shell {user}",
        bin = env!("CARGO_BIN_EXE_sandpit"),
        home = home.display(),
    );
    start_in_tmux(name, &command, size)
}

/// Types a line into the pane.
fn type_line(name: &str, line: &str) {
    tmux(&["send-keys", "-t", name, "-l", line]);
    tmux(&["send-keys", "-t", name, "Enter"]);
}

/// The pane's exit status once its program has ended, waited for.
fn pane_exit_status(name: &str, deadline: Duration) -> String {
    let status = || {
        tmux(&["display-message", "-p", "-t", name, "#{pane_dead_status}"])
            .trim()
            .to_string()
    };
    wait_for_screen(name, deadline, "the program's exit status", |_| {
        !status().is_empty()
    });
    status()
}

/// Asks the shell for its terminal's size until it is `rows cols`: the
/// resize travels (SIGWINCH, sandpit, the engine) apart from the typed
/// command, which may overtake it, so the question is asked again.
fn wait_for_size(name: &str, size: &str) {
    let expected = format!("size={size}");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        type_line(name, "echo \"size=$(stty size)\"");
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(2) {
            let screen = tmux(&["capture-pane", "-p", "-t", name]);
            if screen.lines().any(|line| line.trim_end() == expected) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let screen = tmux(&["capture-pane", "-p", "-t", name]);
        assert!(
            Instant::now() < until,
            "timed out after 30 s waiting for {expected} in the shell; screen:\n{screen}"
        );
    }
}

/// The command lines of every process in a container, read with the docker
/// CLI (NUL separators as spaces).
fn container_processes(container: &str) -> String {
    let output = common::output_within(
        Command::new("docker").args([
            "exec",
            container,
            "sh",
            "-c",
            "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done 2>/dev/null",
        ]),
        Duration::from_secs(30),
        "docker exec listing the sandbox's processes",
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn docker_inspect(container: &str, format: &str) -> String {
    let output = common::output_within(
        Command::new("docker").args(["inspect", "-f", format, container]),
        Duration::from_secs(30),
        "docker inspect",
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn a_shell_from_the_cli_runs_as_the_sandbox_and_leaves_nothing_behind() {
    let home = tempfile::tempdir().unwrap();
    let (user, _cleanup) = shell_sandbox("shcli", home.path());
    let container = user.container_name();
    let owner = docker_inspect(&container, "{{.Config.User}}");
    let work_dir = docker_inspect(&container, "{{.Config.WorkingDir}}");
    let (uid, gid) = owner.split_once(':').expect("the sandbox runs as uid:gid");
    let name = format!("sandpit-e2e-shell-{}", std::process::id());
    // Run from a shell that reports the status and the terminal's mode
    // after: it must be back in cooked mode (icanon, not -icanon).
    let command = format!(
        "env TERM=xterm-256color {bin} --workspace-root {home}/ws shell {user}; \
         echo \"exit-status=$?\"; stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon; sleep 600",
        bin = env!("CARGO_BIN_EXE_sandpit"),
        home = home.path().display(),
    );
    let _session = start_in_tmux(&name, &command, (100, 30));
    let prompt = format!("{work_dir}$");
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the shell's prompt",
        |screen| screen.contains(&prompt),
    );

    // Who, where, which terminal and size; the typed line shows `$(...)`,
    // only the output shows the values.
    type_line(
        &name,
        "echo \"who=$(id -u):$(id -g) dir=$(pwd) term=$TERM size=$(stty size)\"",
    );
    let expected = format!("who={uid}:{gid} dir={work_dir} term=xterm-256color size=30 100");
    let screen = wait_for_screen(&name, Duration::from_secs(30), &expected, |screen| {
        screen.lines().any(|line| line.trim_end() == expected)
    });
    assert!(
        !screen.contains("sandpit-shell"),
        "the root's line is shown:\n{screen}"
    );
    // The same hardening as commands: no capabilities, no new privileges.
    type_line(
        &name,
        "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '",
    );
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the shell's privileges",
        |screen| {
            screen
                .lines()
                .any(|line| line.trim_end() == "CapEff: 0000000000000000")
                && screen
                    .lines()
                    .any(|line| line.trim_end() == "NoNewPrivs: 1")
        },
    );

    // A resize reaches the shell's terminal.
    tmux(&["resize-window", "-t", &name, "-x", "90", "-y", "25"]);
    wait_for_size(&name, "25 90");

    // A background job outlives the shell's exit unless sandpit ends it.
    type_line(&name, "sleep 4242 &");
    let until = Instant::now() + Duration::from_secs(30);
    while !container_processes(&container).contains("sleep 4242") {
        assert!(Instant::now() < until, "the background sleep never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    type_line(&name, "exit 7");
    let screen = wait_for_screen(
        &name,
        Duration::from_secs(30),
        "sandpit's exit status",
        |screen| screen.contains("exit-status="),
    );
    assert!(screen.contains("exit-status=7"), "{screen}");
    let mode = wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the terminal's mode",
        |screen| {
            screen
                .lines()
                .any(|line| line.trim_end().ends_with("icanon"))
        },
    );
    assert!(
        mode.lines().any(|line| line.trim_end() == "icanon"),
        "the terminal was left in raw mode:\n{mode}"
    );
    let left = container_processes(&container);
    assert!(
        !left.contains("sleep 4242"),
        "the background job survived:\n{left}"
    );
    assert!(
        !left.contains("sandpit-tether"),
        "the tether survived:\n{left}"
    );
    // The session is in the activity log, with its status (not what was typed).
    let activity = sandpit_cli(
        home.path(),
        &["activity", "--user", user.as_str(), "--json"],
    );
    let rows = String::from_utf8_lossy(&activity.stdout);
    let shell_row = rows
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|row| row["action"] == "shell")
        .unwrap_or_else(|| panic!("no shell row in the activity log:\n{rows}"));
    assert_eq!(shell_row["source"], "cli", "{shell_row}");
    assert_eq!(shell_row["exit_code"], 7, "{shell_row}");
    assert!(
        !rows.contains("4242"),
        "what was typed is recorded:\n{rows}"
    );
}

#[test]
fn a_shell_whose_client_is_stopped_or_killed_leaves_nothing_behind() {
    let home = tempfile::tempdir().unwrap();
    let (user, _cleanup) = shell_sandbox("shkill", home.path());
    let container = user.container_name();
    let work_dir = docker_inspect(&container, "{{.Config.WorkingDir}}");
    for (signal, sleep, status) in [("-TERM", "4343", Some("130")), ("-KILL", "4344", None)] {
        let name = format!("sandpit-e2e-shkill{signal}-{}", std::process::id());
        let _session = start_shell(&name, home.path(), user.as_str(), (100, 30));
        wait_for_screen(
            &name,
            Duration::from_secs(30),
            "the shell's prompt",
            |screen| screen.contains(&format!("{work_dir}$")),
        );
        // One job in the background, one that left the tree (a new session,
        // reparented to init), one in the foreground.
        type_line(
            &name,
            &format!("sleep {sleep} & setsid sleep {sleep}2 & sleep {sleep}1"),
        );
        let until = Instant::now() + Duration::from_secs(30);
        while !container_processes(&container).contains(&format!("sleep {sleep}1")) {
            assert!(Instant::now() < until, "the sleeps never started");
            std::thread::sleep(Duration::from_millis(100));
        }
        let pid = tmux(&["display-message", "-p", "-t", &name, "#{pane_pid}"]);
        let killed = Command::new("kill")
            .args([signal, pid.trim()])
            .status()
            .unwrap();
        assert!(killed.success());
        if let Some(status) = status {
            assert_eq!(pane_exit_status(&name, Duration::from_secs(30)), status);
        }
        // Killed outright, sandpit can do nothing: the tether inside does it.
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let left = container_processes(&container);
            if !left.contains(&format!("sleep {sleep}")) && !left.contains("sandpit-tether") {
                break;
            }
            assert!(
                Instant::now() < until,
                "after kill {signal}, the shell's processes are still there after 15 s:\n{left}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn shell_refusals_say_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    // Without a terminal: refused before anything else.
    let output = sandpit_cli(home.path(), &["shell", "nobody-here"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("needs a terminal on stdin and stdout"),
        "{stderr}"
    );

    let (user, _cleanup) = shell_sandbox("shrefuse", home.path());
    let missing = common::test_user("shnobody");
    let stop = sandpit_cli(home.path(), &["stop", user.as_str()]);
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    let bin = env!("CARGO_BIN_EXE_sandpit");
    let ws = home.path().join("ws");
    let cases = [
        (
            format!("{bin} --workspace-root {} shell {missing}", ws.display()),
            format!("user `{missing}` has no sandbox: create one with `sandpit new {missing}`"),
        ),
        (
            format!("{bin} --workspace-root {} shell {user}", ws.display()),
            format!("start it with `sandpit start {user}`"),
        ),
        (
            format!(
                "env DOCKER_HOST=unix:///nonexistent/docker.sock {bin} --workspace-root {} shell {user}",
                ws.display()
            ),
            "does not answer".to_string(),
        ),
    ];
    for (n, (command, message)) in cases.iter().enumerate() {
        let name = format!("sandpit-e2e-shrefuse{n}-{}", std::process::id());
        // The status is printed after, and the pane held: a program that
        // fails at once may end before tmux is told to keep its pane.
        let held = format!("{command}; echo exit-status=$?; sleep 600");
        let _session = start_in_tmux(&name, &held, (200, 20));
        let screen = wait_for_screen(&name, Duration::from_secs(60), "the refusal", |screen| {
            screen.contains("exit-status=")
        });
        assert!(screen.contains("exit-status=1"), "{command}: {screen}");
        // tmux wraps at the pane's width; the message is read joined.
        let screen = tmux(&["capture-pane", "-p", "-J", "-t", &name]);
        assert!(screen.contains(message.as_str()), "{command}: {screen}");
    }
}

#[test]
fn a_shell_from_the_dashboard_hands_the_terminal_over_and_back() {
    let home = tempfile::tempdir().unwrap();
    let (user, _cleanup) = shell_sandbox("shdash", home.path());
    let work_dir = docker_inspect(&user.container_name(), "{{.Config.WorkingDir}}");
    let name = format!("sandpit-e2e-shdash-{}", std::process::id());
    let _session = start_dashboard(&name, home.path(), "", (120, 35));
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the dashboard listing the session",
        |screen| screen.contains("Sessions (") && screen.contains(user.as_str()),
    );
    // Other tests' sandboxes on the shared engine are listed too: filter.
    tmux(&["send-keys", "-t", &name, "/"]);
    type_line(&name, user.as_str());
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the filtered list",
        |screen| screen.contains("Sessions (1)"),
    );

    tmux(&["send-keys", "-t", &name, "e"]);
    let prompt = format!("{work_dir}$");
    let banner = format!("a shell in the sandbox of `{user}`");
    wait_for_screen(&name, Duration::from_secs(30), "the shell", |screen| {
        screen.contains(&banner) && screen.contains(&prompt)
    });
    assert_eq!(
        tmux(&["display-message", "-p", "-t", &name, "#{alternate_on}"]).trim(),
        "0",
        "the shell runs on the main screen"
    );
    type_line(&name, "echo \"shell-$((6*7)) as $(id -u) in $(pwd)\"");
    let uid = docker_inspect(&user.container_name(), "{{.Config.User}}");
    let uid = uid.split(':').next().unwrap_or_default();
    let expected = format!("shell-42 as {uid} in {work_dir}");
    wait_for_screen(&name, Duration::from_secs(30), &expected, |screen| {
        screen.lines().any(|line| line.trim_end() == expected)
    });
    // A resize during the shell reaches it.
    tmux(&["resize-window", "-t", &name, "-x", "100", "-y", "30"]);
    wait_for_size(&name, "30 100");

    type_line(&name, "exit");
    wait_for_screen(
        &name,
        Duration::from_secs(30),
        "the dashboard back",
        |screen| {
            screen.contains("Sessions (1)")
                && screen.contains(&format!("the shell in `{user}` ended with status 0"))
        },
    );
    assert_eq!(
        tmux(&["display-message", "-p", "-t", &name, "#{alternate_on}"]).trim(),
        "1",
        "the dashboard is on the alternate screen again"
    );
    // Drawn whole at the new size, and keys reach it again.
    let screen = tmux(&["capture-pane", "-p", "-t", &name]);
    assert!(
        screen.lines().all(|line| line.chars().count() <= 100),
        "{screen}"
    );
    tmux(&["send-keys", "-t", &name, "?"]);
    wait_for_screen(&name, Duration::from_secs(30), "help", |screen| {
        screen.contains("open a shell in the selected session")
    });
    // Recorded as the dashboard's.
    let activity = sandpit_cli(
        home.path(),
        &["activity", "--user", user.as_str(), "--json"],
    );
    let rows = String::from_utf8_lossy(&activity.stdout);
    assert!(
        rows.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .any(|row| row["action"] == "shell"
                && row["source"] == "dashboard"
                && row["exit_code"] == 0),
        "no dashboard shell row in the activity log:\n{rows}"
    );
}
