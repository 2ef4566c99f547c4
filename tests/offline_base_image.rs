//! `scripts/offline-base-image` takes its Debian mirror from the host's own
//! apt sources (or SANDPIT_DEBIAN_MIRROR), never from a built-in public host.
//! These run only its `--print-mirror` mode against made-up apt folders.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn print_mirror(apt_root: &Path, mirror_env: Option<&str>) -> Output {
    let mut command = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/offline-base-image"
    ));
    command
        .arg("--print-mirror")
        .env("SANDPIT_APT_ROOT", apt_root)
        .env_remove("SANDPIT_DEBIAN_MIRROR")
        .env_remove("SANDPIT_DEBIAN_SECURITY_MIRROR");
    if let Some(mirror) = mirror_env {
        command.env("SANDPIT_DEBIAN_MIRROR", mirror);
    }
    common::output_within(
        &mut command,
        std::time::Duration::from_secs(60),
        "scripts/offline-base-image --print-mirror",
    )
}

fn apt_root(files: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("sources.list.d")).unwrap();
    for (name, text) in files {
        std::fs::write(root.path().join(name), text).unwrap();
    }
    root
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn deb822_sources_give_the_archive_and_security_mirrors() {
    let root = apt_root(&[
        (
            "sources.list.d/debian.sources",
            "Types: deb\n# a comment\nURIs: http://mirror.internal/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
             Types: deb deb-src\nURIs: http://mirror.internal/debian-security\nSuites: bookworm-security\nComponents: main\n",
        ),
        (
            "sources.list.d/vendor.sources",
            "Types: deb\nURIs: https://vendor.internal/node_20.x\nSuites: nodistro\nComponents: main\n",
        ),
        (
            "sources.list.d/off.sources",
            "Enabled: no\nTypes: deb\nURIs: http://elsewhere.internal/debian\nSuites: trixie\n",
        ),
        (
            "sources.list.d/ignored.list.disabled",
            "deb http://disabled.internal/debian trixie main\n",
        ),
    ]);
    assert_eq!(
        stdout(&print_mirror(root.path(), None)),
        "archive http://mirror.internal/debian\nsecurity http://mirror.internal/debian-security\n"
    );
}

#[test]
fn one_line_sources_with_options_are_read() {
    let root = apt_root(&[
        (
            "sources.list",
            "# deb http://commented.internal/debian trixie main\n\
             deb https://vendor.internal/node_20.x nodistro main\n\
             deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://mirror.lan/debian trixie main\n",
        ),
        (
            "sources.list.d/security.list",
            "deb http://mirror.lan/debian-security trixie-security main\n",
        ),
    ]);
    assert_eq!(
        stdout(&print_mirror(root.path(), None)),
        "archive http://mirror.lan/debian\nsecurity http://mirror.lan/debian-security\n"
    );
}

#[test]
fn no_debian_source_is_a_clear_error_and_the_variable_wins() {
    let root = apt_root(&[(
        "sources.list.d/vendor.list",
        "deb https://vendor.internal/node_20.x nodistro main\n",
    )]);
    let output = print_mirror(root.path(), None);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no Debian mirror found") && stderr.contains("SANDPIT_DEBIAN_MIRROR"),
        "{stderr}"
    );
    assert_eq!(
        stdout(&print_mirror(
            root.path(),
            Some("http://local.internal/debian")
        )),
        "archive http://local.internal/debian\nsecurity none\n"
    );
}
