//! The `file` source: tails files matched by globs, follows appends, survives rotation by
//! rename and by truncation, and checkpoints what the sinks acknowledged so a restart
//! resumes where delivery stopped.
//!
//! `config.rs` is the YAML; `checkpoint.rs` tracks acknowledged offsets per file identity
//! and persists them; `tail.rs` is the read loop.

mod checkpoint;
mod config;
mod tail;

pub use checkpoint::{Checkpoints, FileId};
pub use config::{FileSourceConfig, ReadFrom};
