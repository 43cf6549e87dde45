//! End-to-end tests: each starts its own moto server, seeds an organization,
//! runs the real `rolecall` binary and checks what it prints and returns.

mod apply;
mod catalog;
mod chaos;
mod corpus;
mod crash;
mod destroy;
mod drift;
mod install;
mod inventories;
mod inventory_errors;
mod names;
mod own_template;
mod plan;
mod query;
mod registry_store;
mod rollout;
mod scale;
mod secrets;
mod stacksets;
mod template;
mod tidy;

use tests::{Moto, SeededOrg, seed_org, test_org};

/// A moto server with the test organization (21 member accounts, OUs four
/// levels deep) already created.
pub fn org_fixture() -> (Moto, SeededOrg) {
    let moto = Moto::start();
    let org = tests::runtime().block_on(async { seed_org(&moto.sdk_config().await, &[], &test_org()).await });
    assert_eq!(org.accounts.len(), 21);
    (moto, org)
}

/// The account ids in the first column of a table, header and summary
/// lines left out.
pub fn first_column(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.len() == 12 && w.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
        .collect()
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

pub fn ids(accounts: &[&tests::SeededAccount]) -> Vec<String> {
    sorted(accounts.iter().map(|a| a.id.clone()).collect())
}

/// `json`, after checking it against `schemas/<schema>` (a failure lists
/// every violation with its place).
#[track_caller]
pub fn valid(json: serde_json::Value, schema: &str) -> serde_json::Value {
    let errors = tests::schema_errors(&json, schema);
    assert!(
        errors.is_empty(),
        "does not match schemas/{schema}: {errors:#?}\n{json:#}"
    );
    json
}

/// The ARN registry at `path`, checked against its schema.
#[track_caller]
pub fn registry(path: &std::path::Path) -> serde_json::Value {
    let json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    valid(json, "registry.v4.schema.json")
}
