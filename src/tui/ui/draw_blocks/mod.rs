//! The bars around the panes: the title line and the status line.

pub mod status_bar;
pub mod title;
