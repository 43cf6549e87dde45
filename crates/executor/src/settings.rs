//! What every pipeline shares about the run: how each account is reached,
//! how many at once, the run's name and partition, and the interrupt.

/// How the executor reaches each account.
#[derive(Clone, Debug)]
pub struct Settings {
    pub bootstrap_role: String,
    pub bootstrap_external_id: Option<String>,
    /// Accounts making calls at once (an account waiting for
    /// CloudFormation gives its slot back).
    pub concurrency: usize,
    /// Accounts begun and not finished at most, waiting ones included
    /// (`fanout::ACCOUNTS_IN_FLIGHT` by default): what bounds memory, and
    /// how many accounts a bad template reaches before failures come back.
    pub max_in_flight: usize,
    /// RoleSessionName: names rolecall and the run in CloudTrail.
    pub session_name: String,
    /// The caller's partition: every ARN rolecall builds is in it.
    pub partition: planner::partition::Partition,
    /// Set on Ctrl-C / SIGTERM: no new account, no new write, waits end.
    pub interrupt: crate::interrupt::Interrupt,
    /// This machine's name, in the owner of every change set rolecall
    /// makes (the CLI reads it once).
    pub host: String,
    /// Whether a process of this host still runs: a change set whose
    /// owner is gone is abandoned and deleted (the CLI asks the OS).
    pub process_alive: fn(u32) -> bool,
}

impl Settings {
    pub fn bootstrap_role_arn(&self, account: &model::AccountId) -> String {
        self.partition.role_arn(account.as_str(), &self.bootstrap_role)
    }
}
