//! What apply, destroy and drift share on the command line: the
//! confirmation prompt, `--accounts` narrowing, and the bounded waits.

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use anyhow::bail;

/// A run that changes accounts without `--yes` needs a person at a
/// terminal; false (with `message` and its help printed) when there is none.
pub(crate) fn can_confirm(yes: bool, message: &str) -> bool {
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !yes && !interactive {
        eprintln!("{message}");
        return false;
    }
    true
}

/// Asks on the terminal; only `yes` goes on. The answer is read on a
/// blocking thread, so that Ctrl-C at the prompt (the runtime's signal
/// task) cancels it at once.
pub(crate) async fn confirm(question: &str, verb: &str) -> anyhow::Result<bool> {
    eprint!("\n{question} Only 'yes' is accepted: ");
    let read = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).map(|_| answer)
    });
    let answer = tokio::select! {
        answer = read => answer??,
        () = crate::setup::interrupt().wait() => String::new(),
    };
    let yes = answer.trim() == "yes";
    if !yes {
        eprintln!("{verb} cancelled; nothing was changed");
    }
    Ok(yes)
}

/// Narrows `targets` to `--accounts` (when given); an id that is not a
/// target is an error before anything happens.
/// `among` says what `targets` are, for the message.
pub(crate) fn only_accounts(targets: &mut Vec<model::Target>, accounts: &[String], among: &str) -> anyhow::Result<()> {
    if accounts.is_empty() {
        return Ok(());
    }
    let unknown: Vec<&String> = accounts
        .iter()
        .filter(|a| !targets.iter().any(|t| t.account_id.as_str() == a.as_str()))
        .collect();
    if !unknown.is_empty() {
        bail!("--accounts names {unknown:?}, which are not {among}");
    }
    targets.retain(|t| accounts.iter().any(|a| a == t.account_id.as_str()));
    Ok(())
}

/// Narrows the catalog to `--roles` (when given), and each target to those
/// roles (a target left with none drops out); a key the catalog lacks is an
/// error before anything happens.
pub(crate) fn only_roles(
    catalog: &mut Vec<model::Desired>,
    targets: &mut Vec<model::Target>,
    roles: &[String],
) -> anyhow::Result<()> {
    if roles.is_empty() {
        return Ok(());
    }
    let unknown: Vec<&String> = roles
        .iter()
        .filter(|r| !catalog.iter().any(|d| &d.role == *r))
        .collect();
    if !unknown.is_empty() {
        let keys: Vec<&str> = catalog.iter().map(|d| d.role.as_str()).collect();
        bail!(
            "--roles names {unknown:?}, which are not roles of this inventory ({})",
            keys.join(", ")
        );
    }
    catalog.retain(|d| roles.contains(&d.role));
    for t in targets.iter_mut() {
        t.roles.retain(|r| roles.contains(&r.role));
    }
    targets.retain(|t| !t.roles.is_empty());
    Ok(())
}

/// `--poll-interval` and `--max-wait`, bounded: no overflow on huge values,
/// and no poll loop that AWS would throttle (below 1 s only against an
/// emulator, `--endpoint-url`).
pub(crate) fn waits(poll_interval: f64, max_wait: f64, emulator: bool) -> anyhow::Result<(Duration, Duration)> {
    const DAY: f64 = 86_400.0;
    let least = if emulator { 0.01 } else { 1.0 };
    if !(least..=300.0).contains(&poll_interval) {
        bail!(
            "--poll-interval {poll_interval} is out of range: give {least}–300 seconds{}",
            if emulator {
                ""
            } else {
                " (AWS throttles faster polling; below 1 s is allowed only with --endpoint-url)"
            }
        );
    }
    if !(1.0..=DAY).contains(&max_wait) || max_wait < poll_interval {
        bail!("--max-wait {max_wait} is out of range: give 1–86400 seconds (a day), and at least --poll-interval");
    }
    Ok((
        Duration::from_secs_f64(poll_interval),
        Duration::from_secs_f64(max_wait),
    ))
}

#[cfg(test)]
mod tests {
    use super::waits;

    #[test]
    fn waits_are_bounded() {
        assert!(waits(5.0, 1800.0, false).is_ok());
        assert!(waits(0.05, 10.0, true).is_ok());
        for (poll, max, emulator) in [
            (0.05, 10.0, false),
            (0.0, 10.0, true),
            (-1.0, 10.0, true),
            (f64::NAN, 10.0, true),
            (5.0, 1e300, false),
            (5.0, f64::INFINITY, false),
            (1e20, 1e20, false),
            (10.0, 5.0, false),
        ] {
            let err = waits(poll, max, emulator).unwrap_err().to_string();
            assert!(err.contains("out of range"), "{poll} {max}: {err}");
        }
    }
}
