//! The target-node faultline ships, as a system under test.

pub mod client;
pub mod db;
pub mod status;
