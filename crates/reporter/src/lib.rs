//! Renders what the executor did and the planner decided: progress bars,
//! tables, JSON, the ARN registry and the AWS CLI profiles file. Writes to
//! `impl Write` or returns text (progress goes to stderr); decides nothing
//! and never calls AWS.

// Libraries never print: output goes through a writer the CLI hands in
// (or, in the executor, as events).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod drift;
pub mod html;
pub mod plan;
pub mod profiles;
pub mod progress;
pub mod registry;
pub mod summary;
pub mod table;
pub mod verify;

pub use plan::{summary, write_parameters_json, write_plan, write_plan_json, write_targets, write_targets_json};
pub use progress::Progress;
pub use summary::{write_destroy_summary, write_summary, write_summary_json};

#[cfg(test)]
mod profiles_props;
#[cfg(test)]
mod tests;
