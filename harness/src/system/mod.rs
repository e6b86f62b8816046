//! The systems under test.

pub mod custom;
pub mod db;
mod process;
pub mod target_node;
