//! The tools `sandpit mcp` offers: their parameters, descriptions and
//! annotations. The seven console tools keep the names, parameter names and
//! defaults of pydantic-ai-backend's `create_console_toolset()`.

use std::sync::Arc;

use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{Tool, ToolAnnotations};
use rmcp::schemars::JsonSchema;
use serde::Deserialize;

use super::text::OutputMode;

/// Default line count of `read_file`.
pub const DEFAULT_READ_LIMIT: i64 = 2000;
/// Default `execute` timeout, in seconds.
pub const DEFAULT_EXECUTE_TIMEOUT: i64 = 120;

fn dot() -> String {
    ".".to_string()
}
fn read_limit() -> i64 {
    DEFAULT_READ_LIMIT
}
fn yes() -> bool {
    true
}
fn execute_timeout() -> Option<i64> {
    Some(DEFAULT_EXECUTE_TIMEOUT)
}
fn files_with_matches() -> OutputMode {
    OutputMode::FilesWithMatches
}
fn stdout() -> String {
    "stdout".to_string()
}

/// `ls`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct LsParams {
    /// Directory to list. Defaults to the working directory.
    #[serde(default = "dot")]
    #[schemars(default = "dot")]
    pub path: String,
}

/// `read_file`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ReadFileParams {
    /// File to read, absolute or relative to the working directory.
    pub path: String,
    /// First line to return, counting from 0. Defaults to 0.
    #[serde(default)]
    #[schemars(default)]
    pub offset: i64,
    /// How many lines to return. Defaults to 2000.
    #[serde(default = "read_limit")]
    #[schemars(default = "read_limit")]
    pub limit: i64,
}

/// `write_file`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct WriteFileParams {
    /// File to write, absolute or relative to the working directory.
    pub path: String,
    /// The file's complete new content.
    pub content: String,
}

/// `edit_file`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct EditFileParams {
    /// File to edit, absolute or relative to the working directory.
    pub path: String,
    /// Text to replace, matched exactly, whitespace included.
    pub old_string: String,
    /// Text to put in its place. Must differ from `old_string`.
    pub new_string: String,
    /// Replace every occurrence. Defaults to false, which requires
    /// `old_string` to appear exactly once.
    #[serde(default)]
    #[schemars(default)]
    pub replace_all: bool,
}

/// `glob`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct GlobParams {
    /// Glob pattern, e.g. `"*.py"`, `"**/*.ts"`, `"**/test_*.py"`.
    pub pattern: String,
    /// Directory to search from. Defaults to the working directory.
    #[serde(default = "dot")]
    #[schemars(default = "dot")]
    pub path: String,
}

/// `grep`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct GrepParams {
    /// Regular expression (grep's basic syntax) to search for.
    pub pattern: String,
    /// File or directory to search. Defaults to the working directory.
    #[serde(default)]
    pub path: Option<String>,
    /// Only search files matching this, e.g. `"*.py"`, `"*.{js,ts}"`.
    #[serde(default)]
    pub glob_pattern: Option<String>,
    /// `"files_with_matches"` for paths (the default), `"content"` for the
    /// matching lines, `"count"` for how many there are.
    #[serde(default = "files_with_matches")]
    #[schemars(default = "files_with_matches")]
    pub output_mode: OutputMode,
    /// Skip hidden files and directories.
    #[serde(default = "yes")]
    #[schemars(default = "yes")]
    pub ignore_hidden: bool,
}

/// `execute`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ExecuteParams {
    /// Shell command to run.
    pub command: String,
    /// Seconds to allow before the command is killed. Defaults to 120; the
    /// operator's maximum applies.
    #[serde(default = "execute_timeout")]
    #[schemars(default = "execute_timeout")]
    pub timeout: Option<i64>,
}

/// `process_start`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ProcessStartParams {
    /// Shell command to run in the background, in the working directory.
    pub command: String,
}

