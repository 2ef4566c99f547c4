//! Sessions against the real engine: isolation between users, one container
//! per user under concurrency, reattaching, idle reaping, events, and the
//! isolation check.

mod common;

use std::time::{Duration, SystemTime};

use futures_util::StreamExt as _;
use sandpit::engine::policy::PolicyOverrides;
use sandpit::engine::sandbox::UserId;
use sandpit::sessions::SessionManager;
use sandpit::sessions::isolation::{self, PROBES, ProbeResult, Verdict};

async fn session(manager: &SessionManager, user: &UserId) -> sandpit::engine::sandbox::Sandbox {
    manager
        .get_or_create(user, None, &PolicyOverrides::default(), &mut |_| {})
        .await
        .unwrap_or_else(|err| panic!("session for {user}: {err:#}"))
}

#[tokio::test]
async fn two_users_cannot_see_each_others_files() {
    let root = tempfile::tempdir().unwrap();
    let (alice, bob) = (common::test_user("iso-alice"), common::test_user("iso-bob"));
    let _cleanup = common::Cleanup(vec![alice.container_name(), bob.container_name()]);
    let manager = common::manager(root.path(), |_| {}).await;
    let alice_box = session(&manager, &alice).await;
    let bob_box = session(&manager, &bob).await;
    alice_box
        .write_file("secret.txt", b"alice's secret".to_vec())
        .await
        .unwrap();
    let made_inside = common::sh(&alice_box, "echo inside > made-inside.txt").await;
    assert_eq!(made_inside.exit_code, Some(0));

    // On the host: separate folders.
    assert!(root.path().join(alice.as_str()).join("secret.txt").exists());
    assert!(
        root.path()
            .join(alice.as_str())
            .join("made-inside.txt")
            .exists()
    );
    assert!(!root.path().join(bob.as_str()).join("secret.txt").exists());

    // Through the file operations.
    let names: Vec<String> = bob_box
        .list_dir(".")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.display_name())
        .collect();
    assert!(names.is_empty(), "{names:?}");
    for path in [
        format!("../{alice}/secret.txt"),
        format!("{}/secret.txt", root.path().join(alice.as_str()).display()),
    ] {
        assert!(bob_box.read_file(&path, 4096).await.is_err(), "{path}");
    }
    // From inside bob's sandbox.
    let look = common::sh(
        &bob_box,
        &format!(
            "cat /workspace/../{alice}/secret.txt {}/secret.txt 2>/dev/null; find / \\( -path /proc -o -path /sys \\) -prune -o -name secret.txt -print 2>/dev/null",
            root.path().join(alice.as_str()).display()
        ),
    )
    .await;
    assert_eq!(look.stdout_text(), "", "bob saw alice's files");
}

