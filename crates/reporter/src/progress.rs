//! Progress on stderr: an indicatif bar when stderr is a terminal, otherwise
//! one line per account that failed (CI logs stay readable).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use model::{Action, Event, EventSink};

#[derive(Debug, Default)]
struct Counts {
    in_flight: usize,
    done: usize,
    failed: usize,
    changes: usize,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    counts: Mutex<Counts>,
    /// What the run is doing, e.g. "observing".
    verb: &'static str,
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn stderr(verb: &'static str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} accounts  {msg}  ({elapsed})")
                    .expect("the template is valid")
                    .progress_chars("=> "),
            );
            bar.set_prefix(verb);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            counts: Mutex::new(Counts::default()),
            verb,
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }
}

impl EventSink for Progress {
    fn event(&self, event: Event) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match &event {
            Event::Started { accounts } => {
                if let Some(bar) = &self.bar {
                    bar.set_length(*accounts as u64);
                }
            }
            Event::AccountStarted { .. } => c.in_flight += 1,
            Event::Planned { entry } => {
                if entry.action.changes() || entry.action == Action::Wait {
                    c.changes += 1;
                }
            }
            Event::AccountFailed { error } => {
                c.failed += 1;
                let region = error.region.as_deref().map(|r| format!(" {r}")).unwrap_or_default();
                self.line(&format!(
                    "rolecall: {} ({}){region}: {}",
                    error.account_id, error.account_name, error.message
                ));
            }
            Event::AccountFinished { .. } => {
                c.in_flight = c.in_flight.saturating_sub(1);
                c.done += 1;
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{} {}, {} done, {} failed, {} to change",
                c.in_flight, self.verb, c.done, c.failed, c.changes
            ));
        }
    }
}