/// `process_output`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ProcessOutputParams {
    /// The process id `process_start` returned, e.g. `p1`.
    pub id: String,
    /// Byte offset in the stream to read from; pass the `next offset` of the
    /// previous answer to get only what is new. Defaults to 0.
    #[serde(default)]
    #[schemars(default)]
    pub offset: u64,
    /// `stdout` (the default) or `stderr`.
    #[serde(default = "stdout")]
    #[schemars(default = "stdout")]
    pub stream: String,
}

/// `process_stop`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ProcessIdParams {
    /// The process id `process_start` returned, e.g. `p1`.
    pub id: String,
}

/// Tools without arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct NoParams {}

/// Whether a tool only looks, or may change the workspace or run code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    ReadOnly,
    Destructive,
}

fn tool<P: JsonSchema + 'static>(
    name: &'static str,
    effect: Effect,
    description: &'static str,
) -> Tool {
    let annotations = match effect {
        Effect::ReadOnly => ToolAnnotations::new().read_only(true).destructive(false),
        Effect::Destructive => ToolAnnotations::new().read_only(false).destructive(true),
    };
    Tool::new(name, description, schema_for_type::<P>()).with_annotations(annotations)
}

/// Every tool, in the order clients show them.
pub fn definitions() -> Vec<Tool> {
    use Effect::{Destructive, ReadOnly};
    vec![
        tool::<LsParams>("ls", ReadOnly, LS),
        tool::<ReadFileParams>("read_file", ReadOnly, READ_FILE),
        tool::<WriteFileParams>("write_file", Destructive, WRITE_FILE),
        tool::<EditFileParams>("edit_file", Destructive, EDIT_FILE),
        tool::<GlobParams>("glob", ReadOnly, GLOB),
        tool::<GrepParams>("grep", ReadOnly, GREP),
        tool::<ExecuteParams>("execute", Destructive, EXECUTE),
        tool::<ProcessStartParams>("process_start", Destructive, PROCESS_START),
        tool::<ProcessOutputParams>("process_output", ReadOnly, PROCESS_OUTPUT),
        tool::<ProcessIdParams>("process_stop", Destructive, PROCESS_STOP),
        tool::<NoParams>("process_list", ReadOnly, PROCESS_LIST),
        tool::<NoParams>("sandbox_info", ReadOnly, SANDBOX_INFO),
    ]
}

/// The input schema of a tool, for tests and clients that validate.
pub fn schema_of(name: &str) -> Option<Arc<rmcp::model::JsonObject>> {
    definitions()
        .into_iter()
        .find(|tool| tool.name == name)
        .map(|tool| tool.input_schema)
}

const LS: &str = "List the files and directories at a path, with their sizes.\n\n\
Use it to see what one directory holds. To find files by name or extension anywhere below it, \
use `glob`: that searches recursively and this does not.\n\n\
Returns one line per entry, directories marked with a trailing `/` and files with their size in \
bytes. An empty directory and a missing one answer with the same sentence. Paths stay inside the \
sandbox's workspace.";

const READ_FILE: &str = "Read a file's contents, with line numbers.\n\n\
Read a file before editing it: `edit_file` matches on exact text. `offset` counts from 0 while \
the line numbers shown count from 1, so `offset=100` starts at the line labelled 101. For a long \
file, read a first slice with `limit=100` to see its shape, then read the part you need.\n\n\
Returns the requested lines, each prefixed with its 1-based line number and a tab, with a \
`... (N more lines)` trailer when the slice stops short of the end. A missing file or an offset \
past the end is a tool error: correct it and call again.";

const WRITE_FILE: &str = "Write a file, creating it or replacing everything in it.\n\n\
For a file that already exists, prefer `edit_file`: it changes the part you name, where this \
replaces the whole file. Missing parent directories are created for you.\n\n\
Returns `Wrote N lines to {path}`.";

const EDIT_FILE: &str = "Replace an exact string in a file.\n\n\
`old_string` has to match the file character for character, indentation included, which is why \
you read the file first. It also has to identify one place: if it appears more than once the \
edit is refused, so include the surrounding lines until it is unique, or pass `replace_all=true` \
when every occurrence is what you mean.\n\n\
Returns `Edited {path}: replaced N occurrence(s)`; a string not found, or found more than once, \
is a tool error: read the file again and send an `old_string` that matches one place.";

