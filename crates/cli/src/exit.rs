//! Exit codes, documented in README.md.

pub(crate) const OK: u8 = 0;
/// Bad input, an account failed, or a stack is blocked.
pub(crate) const FAILURE: u8 = 1;
/// `--detailed-exitcode`: the plan has changes.
pub(crate) const CHANGES: u8 = 2;
/// The command line itself is wrong (clap would say 2, which means "changes").
pub(crate) const USAGE: u8 = 64;
/// Ctrl-C or SIGTERM: what was known was written, then the run stopped.
pub(crate) const INTERRUPTED: u8 = 130;

/// A read-only check's exit (drift, verify): 1 when it could not be
/// complete, 2 with `--detailed-exitcode` on any finding, else 0.
pub(crate) fn of_check(incomplete: bool, found: bool, detailed_exitcode: bool) -> u8 {
    if incomplete {
        FAILURE
    } else if detailed_exitcode && found {
        CHANGES
    } else {
        OK
    }
}
