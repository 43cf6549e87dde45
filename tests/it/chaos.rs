//! The CI-sized chaos run: 200 accounts × 2 regions through throttling,
//! 5xx, dropped connections and latency (`just chaos` runs 1,000).

use tests::chaos;

#[test]
fn apply_plan_and_drift_converge_under_faults() {
    let report = chaos::run(200, 32, 7).expect("moto starts");
    report.print();
    for s in &report.steps {
        assert_eq!(s.code, 0, "{} under faults:\n{}", s.name, s.stderr);
        let injected: usize = s.injected.values().sum();
        assert!(
            injected * 20 >= s.calls,
            "{}: faults were injected ({injected} of {} calls)",
            s.name,
            s.calls
        );
    }
    assert_eq!(report.duplicates, 0);
    assert!(report.bad_stacks.is_empty(), "{:#?}", report.bad_stacks);
    assert_eq!(report.registry_entries, 400);
    assert_eq!(report.registry_without_arn, 0);
    assert!(report.registry_errors.is_empty(), "{:#?}", report.registry_errors);
}
