//! Renders what the executor did and the planner decided: progress bars,
//! tables, JSON. Writes to `impl Write` (or stderr for progress); decides
//! nothing and never calls AWS.

pub mod plan;
pub mod progress;
pub mod table;

pub use plan::{summary, write_plan, write_plan_json, write_targets, write_targets_json};
pub use progress::Progress;

#[cfg(test)]
mod tests;
