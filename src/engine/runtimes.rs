//! Runtime definitions: the `[[runtime]]` tables of runtimes.toml.
//!
//! The repo's runtimes.toml is embedded as the built-in set; a user file adds
//! runtimes or replaces built-ins by name. Every field that ends up in a shell
//! command or a Dockerfile is validated here, so the image builder can trust
//! what it is given.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::policy::PolicyOverrides;
use crate::toml_file::{Locator, TomlFileError};

/// The built-in runtimes, as shipped in the repo's runtimes.toml.
pub const BUILTIN_RUNTIMES_TOML: &str = include_str!("../../runtimes.toml");
const BUILTIN_SOURCE_NAME: &str = "runtimes.toml (built-in)";

/// Where the mounted workspace lives inside a sandbox unless a runtime says otherwise.
pub const DEFAULT_WORK_DIR: &str = "/workspace";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    Node,
    Shell,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Node => "node",
            Language::Shell => "shell",
        }
    }

    fn default_run(self) -> &'static str {
        match self {
            Language::Python => "python3 {file}",
            Language::Node => "node {file}",
            Language::Shell => "sh {file}",
        }
    }

    fn default_file(self) -> &'static str {
        match self {
            Language::Python => "main.py",
            Language::Node => "main.js",
            Language::Shell => "main.sh",
        }
    }

    /// One level of indentation in the dashboard's editor when neither the
    /// runtime nor the config says: PEP 8's 4 spaces for Python, the
    /// 2 spaces of the common JavaScript/TypeScript styles, and 2 for shell
    /// (Google's shell style guide).
    pub fn default_indent(self) -> Indent {
        match self {
            Language::Python => Indent::Spaces(4),
            Language::Node | Language::Shell => Indent::Spaces(2),
        }
    }

    fn default_starter(self) -> &'static str {
        match self {
            Language::Python => "print(\"hello from sandpit\")\n",
            Language::Node => "console.log(\"hello from sandpit\");\n",
            Language::Shell => "echo \"hello from sandpit\"\n",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One level of indentation in the dashboard's editor: what Tab inserts and
/// shift-tab removes. Written `indent = 4` (spaces, 1 to 8) or
/// `indent = "tab"` in runtimes.toml and in the config's `[editor]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indent {
    /// This many spaces, 1 to [`Indent::MAX_SPACES`].
    Spaces(u8),
    /// One hard tab character.
    Tab,
}

impl Indent {
    /// The widest indent in spaces that is accepted.
    pub const MAX_SPACES: u8 = 8;
    /// The columns a hard tab is drawn over in the editor.
    pub const TAB_WIDTH: u8 = 4;

    /// Columns one level takes on screen: the spaces, or a tab's width.
    pub fn width(self) -> u8 {
        match self {
            Indent::Spaces(n) => n,
            Indent::Tab => Self::TAB_WIDTH,
        }
    }

    /// Parses the TOML value: a number of spaces or `"tab"`. The error
    /// says what is accepted.
    pub fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let spaces = match value {
            toml::Value::String(text) if text == "tab" => return Ok(Indent::Tab),
            toml::Value::Integer(n) => u8::try_from(*n).ok(),
            _ => None,
        };
        match spaces {
            Some(n) if (1..=Self::MAX_SPACES).contains(&n) => Ok(Indent::Spaces(n)),
            _ => Err(format!(
                "indent `{value}` is neither a number of spaces from 1 to {} nor \"tab\"",
                Self::MAX_SPACES
            )),
        }
    }
}

impl fmt::Display for Indent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Indent::Spaces(n) => write!(f, "{n} spaces"),
            Indent::Tab => f.write_str("tab"),
        }
    }
}

impl Serialize for Indent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Indent::Spaces(n) => serializer.serialize_u8(*n),
            Indent::Tab => serializer.serialize_str("tab"),
        }
    }
}

impl<'de> Deserialize<'de> for Indent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(deserializer)?;
        Self::from_toml(&value).map_err(serde::de::Error::custom)
    }
}

