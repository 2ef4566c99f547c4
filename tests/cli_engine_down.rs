//! An engine that is down gets a clear error, not a panic.

mod common;

use std::process::Command;

fn sandpit(args: &[&str]) -> (Option<i32>, String, String) {
    let output = common::output_within(
        Command::new(env!("CARGO_BIN_EXE_sandpit"))
            .args(args)
            .env("DOCKER_HOST", "unix:///nonexistent/sandpit-test.sock"),
        std::time::Duration::from_secs(60),
        &format!("sandpit {args:?} against an absent engine"),
    );
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn build_names_the_engine_and_the_fix() {
    let (code, _, stderr) = sandpit(&["build", "python-minimal"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("unix:///nonexistent/sandpit-test.sock"),
        "{stderr}"
    );
    assert!(stderr.contains("scripts/docker-up"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn doctor_reports_the_engine_down() {
    let (code, stdout, stderr) = sandpit(&["doctor"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("NOT ANSWERING"), "{stdout}");
}

#[test]
fn runtimes_still_lists_definitions() {
    let (code, stdout, stderr) = sandpit(&["runtimes", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"python-datascience"), "{names:?}");
    assert!(rows[0]["state"].is_null());
    assert!(stderr.contains("image states are unknown"), "{stderr}");
}

#[test]
fn unknown_runtime_lists_the_known_ones() {
    let (code, _, stderr) = sandpit(&["build", "no-such-runtime"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("unknown runtime `no-such-runtime`"),
        "{stderr}"
    );
    assert!(stderr.contains("python-minimal"), "{stderr}");
}
