//! Pure planning for rolecall: inventory parsing and validation, the role
//! template and its fingerprint, target resolution, and the per-stack
//! decision.
//!
//! Nothing here does IO, reads the clock or the environment, or knows about
//! async or the AWS SDK: every input is a value, every output is a value.

// Libraries never print: output goes through a writer the CLI hands in
// (or, in the executor, as events).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod decide;
pub mod diagnostic;
pub mod drift;
pub mod inventory;
pub mod names;
pub mod partition;
pub mod profiles;
pub mod registry;
pub mod ssm;
pub mod stacksets;
pub mod status;
pub mod targets;
pub mod template;
pub mod verify;
mod yaml;

pub use decide::decide;
pub use diagnostic::{Diagnostic, Severity};
pub use template::{catalog, desired};

#[cfg(test)]
mod tests;