/// How a runtime's image comes to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// sandpit builds an image on top of this one.
    Build { base_image: String },
    /// The image is used as it is; nothing is built.
    Prebuilt { image: String },
}

/// Where a runtime's definition came from, for messages and `sandpit runtimes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Builtin,
    File(PathBuf),
}

/// A validated runtime.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Runtime {
    pub name: String,
    pub description: String,
    pub language: Language,
    pub source: ImageSource,
    pub system_packages: Vec<String>,
    pub packages: Vec<String>,
    pub setup: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub work_dir: String,
    pub run: String,
    pub file: String,
    pub starter: String,
    /// The editor's indentation for this runtime's code, when the runtime
    /// sets it; otherwise the config's `[editor]` indent for the language,
    /// else [`Language::default_indent`]. Editor-only: it is not part of the
    /// image's content hash, so changing it rebuilds nothing.
    pub indent: Option<Indent>,
    /// Sandbox policy for this runtime, over the config file's.
    pub sandbox: PolicyOverrides,
    pub origin: Origin,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimesError {
    #[error(transparent)]
    Invalid(#[from] TomlFileError),
    #[error("cannot read runtimes file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    runtime: Vec<Spanned<RawRuntime>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    language: Language,
    base_image: Option<Spanned<String>>,
    image: Option<Spanned<String>>,
    #[serde(default)]
    system_packages: Vec<Spanned<String>>,
    #[serde(default)]
    packages: Vec<Spanned<String>>,
    #[serde(default)]
    setup: Vec<String>,
    #[serde(default)]
    env: Option<BTreeMap<Spanned<String>, String>>,
    work_dir: Option<Spanned<String>>,
    run: Option<Spanned<String>>,
    file: Option<Spanned<String>>,
    starter: Option<String>,
    indent: Option<Indent>,
    sandbox: Option<Spanned<PolicyOverrides>>,
}

/// The runtimes in force: built-ins, then the user's file on top, by name.
#[derive(Debug, Clone, Default)]
pub struct RuntimeSet {
    runtimes: Vec<Runtime>,
}

impl RuntimeSet {
    /// The built-in runtimes alone.
    pub fn builtin() -> Result<Self, RuntimesError> {
        let runtimes = parse_runtimes(BUILTIN_RUNTIMES_TOML, BUILTIN_SOURCE_NAME, Origin::Builtin)?;
        Ok(Self { runtimes })
    }

    /// Built-ins plus a user file on top, when one is given.
    pub fn load(user_file: Option<&Path>) -> Result<Self, RuntimesError> {
        let mut set = Self::builtin()?;
        if let Some(path) = user_file {
            let text = std::fs::read_to_string(path).map_err(|source| RuntimesError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let user = parse_runtimes(
                &text,
                &path.display().to_string(),
                Origin::File(path.to_path_buf()),
            )?;
            set.overlay(user);
        }
        Ok(set)
    }

    /// Adds runtimes, replacing any of the same name in place.
    pub fn overlay(&mut self, runtimes: Vec<Runtime>) {
        for runtime in runtimes {
            match self.runtimes.iter_mut().find(|r| r.name == runtime.name) {
                Some(existing) => *existing = runtime,
                None => self.runtimes.push(runtime),
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Runtime> {
        self.runtimes.iter()
    }

    pub fn names(&self) -> Vec<&str> {
        self.runtimes.iter().map(|r| r.name.as_str()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&Runtime> {
        self.runtimes.iter().find(|r| r.name == name)
    }

    /// Like `get`, with an error that lists what exists.
    pub fn require(&self, name: &str) -> anyhow::Result<&Runtime> {
        self.get(name).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown runtime `{name}`; known runtimes: {}",
                self.names().join(", ")
            )
        })
    }

    pub fn len(&self) -> usize {
        self.runtimes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runtimes.is_empty()
    }
}

/// A runtime's `run` template with `{file}` replaced by the shell-quoted
/// name. A name that is not plain text (any bytes but NUL and `/`) cannot
/// travel in the exec API's UTF-8 command line as it is: the command first
/// rebuilds it from octal escapes with `printf`, keeping trailing newlines.
pub fn run_command(template: &str, file: impl AsRef<[u8]>) -> String {
    let file = file.as_ref();
    match std::str::from_utf8(file) {
        Ok(text) if super::names::is_plain(file) => {
            template.replace("{file}", &super::images::shell_quote(text))
        }
        _ => format!(
            "f=$(printf '%bx' '{}'); f=${{f%x}}; {}",
            super::names::printf_escape(file),
            template.replace("{file}", "\"$f\"")
        ),
    }
}

/// Parses and validates one runtimes file. `file_name` is used in errors.
pub fn parse_runtimes(
    text: &str,
    file_name: &str,
    origin: Origin,
) -> Result<Vec<Runtime>, TomlFileError> {
    let locator = Locator::new(text, file_name);
    let at = |span: Range<usize>, message: String| locator.error(span, message);
    let raw: RawFile = locator.parse()?;

    let mut runtimes: Vec<Runtime> = Vec::with_capacity(raw.runtime.len());
    let mut seen: BTreeMap<String, Range<usize>> = BTreeMap::new();
    for spanned in raw.runtime {
        let table_span = spanned.span();
        let raw = spanned.into_inner();

        let name_span = raw.name.span();
        let name = raw.name.into_inner();
        check_runtime_name(&name).map_err(|msg| at(name_span.clone(), msg))?;
        if let Some(first) = seen.get(&name) {
            let line = locator.line_of(first.start);
            return Err(at(
                name_span,
                format!("duplicate runtime name `{name}` (first defined on line {line})"),
            ));
        }
        seen.insert(name.clone(), name_span);

        let source = match (raw.base_image, raw.image) {
            (Some(base), None) => {
                let span = base.span();
                let base = base.into_inner();
                check_image_ref(&base).map_err(|msg| at(span, format!("base_image: {msg}")))?;
                ImageSource::Build { base_image: base }
            }
            (None, Some(image)) => {
                let span = image.span();
                let image = image.into_inner();
                check_image_ref(&image).map_err(|msg| at(span, format!("image: {msg}")))?;
                ImageSource::Prebuilt { image }
            }
            (Some(_), Some(image)) => {
                return Err(at(
                    image.span(),
                    format!(
                        "runtime `{name}` sets both base_image and image; set base_image to build on an image, or image to use one as it is"
                    ),
                ));
            }
            (None, None) => {
                return Err(at(
                    table_span,
                    format!(
                        "runtime `{name}` sets neither base_image nor image; set base_image to build on an image, or image to use one as it is"
                    ),
                ));
            }
        };

        if raw.language == Language::Shell
            && let Some(first) = raw.packages.first()
        {
            return Err(at(
                first.span(),
                format!(
                    "runtime `{name}` is a shell runtime, which has no package manager for `packages`; list Debian packages in system_packages"
                ),
            ));
        }
        let system_packages = check_packages("system_packages", raw.system_packages, &at)?;
        let packages = check_packages("packages", raw.packages, &at)?;
        if let ImageSource::Prebuilt { image } = &source
            && (!system_packages.is_empty() || !packages.is_empty() || !raw.setup.is_empty())
        {
            return Err(at(
                table_span,
                format!(
                    "runtime `{name}` uses image `{image}` as it is, so it cannot install packages or run setup; use base_image to build on it instead"
                ),
            ));
        }

        let mut env = BTreeMap::new();
        for (key, value) in raw.env.unwrap_or_default() {
            let span = key.span();
            let key = key.into_inner();
            check_env(&key, &value).map_err(|msg| at(span, msg))?;
            env.insert(key, value);
        }

        let work_dir = match raw.work_dir {
            Some(dir) => {
                let span = dir.span();
                let dir = dir.into_inner();
                check_work_dir(&dir).map_err(|msg| at(span, msg))?;
                dir
            }
            None => DEFAULT_WORK_DIR.to_string(),
        };

        let file = match raw.file {
            Some(file) => {
                let span = file.span();
                let file = file.into_inner();
                check_file_name(&file).map_err(|msg| at(span, msg))?;
                file
            }
            None => raw.language.default_file().to_string(),
        };

        let run = match raw.run {
            Some(run) => {
                let span = run.span();
                let run = run.into_inner();
                if run.trim().is_empty() {
                    return Err(at(span, "run: the command template is empty".to_string()));
                }
                run
            }
            None => raw.language.default_run().to_string(),
        };

        let sandbox = match raw.sandbox {
            Some(spanned) => {
                let span = spanned.span();
                let sandbox = spanned.into_inner();
                sandbox
                    .validate()
                    .map_err(|msg| at(span, format!("sandbox: {msg}")))?;
                sandbox
            }
            None => PolicyOverrides::default(),
        };

        runtimes.push(Runtime {
            name,
            description: raw.description,
            language: raw.language,
            source,
            system_packages,
            packages,
            setup: raw.setup,
            env,
            work_dir,
            run,
            file,
            starter: raw
                .starter
                .unwrap_or_else(|| raw.language.default_starter().to_string()),
            indent: raw.indent,
            sandbox,
            origin: origin.clone(),
        });
    }
    Ok(runtimes)
}

fn check_packages(
    field: &str,
    packages: Vec<Spanned<String>>,
    at: &impl Fn(Range<usize>, String) -> TomlFileError,
) -> Result<Vec<String>, TomlFileError> {
    packages
        .into_iter()
        .map(|package| {
            let span = package.span();
            let package = package.into_inner();
            check_package(&package).map_err(|msg| at(span, format!("{field}: {msg}")))?;
            Ok(package)
        })
        .collect()
}

/// Names become image repositories (`sandpit/<name>`) and label values, so
/// they follow Docker's repository rules.
pub fn check_runtime_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("runtime name is empty".to_string());
    }
    if name.len() > 64 {
        return Err(format!(
            "runtime name `{name}` is longer than 64 characters"
        ));
    }
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    let valid_ends = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !valid_chars || !valid_ends {
        return Err(format!(
            "runtime name `{name}` must use lowercase letters, digits, `-`, `_` and `.`, and start and end with a letter or digit"
        ));
    }
    Ok(())
}

/// Package names and version specifiers are passed to apt, pip and npm on a
/// shell command line. They are quoted there too; this refuses anything that
/// could be more than one word or read as an option.
pub fn check_package(package: &str) -> Result<(), String> {
    if package.is_empty() {
        return Err("empty package name".to_string());
    }
    if package.starts_with('-') {
        return Err(format!(
            "package `{package}` starts with `-`, which would be read as an option"
        ));
    }
    if let Some(bad) = package.chars().find(|c| {
        !(c.is_ascii_alphanumeric()
            || matches!(
                c,
                '@' | '/'
                    | '.'
                    | '_'
                    | '-'
                    | '+'
                    | '='
                    | '~'
                    | '^'
                    | ':'
                    | '<'
                    | '>'
                    | '!'
                    | ','
                    | '['
                    | ']'
                    | '*'
            ))
    }) {
        return Err(format!(
            "package `{}` contains {}, which is not allowed in a package name",
            package.escape_debug(),
            describe_char(bad)
        ));
    }
    Ok(())
}

fn check_image_ref(image: &str) -> Result<(), String> {
    if image.is_empty() {
        return Err("empty image reference".to_string());
    }
    if image.starts_with('-') {
        return Err(format!("image `{image}` starts with `-`"));
    }
    if let Some(bad) = image
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@')))
    {
        return Err(format!(
            "image `{}` contains {}, which is not allowed in an image reference",
            image.escape_debug(),
            describe_char(bad)
        ));
    }
    Ok(())
}

/// Environment keys become `ENV` lines and shell variables; values are quoted
/// but may not break out of a single Dockerfile line.
pub fn check_env(key: &str, value: &str) -> Result<(), String> {
    let valid_key = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_key {
        return Err(format!(
            "env key `{}` must be letters, digits and `_`, not starting with a digit",
            key.escape_debug()
        ));
    }
    if let Some(bad) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "env value of `{key}` contains {}, which is not allowed",
            describe_char(bad)
        ));
    }
    Ok(())
}

