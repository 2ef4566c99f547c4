//! Hardened sandboxes against the real engine: defaults seen from inside,
//! limits that hold, timeouts that kill, caps, stats, confined files.

mod common;

use std::time::Duration;

use futures_util::StreamExt as _;
use sandpit::engine::exec::{ExecRequest, Stream};
use sandpit::engine::oci;
use sandpit::engine::policy::{ByteSize, PolicyOverrides, SandboxPolicy};
use sandpit::engine::sandbox::SandboxSpec;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn security_defaults_are_visible_from_inside() {
    let (sandbox, _root) = common::sandbox("defaults").await;
    let check = |script: &'static str| {
        let sandbox = sandbox.clone();
        async move {
            common::sh(&sandbox, script)
                .await
                .stdout_text()
                .trim()
                .to_string()
        }
    };
    assert_eq!(
        check("grep CapEff /proc/self/status | cut -f2").await,
        "0000000000000000"
    );
    if common::under_gvisor() {
        // gVisor's own kernel shows no cgroup files, no NoNewPrivs line and
        // no /sys/class/net, and refuses statx (ls): check what it shows.
        assert_eq!(check("id -u; id -g").await, "1000\n1000");
        assert!(check("grep ' / ' /proc/mounts").await.contains(" ro"));
        assert_ne!(
            common::sh(&sandbox, "touch /sandpit-test").await.exit_code,
            Some(0)
        );
        assert_eq!(
            check("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '").await,
            "lo"
        );
        assert_eq!(
            check("grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2").await,
            (1u64 << 20).to_string(),
            "gVisor sizes its memory to the limit, in KiB"
        );
        assert_eq!(check("ulimit -n").await, "1024");
        assert!(
            check("tr '\\0' ' ' < /proc/1/cmdline")
                .await
                .contains("init")
        );
        let tmp = check("grep ' /tmp ' /proc/mounts").await;
        assert!(
            tmp.contains("tmpfs") && tmp.contains("size=67108864"),
            "{tmp}"
        );
        assert_eq!(check("echo hi > /tmp/x && cat /tmp/x").await, "hi");
        assert_eq!(
            check("echo hi > /workspace/x && cat /workspace/x").await,
            "hi"
        );
    } else {
        assert_eq!(
            check("grep NoNewPrivs /proc/self/status | cut -f2").await,
            "1"
        );
        assert_eq!(check("id -u; id -g").await, "1000\n1000");
        let write_root = common::sh(&sandbox, "touch /sandpit-test 2>&1").await;
        assert_ne!(write_root.exit_code, Some(0));
        assert!(write_root.stdout_text().contains("Read-only file system"));
        assert_eq!(check("ls /sys/class/net").await, "lo");
        assert_eq!(
            check("cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max")
                .await,
            "256"
        );
        assert_eq!(
            check("cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max").await,
            (1u64 << 30).to_string()
        );
        // Swap limit equal to memory: memsw (v1) equals the limit, or swap.max (v2) is 0.
        let swap = check(
            "cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.swap.max 2>/dev/null || echo unavailable",
        )
        .await;
        assert!(
            swap == (1u64 << 30).to_string() || swap == "0" || swap == "unavailable",
            "swap limit {swap}"
        );
        let cpu = check(
            "if [ -f /sys/fs/cgroup/cpu.max ]; then cat /sys/fs/cgroup/cpu.max; else echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); fi",
        )
        .await;
        let parts: Vec<f64> = cpu.split_whitespace().map(|n| n.parse().unwrap()).collect();
        assert_eq!(parts[0] / parts[1], 1.0, "cpu quota/period {cpu}");
        assert_eq!(check("ulimit -n").await, "1024");
        assert!(
            check("cat /proc/1/cmdline | tr '\\0' ' '")
                .await
                .contains("init")
        );
        let tmp = check("grep ' /tmp ' /proc/mounts").await;
        assert!(tmp.starts_with("tmpfs /tmp tmpfs rw"), "{tmp}");
        assert!(tmp.contains("size=65536k"), "{tmp}");
        assert_eq!(check("echo hi > /tmp/x && cat /tmp/x").await, "hi");
        assert_eq!(
            check("echo hi > /workspace/x && cat /workspace/x").await,
            "hi"
        );
    }

    // inspect reports the values in force.
    let policy = sandbox.inspect().await.unwrap().policy;
    assert_eq!(policy.user, "1000:1000");
    assert_eq!((policy.memory.0, policy.memory_swap.0), (1 << 30, 1 << 30));
    assert_eq!(
        (policy.cpus, policy.pids_limit, policy.nofile),
        (1.0, 256, 1024)
    );
    assert_eq!(policy.network, "none");
    assert!(policy.read_only && policy.cap_drop_all && policy.no_new_privileges && policy.init);
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn policy_can_be_loosened_per_sandbox() {
    let (sandbox, _root) = common::sandbox_with(
        "loose",
        PolicyOverrides {
            read_only: Some(false),
            cpus: Some(0.5),
            pids_limit: Some(64),
            ..Default::default()
        },
    )
    .await;
    let root_mount = common::sh(&sandbox, "grep ' / ' /proc/mounts | head -1")
        .await
        .stdout_text();
    assert!(root_mount.contains(" rw,"), "{root_mount}");
    let pids = common::sh(
        &sandbox,
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
    )
    .await;
    assert_eq!(pids.stdout_text().trim(), "64");
    let policy = sandbox.inspect().await.unwrap().policy;
    assert!(!policy.read_only);
    assert_eq!(policy.cpus, 0.5);
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn extra_volumes_mount_read_only() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("input.csv"), "a,b\n1,2\n").unwrap();
    let (sandbox, _root) = common::sandbox_with(
        "volume",
        PolicyOverrides {
            volumes: Some(
                [(
                    data.path().display().to_string(),
                    "/workspace/data:ro".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
    )
    .await;
    let read = common::sh(&sandbox, "cat /workspace/data/input.csv").await;
    assert_eq!(read.stdout_text(), "a,b\n1,2\n");
    let write = common::sh(&sandbox, "echo x > /workspace/data/new 2>&1").await;
    assert_ne!(write.exit_code, Some(0));
    assert!(!data.path().join("new").exists());
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn memory_hog_is_stopped_and_flagged_oom() {
    let (sandbox, _root) = common::sandbox_with(
        "oom",
        PolicyOverrides {
            memory: Some(ByteSize(128 << 20)),
            ..Default::default()
        },
    )
    .await;
    if common::under_gvisor() {
        // Measured with gVisor 20221219: the memory limit kills the whole
        // gVisor sandbox, not the one process, and the engine never ends the
        // exec; sandpit sees the container die, reports the kill and starts
        // the sandbox again. The timeout only bounds the test.
        let result = sandbox
            .exec_collect(
                ExecRequest::argv(["python3", "-c", "x = bytearray(1024 * 1024 * 1024)"])
                    .timeout(Duration::from_secs(60)),
            )
            .await
            .unwrap();
        assert!(!result.timed_out, "{result:?}");
        assert!(result.oom_killed && result.sandbox_restarted, "{result:?}");
        assert_eq!(result.status_code(), 137);
        assert!(result.stderr_text().contains("memory limit"), "{result:?}");
        assert_eq!(
            common::sh(&sandbox, "echo alive").await.stdout_text(),
            "alive\n"
        );
        sandbox.remove(true).await.unwrap();
        return;
    }
    let result = sandbox
        .exec_collect(ExecRequest::argv([
            "python3",
            "-c",
            "x = bytearray(1024 * 1024 * 1024)",
        ]))
        .await
        .unwrap();
    assert!(result.oom_killed, "{result:?}");
    assert_eq!(result.exit_code, Some(137));
    assert_eq!(result.status_code(), 137);
    // A SIGKILL that is not the memory limit's is not reported as one.
    let result = common::sh(&sandbox, "kill -9 $$").await;
    assert_eq!(result.exit_code, Some(137));
    assert!(!result.oom_killed, "{result:?}");
    // The sandbox lives on.
    assert_eq!(
        common::sh(&sandbox, "echo alive").await.stdout_text(),
        "alive\n"
    );
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn fork_bomb_is_contained_and_the_sandbox_answers_after() {
    let (sandbox, _root) = common::sandbox("forkbomb").await;
    let result = sandbox
        .exec_collect(
            ExecRequest::argv(["bash", "-c", "bomb() { bomb | bomb & }; bomb; sleep 600"])
                .timeout(Duration::from_secs(3)),
        )
        .await
        .unwrap();
    if common::under_gvisor() {
        // gVisor dies whole at the pids limit (its own threads count too):
        // sandpit sees the container stop, reports the command killed and
        // starts the sandbox again.
        assert!(result.sandbox_restarted && !result.timed_out, "{result:?}");
        assert_eq!(result.status_code(), 137);
        assert!(result.stderr_text().contains("pids limit"), "{result:?}");
    } else {
        assert!(result.timed_out, "{result:?}");
        assert_eq!(result.status_code(), 124);
    }
    let answer = common::sh(&sandbox, "echo ok").await;
    assert_eq!(answer.stdout_text(), "ok\n");
    let left = common::process_list(&sandbox).await;
    assert!(
        left.iter().all(|p| !p.contains("bash")),
        "bomb processes left: {left:?}"
    );
    sandbox.remove(true).await.unwrap();
}

/// Starts children every way a command can: plain background, a new
/// session, a scrubbed environment, and both; then sleeps.
/// The last child makes itself undumpable, which hides its environment.
const SPAWNER: &str = r#"sleep 301 & (setsid sleep 302 &); env -i sh -c 'sleep 303 &'; env -i setsid sh -c 'sleep 304 &'; python3 -c 'import ctypes, time; ctypes.CDLL(None).prctl(4, 0, 0, 0, 0); time.sleep(306)' & sleep 305"#;

#[tokio::test]
async fn timeout_kills_the_whole_process_tree() {
    let (sandbox, _root) = common::sandbox("timeout").await;
    let result = sandbox
        .exec_collect(ExecRequest::shell(SPAWNER).timeout(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(result.timed_out && !result.cancelled, "{result:?}");
    assert!(!result.sandbox_restarted);
    let left = common::process_list(&sandbox).await;
    assert!(
        left.iter()
            .all(|p| !p.contains("sleep 30") && !p.contains("sleep(306)")),
        "processes left after timeout: {left:?}"
    );
    // Only init and the sandbox's own main process remain.
    assert_eq!(left.len(), 2, "{left:?}");
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn cancelling_kills_the_whole_process_tree() {
    let (sandbox, _root) = common::sandbox("cancel").await;
    let cancel = CancellationToken::new();
    let (events, mut received) = tokio::sync::mpsc::channel(8);
    let run = {
        let sandbox = sandbox.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            sandbox
                .exec(
                    ExecRequest::shell(format!("echo started; {SPAWNER}")),
                    Some(events),
                    cancel,
                )
                .await
        })
    };
    // Cancel once the command is demonstrably running.
    let first = tokio::time::timeout(Duration::from_secs(30), received.recv())
        .await
        .expect("output within 30s")
        .expect("an event");
    assert_eq!(first.data, b"started\n");
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the cancelled command ends within 30 s")
        .unwrap()
        .unwrap();
    assert!(result.cancelled && !result.timed_out, "{result:?}");
    let left = common::process_list(&sandbox).await;
    assert!(
        left.iter()
            .all(|p| !p.contains("sleep 30") && !p.contains("sleep(306)")),
        "{left:?}"
    );
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn endless_writer_is_capped() {
    let (sandbox, _root) = common::sandbox("flood").await;
    let result = sandbox
        .exec_collect(ExecRequest::argv(["yes", "flood"]).output_cap(256 << 10))
        .await
        .unwrap();
    assert!(result.truncated, "{result:?}");
    assert_eq!(result.stdout.len(), 256 << 10);
    assert!(result.stdout_text().starts_with("flood\nflood\n"));
    // Nothing of it is left running.
    let left = common::process_list(&sandbox).await;
    assert!(left.iter().all(|p| !p.contains("yes")), "{left:?}");
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn order_within_each_stream_is_kept() {
    let (sandbox, _root) = common::sandbox("order").await;
    let (events, mut received) = tokio::sync::mpsc::channel::<sandpit::engine::exec::ExecEvent>(16);
    let collector = tokio::spawn(async move {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(event) = received.recv().await {
            match event.stream {
                Stream::Stdout => out.extend(event.data),
                Stream::Stderr => err.extend(event.data),
            }
        }
        (out, err)
    });
    let result = sandbox
        .exec(
            ExecRequest::shell(
                "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo out $i; echo err $i >&2; done",
            ),
            Some(events),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(result.exit_code, Some(0));
    let (out, err) = tokio::time::timeout(Duration::from_secs(30), collector)
        .await
        .expect("the event collector ends within 30 s of the command")
        .unwrap();
    let expected = |prefix: &str| {
        (1..=3000)
            .map(|i| format!("{prefix} {i}\n"))
            .collect::<String>()
    };
    assert_eq!(String::from_utf8(out).unwrap(), expected("out"));
    assert_eq!(String::from_utf8(err).unwrap(), expected("err"));
    assert_eq!(
        result.stdout_text(),
        expected("out"),
        "the result keeps the same"
    );
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn many_execs_run_at_once() {
    let (sandbox, _root) = common::sandbox("parallel").await;
    // Each waits until all have started: they can only finish if they overlap.
    let runs = (0..6).map(|i| {
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            sandbox
                .exec_collect(
                    ExecRequest::shell(format!(
                        "touch /tmp/started-{i}; while [ $(ls /tmp/started-* | wc -l) -lt 6 ]; do sleep 0.05; done; echo {i}"
                    ))
                    .timeout(Duration::from_secs(60)),
                )
                .await
                .unwrap()
        })
    });
    let runs: Vec<_> = runs.collect();
    for (i, run) in runs.into_iter().enumerate() {
        let result = run.await.unwrap();
        assert!(!result.timed_out, "exec {i} never saw the others");
        assert_eq!(result.stdout_text(), format!("{i}\n"));
    }
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn stdin_env_and_workdir_reach_the_command() {
    let (sandbox, _root) = common::sandbox("stdin").await;
    let mut request = ExecRequest::shell("cat; echo \"$GREETING\"; pwd")
        .stdin(b"from stdin\n".to_vec())
        .env("GREETING", "hello there");
    request.work_dir = Some("/tmp".into());
    let result = sandbox.exec_collect(request).await.unwrap();
    assert_eq!(result.stdout_text(), "from stdin\nhello there\n/tmp\n");

    // Bytes first, then the stream to its end.
    let streamed = sandbox
        .exec_collect(
            ExecRequest::argv(["cat"])
                .stdin(b"head:".to_vec())
                .stdin_stream(&b"tail"[..]),
        )
        .await
        .unwrap();
    assert_eq!(streamed.stdout_text(), "head:tail");
    assert_eq!(streamed.stdout_bytes, 9);
    sandbox.remove(true).await.unwrap();
}

/// Deterministic bytes covering every value, without a random-number crate.
fn binary_blob(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn ten_megabyte_binary_file_round_trips() {
    let (sandbox, root) = common::sandbox("binary").await;
    let blob = binary_blob(10 * 1000 * 1000);
    sandbox
        .write_file("data/blob.bin", blob.clone())
        .await
        .unwrap();
    // It landed in the workspace on the host, owned by the sandbox's uid.
    let on_host = root.path().join("ws/data/blob.bin");
    assert_eq!(std::fs::read(&on_host).unwrap(), blob);
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(std::fs::metadata(&on_host).unwrap().uid(), 1000);
    let read = sandbox
        .read_file("data/blob.bin", sandpit::engine::files::DEFAULT_READ_CAP)
        .await
        .unwrap();
    assert!(read.binary);
    assert!(read.bytes == blob, "bytes differ after the round trip");
    // The read cap refuses a larger file than allowed.
    let err = sandbox.read_file("data/blob.bin", 1000).await.unwrap_err();
    assert!(err.to_string().contains("10000000 bytes"), "{err}");
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn file_operations_work_inside_the_workspace() {
    let (sandbox, _root) = common::sandbox("files").await;
    sandbox
        .write_file("src/main.py", b"print('hi')\n".to_vec())
        .await
        .unwrap();
    sandbox.make_dir("empty").await.unwrap();
    let entries = sandbox.list_dir(".").await.unwrap();
    let names: Vec<String> = entries.iter().map(|e| e.display_name()).collect();
    assert_eq!(names, ["empty", "src"]);
    let src = sandbox.list_dir("src").await.unwrap();
    assert_eq!(src[0].name, b"main.py");
    assert_eq!(src[0].size, 12);
    assert!(src[0].mtime > 1_600_000_000.0);
    let text = sandbox.read_file("src/main.py", 1 << 20).await.unwrap();
    assert!(!text.binary);
    assert_eq!(text.bytes, b"print('hi')\n");
    sandbox.rename("src/main.py", "src/app.py").await.unwrap();
    let err = sandbox.read_file("src/main.py", 1 << 20).await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    sandbox.write_file("other.py", b"x".to_vec()).await.unwrap();
    let err = sandbox.rename("other.py", "src/app.py").await.unwrap_err();
    assert!(err.to_string().contains("exists already"), "{err}");
    sandbox.delete("src").await.unwrap();
    let names: Vec<String> = sandbox
        .list_dir("")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.display_name())
        .collect();
    assert_eq!(names, ["empty", "other.py"]);
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn every_path_escape_is_refused() {
    let (sandbox, root) = common::sandbox("escape").await;
    // Links the sandboxed code made itself, pointing out of the workspace.
    let made = common::sh(
        &sandbox,
        "ln -s /etc etc-link && ln -s / root-link && ln -s /tmp tmp-link && ln -s /etc/passwd passwd-link && mkdir -p inner && ln -s ../.. inner/up",
    )
    .await;
    assert_eq!(made.exit_code, Some(0), "{}", made.stderr_text());
    common::sh(&sandbox, "echo secret > /tmp/outside").await;

    let reads = [
        "../x",
        "/etc/passwd",
        "a/../../etc/passwd",
        "/workspace/../etc/passwd",
        "etc-link/passwd",
        "passwd-link",
        "root-link/etc/passwd",
        "inner/up/etc/passwd",
        "tmp-link/outside",
    ];
    for path in reads {
        let err = sandbox.read_file(path, 1 << 20).await.expect_err(path);
        assert!(err.to_string().contains("refused"), "{path}: {err}");
    }
    for path in ["../x", "/etc", "etc-link", "root-link/tmp", "inner/up"] {
        let err = sandbox.list_dir(path).await.expect_err(path);
        assert!(err.to_string().contains("refused"), "{path}: {err}");
    }
    for path in [
        "../x",
        "/tmp/x",
        "tmp-link/written",
        "root-link/tmp/written",
        "inner/up/tmp/written",
        "tmp-link/new/dir/file",
    ] {
        let err = sandbox
            .write_file(path, b"x".to_vec())
            .await
            .expect_err(path);
        assert!(err.to_string().contains("refused"), "{path}: {err}");
        let err = sandbox.make_dir(path).await.expect_err(path);
        assert!(err.to_string().contains("refused"), "{path}: {err}");
    }
    // Each refusal names the path it is about, source or destination.
    for (from, to, named) in [
        ("passwd-link", "../stolen", "`../stolen`"),
        (
            "tmp-link/outside",
            "stolen",
            "`/workspace/tmp-link/outside`",
        ),
        ("inner", "tmp-link/moved", "`/workspace/tmp-link/moved`"),
    ] {
        let err = sandbox.rename(from, to).await.expect_err(from);
        let err = err.to_string();
        assert!(
            err.contains("refused") && err.contains(named),
            "{from} -> {to}: {err}"
        );
    }
    for path in ["..", "/tmp/outside", "tmp-link/outside", "", "/workspace"] {
        assert!(sandbox.delete(path).await.is_err(), "{path}");
    }
    // Nothing outside was written or removed.
    let outside = common::sh(
        &sandbox,
        "find /tmp -mindepth 1 -maxdepth 1 -printf '%f\\n' | sort; cat /tmp/outside",
    )
    .await
    .stdout_text();
    assert_eq!(outside, "outside\nsecret\n");
    // Deleting a link removes the link, not what it points to.
    sandbox.delete("tmp-link").await.unwrap();
    assert_eq!(
        common::sh(&sandbox, "cat /tmp/outside").await.stdout_text(),
        "secret\n"
    );
    assert!(!root.path().join("ws/tmp-link").exists());
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn half_a_cpu_reads_about_50_percent() {
    let (sandbox, _root) = common::sandbox_with(
        "halfcpu",
        PolicyOverrides {
            cpus: Some(0.5),
            ..Default::default()
        },
    )
    .await;
    let busy = {
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            sandbox
                .exec_collect(
                    ExecRequest::shell("while :; do :; done").timeout(Duration::from_secs(9)),
                )
                .await
        })
    };
    let mut samples = Box::pin(sandbox.engine().stats_stream(sandbox.container_name()));
    let mut readings = Vec::new();
    while readings.len() < 6 {
        let sample = tokio::time::timeout(Duration::from_secs(10), samples.next())
            .await
            .expect("a stats sample within 10s")
            .expect("stream open")
            .expect("a sample");
        readings.push(sample.cpu_percent);
    }
    // The first readings may straddle the loop's start.
    let settled = &readings[2..];
    let mean = settled.iter().sum::<f64>() / settled.len() as f64;
    assert!((40.0..=60.0).contains(&mean), "readings {readings:?}");
    let busy = tokio::time::timeout(Duration::from_secs(60), busy)
        .await
        .expect("the busy loop ends at its 9 s timeout, within 60 s");
    assert!(busy.unwrap().unwrap().timed_out);
    sandbox.remove(true).await.unwrap();
}

fn parse_docker_size(text: &str) -> f64 {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "B" => 1.0,
        "KiB" | "kB" => 1024.0,
        "MiB" | "MB" => 1024.0 * 1024.0,
        "GiB" | "GB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unknown unit {other}"),
    };
    number.parse::<f64>().unwrap() * scale
}

#[tokio::test]
async fn stats_agree_with_docker_stats() {
    // The load runs this long; every wait below ends well before it does.
    const LOAD_SECONDS: u64 = 25;
    let (sandbox, _root) = common::sandbox("stats").await;
    // Hold 200 MiB and keep one core busy.
    let load = {
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            sandbox
                .exec_collect(
                    ExecRequest::argv([
                        "python3", "-c",
                        "b = bytearray(200 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\nwhile True: pass",
                    ])
                    .timeout(Duration::from_secs(LOAD_SECONDS)),
                )
                .await
        })
    };
    let mut samples = Box::pin(sandbox.engine().stats_stream(sandbox.container_name()));
    // Wait for a steady load: two samples in a row with the memory held
    // and the process busy, so both tools measure the same thing. Other
    // tests share the two cores, so "busy" is a lenient figure, and the wait
    // has an overall deadline well inside the load's life.
    let loaded =
        |s: &sandpit::engine::stats::StatsSample| s.memory_used > 190 << 20 && s.cpu_percent > 30.0;
    let steady_by = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    let mut previous_loaded = false;
    let ours = loop {
        let sample = tokio::time::timeout_at(steady_by, samples.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no two samples in a row with 190 MiB held and CPU above 30% within 15 s; \
                     CPU % seen: {seen:?}"
                )
            })
            .expect("the stats stream ended")
            .unwrap();
        seen.push(sample.cpu_percent);
        if loaded(&sample) && previous_loaded {
            break sample;
        }
        previous_loaded = loaded(&sample);
    };
    // Other tests share the two cores, so the busy loop's share moves from
    // second to second: read ours over the same seconds docker reads its.
    let container = sandbox.container_name().to_string();
    let mut docker_stats = tokio::task::spawn_blocking(move || {
        std::process::Command::new("docker")
            .args([
                "stats",
                "--no-stream",
                "--format",
                "{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}",
            ])
            .arg(container)
            .output()
            .expect("docker CLI")
    });
    let mut window = vec![ours];
    let docker_by = tokio::time::Instant::now() + Duration::from_secs(8);
    let output = loop {
        tokio::select! {
            output = &mut docker_stats => break output.unwrap(),
            sample = samples.next() => window.push(sample.unwrap().unwrap()),
            _ = tokio::time::sleep_until(docker_by) => panic!("`docker stats --no-stream` took over 8 s"),
        }
    };
    let next = tokio::time::timeout(Duration::from_secs(3), samples.next())
        .await
        .expect("a sample within 3 s after docker's");
    window.push(next.unwrap().unwrap());
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let fields: Vec<&str> = text.split('|').collect();
    let docker_cpu: f64 = fields[0].trim_end_matches('%').parse().unwrap();
    let docker_memory = parse_docker_size(fields[1].split('/').next().unwrap());
    let docker_limit = parse_docker_size(fields[1].split('/').nth(1).unwrap());
    let cpus: Vec<f64> = window.iter().map(|s| s.cpu_percent).collect();
    assert!(
        cpus.iter().any(|cpu| (cpu - docker_cpu).abs() < 10.0),
        "cpu ours {cpus:?} docker {text}"
    );
    let memory_ratio = ours.memory_used as f64 / docker_memory;
    assert!(
        (0.95..=1.05).contains(&memory_ratio),
        "memory ours {} docker {text}",
        ours.memory_used
    );
    assert_eq!(ours.memory_limit as f64, docker_limit);
    let load = tokio::time::timeout(Duration::from_secs(60), load)
        .await
        .expect("the load ends at its own timeout, within 60 s");
    assert!(load.unwrap().unwrap().timed_out);
    sandbox.remove(true).await.unwrap();
}

#[tokio::test]
async fn lifecycle_and_a_container_removed_behind_our_back() {
    let (sandbox, root) = common::sandbox("lifecycle").await;
    sandbox
        .write_file("keep.txt", b"kept".to_vec())
        .await
        .unwrap();
    sandbox.stop().await.unwrap();
    assert_eq!(sandbox.inspect().await.unwrap().info.state, "exited");
    let err = sandbox
        .exec_collect(ExecRequest::shell("true"))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("not running"), "{err:#}");
    sandbox.start().await.unwrap();
    sandbox.start().await.unwrap();
    assert_eq!(
        common::sh(&sandbox, "cat keep.txt").await.stdout_text(),
        "kept"
    );
    sandbox.restart().await.unwrap();
    assert_eq!(sandbox.inspect().await.unwrap().info.state, "running");

    let engine = common::engine().await;
    let listed = engine.list_sandboxes().await.unwrap();
    let info = listed
        .iter()
        .find(|s| s.user == sandbox.user().as_str())
        .expect("listed");
    assert_eq!(info.runtime, "python-minimal");
    assert_eq!(info.workspace, root.path().join("ws").display().to_string());
    assert!(info.created > 1_600_000_000);

    // Removed outside sandpit: every operation reports it gone.
    engine
        .docker()
        .remove_container(
            sandbox.container_name(),
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .unwrap();
    for err in [
        sandbox.inspect().await.unwrap_err(),
        sandbox.stop().await.unwrap_err(),
        sandbox.start().await.unwrap_err(),
        sandbox
            .exec_collect(ExecRequest::shell("true"))
            .await
            .unwrap_err(),
        sandbox.list_dir(".").await.unwrap_err(),
    ] {
        assert!(format!("{err:#}").contains("gone"), "{err:#}");
    }
    assert!(engine.find_sandbox(sandbox.user()).await.unwrap().is_none());
    // The workspace outlives the container.
    assert_eq!(
        std::fs::read(root.path().join("ws/keep.txt")).unwrap(),
        b"kept"
    );
}

#[tokio::test]
async fn an_oci_runtime_the_engine_lacks_or_cannot_network_is_refused_before_anything_exists() {
    let engine = common::engine().await;
    let offered = engine.oci_runtimes().await.unwrap();
    assert!(offered.iter().any(|r| r.default), "{offered:?}");
    assert!(
        offered
            .iter()
            .any(|r| r.name == oci::GVISOR && r.network_disabled()),
        "gVisor is not registered as `runsc --network=none`: run scripts/test-setup (scripts/docker-up --gvisor); the engine offers {offered:?}"
    );
    let image = common::python_image(&engine).await;
    let root = tempfile::tempdir().unwrap();
    for (index, (runtime, network, expected)) in [
        (
            "sandpit-no-such-runtime",
            "none",
            "no OCI runtime `sandpit-no-such-runtime`",
        ),
        (oci::GVISOR, "bridge", "network `bridge` would silently be"),
        (oci::GVISOR, "none", "too low under gVisor"),
    ]
    .into_iter()
    .enumerate()
    {
        let user = common::test_user(&format!("oci{index}"));
        let _cleanup = common::Cleanup(vec![user.container_name()]);
        let workspace = root.path().join(user.as_str());
        let spec = SandboxSpec {
            user: user.clone(),
            runtime: common::builtin("python-minimal"),
            image: image.clone(),
            workspace: workspace.clone(),
            policy: SandboxPolicy::resolve([&PolicyOverrides {
                oci_runtime: Some(runtime.to_string()),
                network: Some(network.to_string()),
                // Only the last case asks for too few for gVisor.
                pids_limit: Some(if index == 2 { 64 } else { 256 }),
                ..Default::default()
            }])
            .unwrap(),
        };
        let err = format!("{:#}", engine.create_sandbox(&spec).await.unwrap_err());
        assert!(err.contains(expected), "{runtime}: {err}");
        assert!(err.contains(user.as_str()), "names the sandbox: {err}");
        assert!(engine.find_sandbox(&user).await.unwrap().is_none());
        assert!(!workspace.exists(), "nothing half-created");
    }
}

/// A sandbox stopped on purpose while a command runs stays stopped, and the
/// command says it lost its sandbox (under runc and under gVisor, whose
/// sandboxes are otherwise started again after their own limits stop them).
#[tokio::test]
async fn a_sandbox_stopped_during_a_command_stays_stopped() {
    let (sandbox, _root) = common::sandbox("stop-mid").await;
    let command = {
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            sandbox
                .exec_collect(
                    ExecRequest::shell("touch started; sleep 60").timeout(Duration::from_secs(90)),
                )
                .await
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sandbox.read_file("started", 16).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command did not start within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sandbox.stop().await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(60), command)
        .await
        .expect("the command ends once its sandbox is stopped")
        .unwrap()
        .unwrap();
    assert_eq!(
        result.sandbox_lost,
        Some(sandpit::engine::exec::SandboxLoss::Stopped),
        "{result:?}"
    );
    assert_eq!(result.status_code(), 125);
    assert!(!result.sandbox_restarted, "{result:?}");
    assert!(
        !sandbox.inspect().await.unwrap().info.is_running(),
        "a stopped sandbox was started again"
    );
    sandbox.remove(true).await.unwrap();
}

// ---------------------------------------------------------------------------
// The interactive shell through the engine API (issue 12, part 3); the
// terminal side is tested in tmux in tests/dashboard_e2e.rs.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_shell_gets_its_terminal_and_reports_its_status() {
    use sandpit::engine::shell::{ShellEnd, ShellOptions, TermSize};
    let (sandbox, _root) = common::sandbox("shell-api").await;
    let options = ShellOptions {
        term: Some("vt100".to_string()),
        size: Some(TermSize { cols: 77, rows: 11 }),
    };
    let shell = sandbox.open_shell(&options).await.unwrap();
    let (typed, input) = tokio::sync::mpsc::channel(4);
    let (sizes, resizes) = tokio::sync::mpsc::channel(4);
    // Typed ahead: the terminal holds it until the shell reads. The typed
    // line shows `$((6*7))`; only the output shows 42. Output that starts
    // with a byte a multiplexed stream would take for a frame header (^A,
    // alone, then a pause) must not stall what follows.
    typed
        .send(b"printf '\\001'; sleep 0.3; echo \"$TERM $(stty size) $((6*7))\"; exit 3\n".to_vec())
        .await
        .unwrap();
    let mut output = Vec::new();
    let exit = tokio::time::timeout(
        Duration::from_secs(60),
        shell.attach(input, &mut output, resizes, CancellationToken::new()),
    )
    .await
    .expect("the shell exits within 60 s")
    .unwrap();
    let output = String::from_utf8_lossy(&output);
    assert!(output.contains("\u{1}vt100 11 77 42"), "{output:?}");
    assert!(
        !output.contains("sandpit-shell"),
        "the root's line is shown: {output:?}"
    );
    assert_eq!(exit.end, ShellEnd::Exited, "{exit:?}");
    assert_eq!(exit.code, Some(3), "{exit:?}");
    assert_eq!(exit.status_code(), 3);
    drop((typed, sizes));
}

#[tokio::test]
async fn a_client_leaving_a_shell_ends_its_processes() {
    use sandpit::engine::shell::{ShellEnd, ShellOptions};
    let (sandbox, _root) = common::sandbox("shell-leave").await;
    for leave in ["input ends", "cancel"] {
        let shell = sandbox.open_shell(&ShellOptions::default()).await.unwrap();
        let (typed, input) = tokio::sync::mpsc::channel(4);
        let (_sizes, resizes) = tokio::sync::mpsc::channel(4);
        // One job in the background, one that left the tree (a new
        // session, reparented to init), one in the foreground.
        typed
            .send(b"sleep 5151 & setsid sleep 5153 & sleep 5152\n".to_vec())
            .await
            .unwrap();
        let cancel = CancellationToken::new();
        let mut output = Vec::new();
        let session = tokio::spawn({
            let cancel = cancel.clone();
            async move {
                let exit = shell.attach(input, &mut output, resizes, cancel).await;
                (exit, output)
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !common::process_list(&sandbox)
            .await
            .iter()
            .any(|line| line.contains("sleep 5152"))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{leave}: the shell's sleeps did not start within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A daemon another command leaves meanwhile is not the shell's.
        let daemon = format!("sleep 52{}", leave.len());
        let started = common::sh(&sandbox, &format!("setsid {daemon} >/dev/null 2>&1 &")).await;
        assert_eq!(started.exit_code, Some(0), "{started:?}");
        match leave {
            "input ends" => drop(typed),
            _ => cancel.cancel(),
        }
        let (exit, output) = tokio::time::timeout(Duration::from_secs(60), session)
            .await
            .expect("the session ends within 60 s of the client leaving")
            .unwrap();
        let exit = exit.unwrap();
        assert_eq!(exit.end, ShellEnd::Detached, "{leave}: {exit:?}");
        assert_eq!(exit.status_code(), 130, "{leave}");
        let left = common::process_list(&sandbox).await;
        assert!(
            !left.iter().any(|line| line.contains("sleep 515")),
            "{leave}: the shell's processes survived: {left:#?}\n{}",
            String::from_utf8_lossy(&output)
        );
        assert!(
            left.iter().any(|line| line.contains(&daemon)),
            "{leave}: another command's daemon was killed with the shell: {left:#?}"
        );
    }
}

#[tokio::test]
async fn a_shell_in_a_stopped_sandbox_is_refused_with_what_to_do() {
    let (sandbox, _root) = common::sandbox("shell-stopped").await;
    sandbox.stop().await.unwrap();
    let err = sandbox
        .open_shell(&Default::default())
        .await
        .expect_err("a stopped sandbox has no shell");
    let user = sandbox.user();
    assert_eq!(
        err.to_string(),
        format!(
            "the sandbox of user `{user}` is not running (state: exited): start it with `sandpit start {user}`"
        )
    );
}

#[tokio::test]
async fn a_sandbox_stopped_under_its_shell_is_reported_and_stays_stopped() {
    use sandpit::engine::shell::ShellOptions;
    let (sandbox, _root) = common::sandbox("shell-lost").await;
    let shell = sandbox.open_shell(&ShellOptions::default()).await.unwrap();
    let (typed, input) = tokio::sync::mpsc::channel(4);
    let (_sizes, resizes) = tokio::sync::mpsc::channel(4);
    typed.send(b"sleep 6161\n".to_vec()).await.unwrap();
    let session = tokio::spawn(async move {
        let mut output = Vec::new();
        shell
            .attach(input, &mut output, resizes, CancellationToken::new())
            .await
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !common::process_list(&sandbox)
        .await
        .iter()
        .any(|line| line.contains("sleep 6161"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the shell's sleep did not start within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sandbox.stop().await.unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(60), session)
        .await
        .expect("the shell ends within 60 s of its sandbox stopping")
        .unwrap()
        .unwrap();
    assert_eq!(
        exit.sandbox_lost,
        Some(sandpit::engine::exec::SandboxLoss::Stopped),
        "{exit:?}"
    );
    assert_eq!(exit.status_code(), 125);
    assert!(!exit.sandbox_restarted, "{exit:?}");
    assert!(
        exit.reason(sandbox.container_name())
            .is_some_and(|reason| reason.contains("was stopped during the shell")),
        "{exit:?}"
    );
    assert!(
        !sandbox.inspect().await.unwrap().info.is_running(),
        "a stopped sandbox was started again"
    );
    drop(typed);
}