#[tokio::test]
async fn concurrent_get_or_create_gives_one_container() {
    let root = tempfile::tempdir().unwrap();
    let user = common::test_user("concurrent");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    // Two managers stand for two sandpit processes.
    let managers = [
        std::sync::Arc::new(common::manager(root.path(), |_| {}).await),
        std::sync::Arc::new(common::manager(root.path(), |_| {}).await),
    ];
    let calls: Vec<_> = (0..6)
        .map(|i| {
            let manager = managers[i % 2].clone();
            let user = user.clone();
            tokio::spawn(async move {
                session(&manager, &user)
                    .await
                    .inspect()
                    .await
                    .unwrap()
                    .info
                    .container_id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for call in calls {
        ids.push(call.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let engine = common::engine().await;
    let count = engine
        .list_sandboxes()
        .await
        .unwrap()
        .iter()
        .filter(|s| s.user == user.as_str())
        .count();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_fresh_manager_reattaches_and_workspaces_survive_removal() {
    let root = tempfile::tempdir().unwrap();
    let user = common::test_user("reattach");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    let first = common::manager(root.path(), |_| {}).await;
    let sandbox = session(&first, &user).await;
    let id = sandbox.inspect().await.unwrap().info.container_id;
    sandbox
        .write_file("notes.txt", b"still here".to_vec())
        .await
        .unwrap();
    drop(sandbox);
    drop(first);

    let second = common::manager(root.path(), |_| {}).await;
    let listed = second.list().await.unwrap();
    let found = listed
        .iter()
        .find(|s| s.sandbox.user == user.as_str())
        .expect("listed by a new manager");
    assert_eq!(found.sandbox.container_id, id);
    assert!(found.last_used >= found.sandbox.created);
    let again = session(&second, &user).await;
    assert_eq!(
        again.inspect().await.unwrap().info.container_id,
        id,
        "same container"
    );
    assert_eq!(
        again.read_file("notes.txt", 100).await.unwrap().bytes,
        b"still here"
    );

    // Removal without purge keeps the workspace; the user comes back to it.
    second.destroy(&user, false).await.unwrap();
    assert!(
        common::engine()
            .await
            .find_sandbox(&user)
            .await
            .unwrap()
            .is_none()
    );
    let back = session(&second, &user).await;
    assert_ne!(
        back.inspect().await.unwrap().info.container_id,
        id,
        "a new container"
    );
    assert_eq!(
        back.read_file("notes.txt", 100).await.unwrap().bytes,
        b"still here"
    );
    second.destroy(&user, true).await.unwrap();
    assert!(!root.path().join(user.as_str()).exists(), "purged");
}

/// Every entry under `top`, links not followed, with its owner.
fn owners_under(top: &std::path::Path) -> Vec<(std::path::PathBuf, u32, u32)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut found = Vec::new();
    let mut folders = vec![top.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            if metadata.is_dir() {
                folders.push(path.clone());
            }
            found.push((path, metadata.uid(), metadata.gid()));
        }
    }
    found
}

fn owner_of(path: &std::path::Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt as _;
    let metadata = std::fs::symlink_metadata(path).unwrap();
    (metadata.uid(), metadata.gid())
}

#[tokio::test]
async fn a_kept_workspace_follows_its_user_to_another_uid() {
    let root = tempfile::tempdir().unwrap();
    let user = common::test_user("uid-move");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    // Root's files on the host, out of the workspace, that links inside it
    // point to.
    let host = tempfile::tempdir().unwrap();
    let host_file = host.path().join("secret");
    let host_dir = host.path().join("dir");
    std::fs::write(&host_file, "host").unwrap();
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("inner"), "host").unwrap();

    let manager = common::manager(root.path(), |_| {}).await;
    let first = session(&manager, &user).await;
    let made = common::sh(
        &first,
        &format!(
            "id -u && mkdir -p src/pkg/deep empty && echo one > src/pkg/deep/a.txt && echo two > src/pkg/b.txt && echo three > notes.txt && ln -s {} link-to-host-file && ln -s {} src/link-to-host-dir",
            host_file.display(),
            host_dir.display()
        ),
    )
    .await;
    assert_eq!(made.exit_code, Some(0), "{}", made.stderr_text());
    assert_eq!(made.stdout_text(), "1000\n");
    let workspace = manager.workspace_of(&user);
    assert_eq!(
        owner_of(&workspace.join("src/pkg/deep/a.txt")),
        (1000, 1000)
    );

    // Removed, workspace kept; the user comes back as another uid.
    manager.destroy(&user, false).await.unwrap();
    let overrides = PolicyOverrides {
        user: Some("1500:1500".to_string()),
        ..Default::default()
    };
    let back = manager
        .get_or_create(&user, None, &overrides, &mut |_| {})
        .await
        .unwrap_or_else(|err| panic!("session as 1500 for {user}: {err:#}"));

    // The old files and folders are writable from inside...
    let wrote = common::sh(
        &back,
        "id -u && echo more >> src/pkg/deep/a.txt && echo new > src/pkg/deep/new.txt && rm src/pkg/b.txt && mkdir empty/inside && echo four >> notes.txt && cat src/pkg/deep/a.txt",
    )
    .await;
    assert_eq!(wrote.exit_code, Some(0), "{}", wrote.stderr_text());
    assert_eq!(wrote.stdout_text(), "1500\none\nmore\n");
    // ...and through the file operations `sandpit files` and the dashboard use.
    back.write_file("src/pkg/deep/a.txt", b"replaced".to_vec())
        .await
        .unwrap();
    back.write_file("empty/inside/f.txt", b"f".to_vec())
        .await
        .unwrap();
    back.rename("src/pkg/deep/new.txt", "src/pkg/moved.txt")
        .await
        .unwrap();
    back.delete("notes.txt").await.unwrap();
    back.delete("src/pkg/deep").await.unwrap();
    let names: Vec<String> = back
        .list_dir("src/pkg")
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.display_name())
        .collect();
    assert_eq!(names, ["moved.txt"]);
    assert_eq!(
        back.read_file("empty/inside/f.txt", 100)
            .await
            .unwrap()
            .bytes,
        b"f"
    );

    // On the host: everything in the workspace is 1500's, the links
    // themselves too; what they point to out of it is still root's.
    assert_eq!(owner_of(&workspace), (1500, 1500));
    let entries = owners_under(&workspace);
    assert!(entries.len() >= 7, "{entries:?}");
    for (path, uid, gid) in entries {
        assert_eq!((uid, gid), (1500, 1500), "{}", path.display());
    }
    for path in [&host_file, &host_dir, &host_dir.join("inner")] {
        assert_eq!(owner_of(path), (0, 0), "{}", path.display());
    }
    manager.destroy(&user, true).await.unwrap();
}

#[tokio::test]
async fn the_idle_reaper_stops_a_session_and_it_comes_back() {
    let root = tempfile::tempdir().unwrap();
    let user = common::test_user("idle");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    let manager = common::manager(root.path(), |config| {
        config.idle_timeout = Duration::from_secs(60);
    })
    .await;
    let sandbox = session(&manager, &user).await;
    sandbox
        .write_file("work.py", b"print(1)".to_vec())
        .await
        .unwrap();
    let now = SystemTime::now();
    assert!(
        !manager.reap_idle(now).await.unwrap().contains(&user),
        "just used"
    );
    let later = now + Duration::from_secs(3600);
    assert!(manager.reap_idle(later).await.unwrap().contains(&user));
    assert_eq!(sandbox.inspect().await.unwrap().info.state, "exited");
    let back = session(&manager, &user).await;
    assert_eq!(back.inspect().await.unwrap().info.state, "running");
    assert_eq!(
        back.read_file("work.py", 100).await.unwrap().bytes,
        b"print(1)"
    );

    // A timeout of zero never reaps.
    let never = common::manager(root.path(), |config| config.idle_timeout = Duration::ZERO).await;
    assert!(never.reap_idle(later).await.unwrap().is_empty());
    manager.destroy(&user, true).await.unwrap();
}

#[tokio::test]
async fn bad_user_ids_create_nothing() {
    let root = tempfile::tempdir().unwrap();
    for bad in ["../x", "/", "", "a b", "a\u{1}b", ".x", "-x", "a/b"] {
        assert!(UserId::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    // An unknown runtime is refused before anything is made too.
    let manager = common::manager(root.path(), |_| {}).await;
    let user = common::test_user("unknown-runtime");
    let err = manager
        .get_or_create(
            &user,
            Some("no-such-runtime"),
            &PolicyOverrides::default(),
            &mut |_| {},
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown runtime `no-such-runtime`"),
        "{err}"
    );
    assert!(
        common::engine()
            .await
            .find_sandbox(&user)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!root.path().join(user.as_str()).exists());
}

#[tokio::test]
async fn events_report_sessions_coming_and_going() {
    let root = tempfile::tempdir().unwrap();
    let user = common::test_user("events");
    let _cleanup = common::Cleanup(vec![user.container_name()]);
    let manager = common::manager(root.path(), |_| {}).await;
    let mut events = Box::pin(manager.watch());
    // The watch is live once the engine has answered the subscription; a
    // session created now is seen.
    let sandbox = session(&manager, &user).await;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains(&"start".to_string()) {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("a start event within 30s")
            .unwrap()
            .unwrap();
        if event.user == user.as_str() {
            seen.push(event.action);
        }
    }
    assert!(seen.contains(&"create".to_string()), "{seen:?}");
    drop(sandbox);
    manager.destroy(&user, true).await.unwrap();
    loop {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("a destroy event within 30s")
            .unwrap()
            .unwrap();
        if event.user == user.as_str() && event.action == "destroy" {
            break;
        }
    }
}

/// Probes that do not hold under the default policy today, with the verdict
/// they give and why: the battery reports them honestly, and these tests
/// say so rather than hide them.
fn known_gaps() -> Vec<(&'static str, Verdict)> {
    let mut gaps = Vec::new();
    if common::under_gvisor() {
        // gVisor shows no pids cgroup, and flooding to find the limit would
        // kill the sandbox.
        gaps.push(("pids limit", Verdict::Untested));
    }
    gaps
}

/// Asserts exactly `leaked` (plus the known gaps) did not hold.
fn assert_only_leaks(results: &[ProbeResult], leaked: &[&str], case: &str) {
    assert_eq!(results.len(), PROBES.len());
    let gaps = known_gaps();
    for result in results {
        let expected = if leaked.contains(&result.probe.as_str()) {
            Verdict::Leaked
        } else {
            gaps.iter()
                .find(|(name, _)| *name == result.probe)
                .map_or(Verdict::Blocked, |(_, verdict)| *verdict)
        };
        assert_eq!(
            result.verdict,
            expected,
            "{case}: probe `{}` gave {}: {}",
            result.probe,
            result.verdict(),
            result.evidence
        );
        assert!(!result.evidence.is_empty(), "{case}: {result:?}");
    }
}

#[tokio::test]
async fn isolation_battery_blocks_everything_under_the_default_policy() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (common::test_user("check-a"), common::test_user("check-b"));
    let _cleanup = common::Cleanup(vec![a.container_name(), b.container_name()]);
    let manager = common::manager(root.path(), |_| {}).await;
    let from = session(&manager, &a).await;
    let target = session(&manager, &b).await;
    let workspace = manager.workspace_of(&b).display().to_string();
    let results = isolation::check_isolation(&from, &target, &workspace)
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
    assert!(PROBES.len() >= 20);
    assert_only_leaks(&results, &[], "default policy");
    // The canary and the marker are cleaned up, and so are the probes' files.
    assert!(target.list_dir(".").await.unwrap().is_empty());
    let left = common::process_list(&target).await;
    assert!(left.iter().all(|p| !p.contains("sleep 600")), "{left:?}");
    let litter = common::sh(&from, "find /tmp /dev/shm -name '.sandpit-probe*'").await;
    assert_eq!(litter.stdout_text(), "");
}

/// One protection loosened on purpose makes exactly its probes leak: the
/// battery runs from a sandbox with `overrides` against a default one.
async fn loosened(tag: &str, overrides: PolicyOverrides, leaked: &[&str]) {
    let root = tempfile::tempdir().unwrap();
    let (target_user, user) = (
        common::test_user(&format!("{tag}-t")),
        common::test_user(tag),
    );
    let _cleanup = common::Cleanup(vec![target_user.container_name(), user.container_name()]);
    let manager = common::manager(root.path(), |_| {}).await;
    let target = session(&manager, &target_user).await;
    let workspace = manager.workspace_of(&target_user).display().to_string();
    let mut overrides = overrides;
    if let Some(volumes) = &mut overrides.volumes {
        // The other workspace, known only now.
        *volumes = volumes
            .iter()
            .map(|(host, path)| (host.replace("{other}", &workspace), path.clone()))
            .collect();
    }
    let from = manager
        .get_or_create(&user, None, &overrides, &mut |_| {})
        .await
        .unwrap_or_else(|err| panic!("{tag}: {err:#}"));
    let results = isolation::check_isolation(&from, &target, &workspace)
        .await
        .unwrap_or_else(|err| panic!("{tag}: {err:#}"));
    assert_only_leaks(&results, leaked, tag);
}

#[tokio::test]
async fn isolation_battery_names_the_other_workspace_mounted_as_a_volume() {
    loosened(
        "loose-volume",
        PolicyOverrides {
            volumes: Some([("{other}".to_string(), "/mnt/other:ro".to_string())].into()),
            ..Default::default()
        },
        &["other workspace by path", "host paths in mountinfo"],
    )
    .await;
}

#[tokio::test]
async fn isolation_battery_names_a_workspace_without_a_size_limit() {
    loosened(
        "loose-disk",
        PolicyOverrides {
            disk: Some(sandpit::engine::policy::DiskLimit(None)),
            ..Default::default()
        },
        &["workspace disk quota"],
    )
    .await;
}

#[tokio::test]
async fn isolation_battery_names_a_writable_root() {
    loosened(
        "loose-root",
        PolicyOverrides {
            read_only: Some(false),
            ..Default::default()
        },
        &["write outside the workspace"],
    )
    .await;
}

/// Under gVisor (registered with --network=none) a network is refused
/// before anything is created, rather than silently left offline.
#[tokio::test]
async fn isolation_battery_names_a_network() {
    if common::under_gvisor() {
        let root = tempfile::tempdir().unwrap();
        let user = common::test_user("loose-net");
        let _cleanup = common::Cleanup(vec![user.container_name()]);
        let manager = common::manager(root.path(), |_| {}).await;
        let overrides = PolicyOverrides {
            network: Some("bridge".to_string()),
            ..Default::default()
        };
        let err = manager
            .get_or_create(&user, None, &overrides, &mut |_| {})
            .await
            .expect_err("gVisor with a network");
        assert!(format!("{err:#}").contains("network `bridge`"), "{err:#}");
        return;
    }
    loosened(
        "loose-net",
        PolicyOverrides {
            network: Some("bridge".to_string()),
            ..Default::default()
        },
        &["reach the network"],
    )
    .await;
}

/// Under gVisor (20221219, measured) a setuid exec gains nothing even
/// without no-new-privileges, and /proc shows no NoNewPrivs line: only the
/// capabilities kept show.
#[tokio::test]
async fn isolation_battery_names_setuid_and_kept_capabilities() {
    let loose = PolicyOverrides {
        no_new_privileges: Some(false),
        ..Default::default()
    };
    let kept = PolicyOverrides {
        drop_capabilities: Some(false),
        ..loose.clone()
    };
    if common::under_gvisor() {
        loosened("loose-caps", kept, &["gain capabilities"]).await;
        return;
    }
    loosened(
        "loose-setuid",
        loose,
        &["setuid binary gains a uid", "gain capabilities"],
    )
    .await;
    loosened(
        "loose-caps",
        kept,
        &[
            "setuid binary gains a uid",
            "capabilities after setuid exec",
            "gain capabilities",
        ],
    )
    .await;
}
