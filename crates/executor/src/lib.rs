//! The only crate that talks to AWS. It discovers accounts, observes each
//! account/region through its bootstrap role, runs the work concurrently with
//! bounds, and reports progress as events to a sink.
//!
//! Orchestration is written against the `Cloud` trait; `aws::SdkCloud` is the
//! real implementation, and tests use fakes. No UI here: no progress bars,
//! no printing.

// Libraries never print: output goes through a writer the CLI hands in
// (or, in the executor, as events).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod apply;
pub mod aws;
mod changesets;
pub mod cloud;
pub mod destroy;
pub mod discover;
pub mod drift;
mod events;
pub mod fanout;
pub mod interrupt;
pub mod limit;
pub mod objects;
pub mod observe;
pub mod publish;
mod records;
pub mod revert;
pub mod settings;
#[cfg(feature = "sim")]
pub mod sim;
mod stacks;
pub mod stacksets;
pub mod verify;

pub use apply::{ApplyOptions, apply};
pub use cloud::{
    CfnDrift, ChangeSetInfo, ChangeSets, Cloud, CloudError, ErrorKind, InstanceStacks, InstanceTargets, InstancesOp,
    OperationInfo, OperationPrefs, OperationResult, OrgAccount, Organization, Roles, StackDrift, StackRequest,
    StackSetRequest, StackSets, Stacks,
};
pub use destroy::destroy;
pub use discover::{DiscoveryError, account_names, discover};
pub use observe::{ObservedMap, observe, plan};
pub use revert::revert_drift;
pub use settings::Settings;

#[cfg(test)]
mod tests;
