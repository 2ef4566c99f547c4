//! The Files pane's state: a tree of a session's workspace, built from the
//! folder listings the engine worker sends.

use std::collections::{BTreeSet, HashMap};

use crate::engine::files::{DirEntry, EntryKind};

/// Files larger than this are listed but not opened into the editor.
pub const MAX_EDITABLE_SIZE: u64 = 1 << 20;

/// One visible row of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeRow {
    pub depth: usize,
    /// Relative to the workspace, e.g. `src/app.py`, with each name escaped
    /// ([`crate::engine::names::escape`]); the engine worker unescapes it.
    pub path: String,
    pub entry: DirEntry,
    pub expanded: bool,
}

#[derive(Debug, Clone, Default)]
pub struct FileTree {
    /// Folder listings by relative path (escaped, as in [`TreeRow::path`]);
    /// "" is the workspace itself.
    listings: HashMap<String, Vec<DirEntry>>,
    expanded: BTreeSet<String>,
    pub selected: usize,
    pub error: Option<String>,
}

/// `dir/name`, or `name` in the workspace itself (`dir` empty). Both are
/// escaped text, so a `/` in them only ever separates names.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl FileTree {
    pub fn set_listing(&mut self, path: String, entries: Vec<DirEntry>) {
        self.error = None;
        self.listings.insert(path, entries);
        self.clamp();
    }

    /// A folder that is gone (deleted, renamed) is folded away.
    pub fn forget(&mut self, path: &str) {
        self.listings.remove(path);
        self.expanded.remove(path);
        self.clamp();
    }

    pub fn has_root(&self) -> bool {
        self.listings.contains_key("")
    }

    /// The folders whose listings should be kept fresh: the root and every
    /// expanded folder.
    pub fn watched(&self) -> Vec<String> {
        std::iter::once(String::new())
            .chain(self.expanded.iter().cloned())
            .collect()
    }

    pub fn rows(&self) -> Vec<TreeRow> {
        let mut rows = Vec::new();
        self.collect("", 0, &mut rows);
        rows
    }

    fn collect(&self, dir: &str, depth: usize, rows: &mut Vec<TreeRow>) {
        let Some(entries) = self.listings.get(dir) else {
            return;
        };
        for entry in entries {
            let path = join(dir, &entry.display_name());
            let expanded = entry.kind == EntryKind::Dir && self.expanded.contains(&path);
            rows.push(TreeRow {
                depth,
                path: path.clone(),
                entry: entry.clone(),
                expanded,
            });
            if expanded {
                self.collect(&path, depth + 1, rows);
            }
        }
    }

    pub fn selected_row(&self) -> Option<TreeRow> {
        self.rows().into_iter().nth(self.selected)
    }

    /// The folder new entries go in: the selected folder, or the selected
    /// file's folder.
    pub fn target_dir(&self) -> String {
        match self.selected_row() {
            Some(row) if row.entry.kind == EntryKind::Dir => row.path,
            Some(row) => row
                .path
                .rsplit_once('/')
                .map_or(String::new(), |(dir, _)| dir.to_string()),
            None => String::new(),
        }
    }

    /// Expands a folder; returns true when its listing is still needed.
    pub fn expand(&mut self, path: &str) -> bool {
        self.expanded.insert(path.to_string());
        !self.listings.contains_key(path)
    }

    pub fn collapse(&mut self, path: &str) {
        self.expanded.remove(path);
        self.clamp();
    }

    pub fn is_expanded(&self, path: &str) -> bool {
        self.expanded.contains(path)
    }

    pub fn move_selection(&mut self, delta: isize) {
        let len = self.rows().len();
        if len == 0 {
            self.selected = 0;
            return;
        }
        self.selected = (self.selected as isize + delta).clamp(0, len as isize - 1) as usize;
    }

    fn clamp(&mut self) {
        let len = self.rows().len();
        self.selected = self.selected.min(len.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: EntryKind, size: u64) -> DirEntry {
        DirEntry {
            name: name.as_bytes().to_vec(),
            kind,
            size,
            mtime: 0.0,
        }
    }

    fn tree() -> FileTree {
        let mut tree = FileTree::default();
        tree.set_listing(
            String::new(),
            vec![
                entry("src", EntryKind::Dir, 0),
                entry("main.py", EntryKind::File, 12),
            ],
        );
        tree.set_listing("src".to_string(), vec![entry("app.py", EntryKind::File, 3)]);
        tree
    }

    #[test]
    fn rows_follow_expansion() {
        let mut tree = tree();
        let paths: Vec<String> = tree.rows().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["src", "main.py"]);
        assert!(!tree.expand("src"), "listing already known");
        let rows = tree.rows();
        let paths: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["src", "src/app.py", "main.py"]);
        assert_eq!(rows[1].depth, 1);
        assert_eq!(tree.watched(), ["", "src"]);
        tree.collapse("src");
        assert_eq!(tree.rows().len(), 2);
    }

    #[test]
    fn target_dir_is_the_selected_folder_or_the_files_folder() {
        let mut tree = tree();
        assert_eq!(tree.target_dir(), "src");
        tree.expand("src");
        tree.move_selection(1);
        assert_eq!(tree.selected_row().unwrap().path, "src/app.py");
        assert_eq!(tree.target_dir(), "src");
        tree.move_selection(5);
        assert_eq!(tree.selected_row().unwrap().path, "main.py");
        assert_eq!(tree.target_dir(), "");
    }

    #[test]
    fn odd_names_are_keyed_by_their_escaped_form() {
        let mut tree = FileTree::default();
        let odd = DirEntry {
            name: b"a\nb\xc3".to_vec(),
            kind: EntryKind::Dir,
            size: 0,
            mtime: 0.0,
        };
        tree.set_listing(String::new(), vec![odd]);
        assert!(tree.expand("a\\nb\\xc3"));
        tree.set_listing(
            "a\\nb\\xc3".to_string(),
            vec![entry("x\ty", EntryKind::File, 1)],
        );
        let paths: Vec<String> = tree.rows().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["a\\nb\\xc3", "a\\nb\\xc3/x\\ty"]);
    }

    #[test]
    fn selection_stays_in_range_when_entries_go() {
        let mut tree = tree();
        tree.move_selection(1);
        tree.set_listing(String::new(), vec![entry("only.py", EntryKind::File, 1)]);
        assert_eq!(tree.selected, 0);
        tree.forget("");
        assert!(tree.rows().is_empty());
    }
}