const GLOB: &str = "Find files whose path matches a glob pattern.\n\n\
`*` matches within one path segment and `**/` at any depth, so `*.py` and `**/*.py` find \
Python files anywhere below `path`. To search what is inside files, use `grep`.\n\n\
Returns a count, then up to 100 matching paths; the rest are summarised as `... and N more`. \
No match answers `No files matching ...`.";

const GREP: &str = "Search the contents of files for a regular expression (grep's basic \
syntax).\n\n\
Narrow the search with `path` for a subtree and `glob_pattern` for a file type, and choose how \
much comes back with `output_mode`.\n\n\
`files_with_matches` lists paths, `content` lists `path:line: text` with each line cut to 100 \
characters, `count` returns a number. The two lists stop at 50 entries and say `... and N \
more`. No match answers `No matches for ...`.";

const EXECUTE: &str = "Run a shell command in the working directory of the sandbox.\n\n\
Use it for work that needs a shell: running a program, a build, a test suite. For anything the \
other tools already do, use them. Raise `timeout` for a command that will take longer than two \
minutes (the operator's maximum applies); a command that never exits on its own, such as a \
server, belongs in `process_start`. Cancelling the call kills the command's whole process tree. \
When the client asks for progress, output arrives as progress notifications while it runs.\n\n\
Returns the command's stdout then stderr. A non-zero exit arrives as `Command failed (exit code \
N):` and that output, a timeout as `Error: Command timed out` with code 124, and output past \
100,000 bytes is cut with a `... (output truncated)` trailer.";

const PROCESS_START: &str = "Start a shell command in the background in the sandbox (a \
server, a watcher, a long job) and return its id at once.\n\n\
sandpit keeps the last 1 MiB of each of its output streams in the MCP server's memory (not in \
the sandbox): read it with `process_output`, stop it with `process_stop`. A process writing more \
than 16 MiB on one stream is stopped. Processes end when the MCP server stops.";

const PROCESS_OUTPUT: &str = "Read a background process's output from a byte offset, with \
whether it is still running or its exit code.\n\n\
Only the last 1 MiB of each stream is kept; an older offset starts at the oldest byte kept and \
says how many were dropped. Pass the returned next offset to read only what is new.";

const PROCESS_STOP: &str = "Stop a background process, killing its whole process tree.";

const PROCESS_LIST: &str = "List the background processes of this sandbox started through \
this MCP server: id, state, age and command.";

const SANDBOX_INFO: &str = "Describe the sandbox: runtime, image, limits (memory, CPUs, pids), \
network, and live CPU %, memory use and process count.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_tools_keep_the_reference_names_and_defaults() {
        let tools = definitions();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        for name in [
            "ls",
            "read_file",
            "write_file",
            "edit_file",
            "glob",
            "grep",
            "execute",
        ] {
            assert!(names.contains(&name), "{name} missing");
        }
        let read = schema_of("read_file").unwrap();
        let props = read["properties"].as_object().unwrap();
        assert_eq!(props["offset"]["default"], 0);
        assert_eq!(props["limit"]["default"], 2000);
        assert_eq!(read["required"], serde_json::json!(["path"]));
        let grep = schema_of("grep").unwrap();
        assert_eq!(
            grep["properties"]["output_mode"]["default"],
            "files_with_matches"
        );
        assert_eq!(grep["properties"]["ignore_hidden"]["default"], true);
        let execute = schema_of("execute").unwrap();
        assert_eq!(execute["properties"]["timeout"]["default"], 120);
    }

    #[test]
    fn annotations() {
        for tool in definitions() {
            let annotations = tool.annotations.clone().unwrap();
            let read_only = matches!(
                tool.name.as_ref(),
                "ls" | "read_file"
                    | "glob"
                    | "grep"
                    | "process_output"
                    | "process_list"
                    | "sandbox_info"
            );
            assert_eq!(annotations.read_only_hint, Some(read_only), "{}", tool.name);
            assert_eq!(
                annotations.destructive_hint,
                Some(!read_only),
                "{}",
                tool.name
            );
        }
    }
}