/// The work dir is where the workspace is mounted and appears in shell
/// commands: an absolute, normal path of plain characters.
pub fn check_work_dir(dir: &str) -> Result<(), String> {
    if !dir.starts_with('/') || dir == "/" {
        return Err(format!(
            "work_dir `{}` must be an absolute path below /",
            dir.escape_debug()
        ));
    }
    if let Some(bad) = dir
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-')))
    {
        return Err(format!(
            "work_dir `{}` contains {}, which is not allowed",
            dir.escape_debug(),
            describe_char(bad)
        ));
    }
    if dir
        .split('/')
        .skip(1)
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "work_dir `{dir}` must be a normal path without empty, `.` or `..` parts"
        ));
    }
    Ok(())
}

fn check_file_name(file: &str) -> Result<(), String> {
    let valid = !file.is_empty()
        && !file.starts_with('.')
        && !file.starts_with('-')
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        return Err(format!(
            "file `{}` must be a plain file name of letters, digits, `.`, `_` and `-`",
            file.escape_debug()
        ));
    }
    Ok(())
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        '\n' => "a newline".to_string(),
        '\t' => "a tab".to_string(),
        c if c.is_control() => format!("the control character {}", c.escape_unicode()),
        c => format!("`{c}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Runtime>, TomlFileError> {
        parse_runtimes(text, "test.toml", Origin::Builtin)
    }

    #[test]
    fn builtins_parse_and_hold_the_five() {
        let set = RuntimeSet::builtin().expect("built-in runtimes.toml is valid");
        let names = set.names();
        for expected in [
            "python-minimal",
            "python-datascience",
            "python-web",
            "node-minimal",
            "node-react",
        ] {
            assert!(names.contains(&expected), "missing built-in {expected}");
        }
        for runtime in set.iter() {
            assert_eq!(
                runtime.source,
                ImageSource::Build {
                    base_image: "debian:trixie-slim".to_string()
                },
                "{} must build on debian:trixie-slim",
                runtime.name
            );
        }
    }

    #[test]
    fn defaults_follow_language() {
        let runtimes = parse(
            "[[runtime]]\nname = \"n\"\nlanguage = \"node\"\nbase_image = \"debian:trixie-slim\"\n",
        )
        .unwrap();
        assert_eq!(runtimes[0].run, "node {file}");
        assert_eq!(runtimes[0].file, "main.js");
        assert_eq!(runtimes[0].work_dir, "/workspace");
    }

    #[test]
    fn user_runtimes_override_by_name_and_add_new_ones() {
        let mut set = RuntimeSet::builtin().unwrap();
        let before = set.len();
        let user = parse(
            "[[runtime]]\nname = \"python-minimal\"\ndescription = \"mine\"\nlanguage = \"python\"\nbase_image = \"debian:trixie-slim\"\n\n[[runtime]]\nname = \"ml-env\"\nlanguage = \"python\"\nbase_image = \"python:3.12-slim\"\npackages = [\"torch\", \"transformers\", \"pandas\"]\n",
        )
        .unwrap();
        set.overlay(user);
        assert_eq!(set.len(), before + 1);
        assert_eq!(set.get("python-minimal").unwrap().description, "mine");
        assert_eq!(set.names()[0], "python-minimal", "override keeps its place");
        assert_eq!(set.get("ml-env").unwrap().packages.len(), 3);
    }

    #[test]
    fn runtime_sandbox_policy_parses_and_is_checked() {
        let base = "[[runtime]]\nname = \"r\"\nlanguage = \"python\"\nbase_image = \"debian:trixie-slim\"\n";
        let runtimes = parse(&format!(
            "{base}[runtime.sandbox]\nmemory = \"2g\"\ncpus = 2\nnetwork = \"bridge\"\n"
        ))
        .unwrap();
        assert_eq!(runtimes[0].sandbox.memory.map(|m| m.0), Some(2 << 30));
        assert_eq!(runtimes[0].sandbox.cpus, Some(2.0));
        assert_eq!(runtimes[0].sandbox.network.as_deref(), Some("bridge"));
        let err = parse(&format!("{base}[runtime.sandbox]\nnetwork = \"host\"\n")).unwrap_err();
        assert_eq!((err.line, err.column), (5, 1), "{err}");
        assert!(err.message.contains("network `host`"), "{err}");
        let err = parse(&format!("{base}[runtime.sandbox]\nmemroy = \"2g\"\n")).unwrap_err();
        assert!(err.message.contains("memroy"), "{err}");
    }

    #[test]
    fn package_checks() {
        for ok in [
            "numpy",
            "numpy==2.1",
            "vite@7",
            "@types/react@19",
            "uvicorn[standard]",
            "a<2,>=1",
        ] {
            assert!(check_package(ok).is_ok(), "{ok} should pass");
        }
        for bad in [
            "", "-e", "a b", "a;rm", "$(id)", "`id`", "a|b", "a&b", "a'b", "a\"b", "a\nb", "a\\b",
        ] {
            assert!(check_package(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn work_dir_checks() {
        assert!(check_work_dir("/workspace").is_ok());
        assert!(check_work_dir("/home/user/work").is_ok());
        for bad in [
            "",
            "/",
            "workspace",
            "/a/../b",
            "/a//b",
            "/a b",
            "/a;b",
            "/$HOME",
            "/a/",
        ] {
            assert!(check_work_dir(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn env_checks() {
        assert!(check_env("MPLBACKEND", "Agg").is_ok());
        assert!(check_env("_X1", "a b $c").is_ok());
        for bad in ["", "1X", "A-B", "A B", "A;B", "A$"] {
            assert!(check_env(bad, "v").is_err(), "{bad:?} should fail");
        }
        assert!(check_env("A", "line\nbreak").is_err());
    }

    #[test]
    fn indent_key_parses_is_located_when_bad_and_leaves_the_image_alone() {
        let base = "[[runtime]]\nname = \"r\"\nlanguage = \"python\"\nbase_image = \"debian:trixie-slim\"\n";
        let plain = parse(base).unwrap().remove(0);
        assert_eq!(plain.indent, None);
        assert_eq!(plain.language.default_indent(), Indent::Spaces(4));
        assert_eq!(Language::Node.default_indent(), Indent::Spaces(2));
        let two = parse(&format!("{base}indent = 2\n")).unwrap().remove(0);
        assert_eq!(two.indent, Some(Indent::Spaces(2)));
        let tab = parse(&format!("{base}indent = \"tab\"\n"))
            .unwrap()
            .remove(0);
        assert_eq!(tab.indent, Some(Indent::Tab));
        for bad in ["0", "9", "-1", "\"tabs\"", "2.5"] {
            let err = parse(&format!("{base}indent = {bad}\n")).unwrap_err();
            assert_eq!(err.line, 5, "{bad}: {err}");
            assert!(err.message.contains("from 1 to 8"), "{bad}: {err}");
        }
        // The editor's indent shapes no image: the tag stays.
        use super::super::images::content_hash;
        assert_eq!(content_hash(&plain), content_hash(&two));
        assert_eq!(content_hash(&plain), content_hash(&tab));
    }

    #[test]
    fn name_checks() {
        assert!(check_runtime_name("python-web").is_ok());
        for bad in ["", "Python", "a b", "-a", "a-", "a/b", &"x".repeat(65)] {
            assert!(check_runtime_name(bad).is_err(), "{bad:?} should fail");
        }
    }
}
