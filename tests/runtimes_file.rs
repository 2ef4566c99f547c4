//! Invalid runtimes files give precise errors: each fixture in
//! fixtures/runtimes/invalid starts with `# expect: LINE:COLUMN: TEXT`.

mod common;

use std::path::Path;
use std::process::Command;

use sandpit::engine::runtimes::{Origin, RuntimeSet, parse_runtimes};

fn fixtures() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runtimes/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "fixtures missing in {}", dir.display());
    files
}

#[test]
fn each_invalid_fixture_gives_its_precise_error() {
    for path in fixtures() {
        let text = std::fs::read_to_string(&path).unwrap();
        let expectation = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an `# expect:` line", path.display()));
        let (position, message) = expectation
            .split_once(": ")
            .unwrap_or((expectation.trim_end_matches(':'), ""));
        let name = path.display().to_string();
        let err = parse_runtimes(&text, &name, Origin::File(path.clone()))
            .expect_err(&format!("{name} should be refused"));
        assert_eq!(
            format!("{}:{}", err.line, err.column),
            position,
            "{name}: wrong position in `{err}`"
        );
        assert!(
            err.to_string().starts_with(&format!("{name}:{position}: ")),
            "{err}"
        );
        assert!(
            err.message.contains(message),
            "{name}: `{}` lacks `{message}`",
            err.message
        );
    }
}

#[test]
fn the_cli_reports_a_bad_user_file_without_panicking() {
    for path in fixtures() {
        let output = common::output_within(
            Command::new(env!("CARGO_BIN_EXE_sandpit"))
                .arg("--runtimes")
                .arg(&path)
                .arg("runtimes")
                .env("DOCKER_HOST", "unix:///nonexistent/sandpit-test.sock"),
            std::time::Duration::from_secs(60),
            &format!("sandpit runtimes with {}", path.display()),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}: {stderr}",
            path.display()
        );
        assert!(
            stderr.starts_with(&format!("error: {}:", path.display())),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_missing_user_file_is_named() {
    let err = RuntimeSet::load(Some(Path::new("/nonexistent/runtimes.toml"))).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/runtimes.toml"),
        "{err}"
    );
}

#[test]
fn the_readme_custom_runtime_parses() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("name = \"ml-env\"")
        .expect("README shows ml-env");
    let block_start = readme[..start].rfind("[[runtime]]").unwrap();
    let block_end = start + readme[start..].find("```").unwrap();
    let runtimes = parse_runtimes(
        &readme[block_start..block_end],
        "README.md",
        Origin::Builtin,
    )
    .unwrap();
    assert_eq!(runtimes[0].name, "ml-env");
    assert_eq!(runtimes[0].packages, ["torch", "transformers", "pandas"]);
}
