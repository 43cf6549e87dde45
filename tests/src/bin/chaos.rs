//! `just chaos [N] [SEED]`: rolecall on N accounts (default 1,000) × 2
//! regions through 10% throttling, 2% 5xx, 1% dropped connections and
//! latency (release build). Prints what was injected and what converged;
//! exits 1 when anything did not. Replays exactly with the same seed.

fn main() {
    let mut args = std::env::args().skip(1);
    let accounts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let report = match tests::chaos::run(accounts, 64, seed) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("chaos: {e}");
            std::process::exit(1);
        }
    };
    report.print();
    let mut ok = report.duplicates == 0
        && report.bad_stacks.is_empty()
        && report.registry_errors.is_empty()
        && report.registry_entries == accounts * tests::chaos::REGIONS.len()
        && report.registry_without_arn == 0;
    for s in &report.steps {
        if s.code != 0 {
            ok = false;
            eprintln!("chaos: {} exited {}:\n{}", s.name, s.code, s.stderr);
        }
    }
    for b in report.bad_stacks.iter().take(10) {
        eprintln!("chaos: stack {b}");
    }
    if !ok {
        eprintln!("chaos: FAILED (replay: just chaos {accounts} {seed})");
        std::process::exit(1);
    }
    println!("chaos: converged");
}
