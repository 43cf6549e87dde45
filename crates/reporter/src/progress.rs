//! Progress on stderr. On a terminal: one indicatif bar with counts by
//! state and the slowest accounts in flight. Otherwise plain lines: one per
//! finished account/region for apply, failures only for plan.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use model::{AccountId, Event, EventSink, Stage, Status};

#[derive(Debug, Default)]
struct State {
    /// Account → (started, what its regions are doing).
    in_flight: HashMap<AccountId, (Instant, Stage)>,
    done: usize,
    /// Accounts with any failure: AssumeRole (plan and apply) or a stack
    /// (apply); a set, because one account reports both ways.
    failed: HashSet<AccountId>,
    /// Accounts the failure tolerance skipped; they never start or finish.
    skipped: HashSet<AccountId>,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    /// Where plain lines go (stderr; a buffer in tests).
    out: Mutex<Box<dyn Write + Send>>,
    state: Mutex<State>,
    /// Plain mode: a line for every finished account/region, not only
    /// failures.
    every_result: bool,
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines otherwise.
    /// `every_result`: in plain mode, log successes too (apply).
    pub fn stderr(verb: &'static str, every_result: bool) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} accounts ({elapsed})  {msg}")
                    .expect("the template is valid")
                    .progress_chars("=> "),
            );
            bar.set_prefix(verb);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            out: Mutex::new(Box::new(std::io::stderr())),
            state: Mutex::new(State::default()),
            every_result,
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// A line above the bar (or alone). Progress is best effort: a
    /// stderr that cannot be written to never stops a run.
    fn line(&self, text: &str) {
        let write = || {
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(out, "{text}");
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    fn message(state: &State) -> String {
        let mut by_stage: Vec<(&str, usize)> = Vec::new();
        for stage in [
            Stage::Observing,
            Stage::Creating,
            Stage::Updating,
            Stage::Deleting,
            Stage::Waiting,
        ] {
            let n = state.in_flight.values().filter(|(_, s)| *s == stage).count();
            if n > 0 {
                by_stage.push((stage.as_str(), n));
            }
        }
        let mut parts: Vec<String> = by_stage.iter().map(|(s, n)| format!("{n} {s}")).collect();
        parts.push(format!("{} done", state.done));
        parts.push(format!("{} failed", state.failed.len()));
        let mut slowest: Vec<(&AccountId, &(Instant, Stage))> = state.in_flight.iter().collect();
        slowest.sort_by_key(|(_, (started, _))| *started);
        let slow: Vec<String> = slowest
            .iter()
            .take(3)
            .filter(|(_, (started, _))| started.elapsed() >= Duration::from_secs(5))
            .map(|(id, (started, stage))| format!("{id} {} {}s", stage.as_str(), started.elapsed().as_secs()))
            .collect();
        if !slow.is_empty() {
            parts.push(format!("slowest: {}", slow.join(", ")));
        }
        parts.join(", ")
    }
}

impl EventSink for Progress {
    fn event(&self, event: Event) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Started { accounts } => {
                if let Some(bar) = &self.bar {
                    bar.set_length(accounts as u64);
                }
            }
            Event::AccountStarted { account_id } => {
                state.in_flight.insert(account_id, (Instant::now(), Stage::Observing));
            }
            Event::Stage { account_id, stage, .. } => {
                if let Some(entry) = state.in_flight.get_mut(&account_id) {
                    entry.1 = stage;
                }
            }
            Event::Planned { .. } => {}
            Event::Finished { outcome } => {
                let region = &outcome.region;
                match (&outcome.error, outcome.status) {
                    (Some(error), status) if !status.succeeded() => {
                        self.line(&format!(
                            "rolecall: {} ({}) {region}: {status}: {error}",
                            outcome.account_id, outcome.account_name
                        ));
                    }
                    // On a terminal the bar says it; lines are for logs.
                    _ if self.every_result && self.bar.is_none() => {
                        let arn = outcome.role_arn.as_deref().unwrap_or("-");
                        self.line(&format!(
                            "rolecall: {} ({}) {region}: {} {arn}",
                            outcome.account_id, outcome.account_name, outcome.status
                        ));
                    }
                    _ => {}
                }
                if outcome.status == Status::Failed {
                    state.failed.insert(outcome.account_id.clone());
                }
                // One step of the bar per skipped account, not per region.
                if outcome.status == Status::NotAttempted
                    && state.skipped.insert(outcome.account_id.clone())
                    && let Some(bar) = &self.bar
                {
                    bar.inc(1);
                }
            }
            Event::AccountFailed { error } => {
                state.failed.insert(error.account_id.clone());
                // Apply reports failures per region through `Finished`.
                if !self.every_result {
                    let region = error.region.as_deref().map(|r| format!(" {r}")).unwrap_or_default();
                    self.line(&format!(
                        "rolecall: {} ({}){region}: {}",
                        error.account_id, error.account_name, error.message
                    ));
                }
            }
            Event::AccountFinished { account_id } => {
                state.in_flight.remove(&account_id);
                state.done += 1;
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_message(Self::message(&state));
        }
    }
}
