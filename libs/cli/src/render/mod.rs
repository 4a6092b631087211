//! Pure formatting for the terminal: no I/O, unit-tested.

pub mod json;
pub mod labels;
pub mod timeline;
