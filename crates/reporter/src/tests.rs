//! Rendering checks: printers write into a `Vec<u8>` and compare text
//! (expect-test snapshots; `UPDATE_EXPECT=1` rewrites them).

use std::collections::BTreeMap;

use expect_test::{Expect, expect};
use model::{AccountError, AccountId, Action, Outcome, Plan, PlanEntry, Profile, ResourceChange, Status};

use crate::profiles;
use crate::registry;
use planner::registry::{Header as Meta, Scope, next, parse};

fn account(n: u64) -> AccountId {
    AccountId::parse(&format!("{n:012}")).unwrap()
}

fn text(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    f(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn entry(n: u64, region: &str, action: Action, reason: &str) -> PlanEntry {
    PlanEntry {
        account_id: account(n),
        account_name: format!("acct-{n}"),
        role: "default".into(),
        region: region.into(),
        action,
        reason: reason.into(),
        differences: vec![],
        stack_status: None,
        stack_id: None,
    }
}

#[test]
fn plan_table_interleaves_errors_and_counts() {
    let plan = Plan {
        entries: vec![
            entry(1, "eu-west-1", Action::Create, "no stack rolecall-target-role"),
            entry(1, "us-east-1", Action::NoOp, "CREATE_COMPLETE matches the inventory"),
            entry(3, "us-east-1", Action::Update, "template differs from the inventory"),
        ],
        errors: vec![AccountError {
            account_id: account(2),
            account_name: "acct-2".into(),
            region: None,
            message: "cannot assume …".into(),
        }],
        stack_sets: vec![],
    };
    expect![[r#"
        ACCOUNT       NAME    REGION     ACTION  REASON
        000000000001  acct-1  eu-west-1  create  no stack rolecall-target-role
        000000000001  acct-1  us-east-1  no-op   CREATE_COMPLETE matches the inventory
        000000000002  acct-2  -          error   cannot assume …
        000000000003  acct-3  us-east-1  update  template differs from the inventory

        Plan: 1 to create, 1 to update, 0 to recover, 0 to wait for, 1 unchanged, 0 blocked, 1 error (3 stacks in 3 accounts)
    "#]]
    .assert_eq(&text(|w| crate::write_plan(w, &plan, true)));
}

#[test]
fn a_stack_set_plan_says_what_happens_to_the_set() {
    let plan = Plan {
        entries: vec![
            entry(1, "us-east-1", Action::NoOp, "CURRENT"),
            entry(2, "us-east-1", Action::Create, "no stack instance"),
        ],
        errors: vec![],
        stack_sets: vec![model::StackSetDecision {
            name: "rolecall-target-role".into(),
            action: Action::NoOp,
            reason: "matches the inventory".into(),
        }],
    };
    expect![[r#"
        Stack set rolecall-target-role: no-op (matches the inventory)

        ACCOUNT       NAME    REGION     ACTION  REASON
        000000000001  acct-1  us-east-1  no-op   CURRENT
        000000000002  acct-2  us-east-1  create  no stack instance

        Plan: 1 to create, 0 to update, 0 to recover, 0 to wait for, 1 unchanged, 0 blocked, 0 errors (2 stacks in 2 accounts)
    "#]].assert_eq(&text(|w| crate::write_plan(w, &plan, true)));
}

/// Several roles: a ROLE column, rows by account, role, region; an
/// inventory of one role prints without it (as above).
#[test]
fn a_catalog_plan_names_each_rows_role() {
    let role = |mut e: PlanEntry, role: &str| {
        e.role = role.into();
        e
    };
    let mut plan = Plan {
        entries: vec![
            role(entry(1, "us-east-1", Action::NoOp, "matches"), "readonly"),
            role(
                entry(1, "us-east-1", Action::Create, "no stack rolecall-admin"),
                "admin",
            ),
            role(entry(1, "eu-west-1", Action::NoOp, "matches"), "readonly"),
        ],
        errors: vec![],
        stack_sets: vec![],
    };
    plan.sort();
    expect![[r#"
        ACCOUNT       NAME    ROLE      REGION     ACTION  REASON
        000000000001  acct-1  admin     us-east-1  create  no stack rolecall-admin
        000000000001  acct-1  readonly  eu-west-1  no-op   matches
        000000000001  acct-1  readonly  us-east-1  no-op   matches

        Plan: 1 to create, 0 to update, 0 to recover, 0 to wait for, 2 unchanged, 0 blocked, 0 errors (3 stacks in 1 account)
          admin: 1 to create
          readonly: 2 unchanged
    "#]]
    .assert_eq(&text(|w| crate::write_plan(w, &plan, true)));
}

fn outcome(n: u64, region: &str, status: Status) -> Outcome {
    let arn = format!("arn:aws:iam::{n:012}:role/RolecallTarget");
    let ok = status.succeeded();
    Outcome {
        account_id: account(n),
        account_name: format!("acct-{n}"),
        role: "default".into(),
        role_name: "RolecallTarget".into(),
        stack_name: "rolecall-target-role".into(),
        region: region.into(),
        action: Some(if status == Status::Updated {
            Action::Update
        } else {
            Action::Create
        }),
        status,
        stack_id: ok.then(|| format!("arn:aws:cloudformation:{region}:{n:012}:stack/rolecall-target-role/x")),
        outputs: if ok {
            BTreeMap::from([("RoleArn".to_owned(), arn.clone())])
        } else {
            BTreeMap::new()
        },
        role_arn: ok.then_some(arn),
        fingerprint: ok.then(|| "ab".repeat(32)),
        changes: if status == Status::Updated {
            vec![ResourceChange {
                action: "Modify".into(),
                logical_id: "Role".into(),
                resource_type: "AWS::IAM::Role".into(),
                replacement: Some("False".into()),
            }]
        } else {
            vec![]
        },
        error: (!ok).then(|| "create ended in ROLLBACK_COMPLETE: Role: denied".to_owned()),
    }
}

#[test]
fn apply_summary() {
    let outcomes = [
        outcome(1, "us-east-1", Status::Created),
        outcome(2, "us-east-1", Status::Updated),
        outcome(3, "us-east-1", Status::Failed),
    ];
    expect![[r#"
        ACCOUNT       NAME    REGION     ACTION  RESULT                 ROLE ARN / ERROR
        000000000001  acct-1  us-east-1  create  created                arn:aws:iam::000000000001:role/RolecallTarget
        000000000002  acct-2  us-east-1  update  updated (Modify Role)  arn:aws:iam::000000000002:role/RolecallTarget
        000000000003  acct-3  us-east-1  create  failed                 create ended in ROLLBACK_COMPLETE: Role: denied

        Apply: 1 created, 1 updated, 0 unchanged, 1 failed, 0 blocked, 0 not attempted (3 stacks)
    "#]]
    .assert_eq(&text(|w| crate::write_summary(w, &outcomes, true)));
}

#[test]
fn registry_is_sorted_stable_and_keeps_carried_entries() {
    let source = account(111111111111);
    let meta = Meta {
        generated_at: "2026-11-28T12:00:00Z",
        inventory: "prod",
        source_account: &source,
        written_by: "rolecall 0.4.0 (0123456789ab)",
    };
    let first = next(
        None,
        &meta,
        &[
            outcome(2, "us-east-1", Status::Created),
            outcome(1, "us-east-1", Status::Failed),
        ],
        Scope::Inventory,
    );
    assert_eq!(
        first.entries.iter().map(|e| e.account_id.as_str()).collect::<Vec<_>>(),
        ["000000000001", "000000000002"]
    );
    let json = registry::to_json(&first);
    assert_eq!(parse(&json).unwrap(), first, "round trip");
    expect![[r#"
        {
          "schema_version": 4,
          "generated_at": "2026-11-28T12:00:00Z",
          "inventory": "prod",
          "source_account": "111111111111",
          "written_by": "rolecall 0.4.0 (0123456789ab)",
          "entries": [
            {
              "account_id": "000000000001",
              "account_name": "acct-1",
              "role": "default",
              "role_name": "RolecallTarget",
              "stack_name": "rolecall-target-role",
              "region": "us-east-1",
              "stack_id": null,
              "role_arn": null,
              "outputs": {},
              "fingerprint": null,
              "status": "failed",
              "error": "create ended in ROLLBACK_COMPLETE: Role: denied"
            },
            {
              "account_id": "000000000002",
              "account_name": "acct-2",
              "role": "default",
              "role_name": "RolecallTarget",
              "stack_name": "rolecall-target-role",
              "region": "us-east-1",
              "stack_id": "arn:aws:cloudformation:us-east-1:000000000002:stack/rolecall-target-role/x",
              "role_arn": "arn:aws:iam::000000000002:role/RolecallTarget",
              "outputs": {
                "RoleArn": "arn:aws:iam::000000000002:role/RolecallTarget"
              },
              "fingerprint": "abababababababababababababababababababababababababababababababab",
              "status": "created",
              "error": null
            }
          ]
        }
    "#]]
    .assert_eq(&json);
    // A run over account 1 only keeps account 2's entry from before.
    let only = [account(1)];
    let second = next(
        Some(&first),
        &meta,
        &[outcome(1, "us-east-1", Status::Created)],
        Scope::Narrowed {
            accounts: Some(&only),
            roles: None,
        },
    );
    assert_eq!(
        second.entries.iter().map(|e| e.status.as_str()).collect::<Vec<_>>(),
        ["created", "created"]
    );
    assert!(parse("{\"schema_version\": 3}").is_err());
    // Version 1 and 2 files (one role, named in the header) are still read,
    // as role `default`.
    for v in [1, 2] {
        let old = serde_json::json!({
            "schema_version": v,
            "generated_at": "2026-11-28T12:00:00Z",
            "source_account": "111111111111",
            "stack_name": "rolecall-target-role",
            "role_name": "RolecallTarget",
            "entries": serde_json::from_str::<serde_json::Value>(&json).unwrap()["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    for k in ["role", "role_name", "stack_name"] {
                        e.as_object_mut().unwrap().remove(k);
                    }
                    e
                })
                .collect::<Vec<_>>(),
        });
        let read = parse(&old.to_string()).unwrap();
        assert_eq!(read.entries, first.entries, "version {v}");
        assert_eq!(read.inventory, None);
    }

    // Account 2 fails the next run: its last known ARN, stack and outputs
    // stay, with the failure.
    let third = next(
        Some(&second),
        &meta,
        &[outcome(2, "us-east-1", Status::Failed)],
        Scope::Inventory,
    );
    let e = &third.entries[0];
    assert_eq!(
        (
            e.status.as_str(),
            e.role_arn.as_deref(),
            e.stack_id.is_some(),
            e.outputs.len(),
            e.error.is_some()
        ),
        (
            "failed",
            Some("arn:aws:iam::000000000002:role/RolecallTarget"),
            true,
            1,
            true
        )
    );
}

fn profile(name: &str, n: u64, arn: bool) -> Profile {
    Profile {
        name: name.into(),
        account_id: account(n),
        account_name: name.into(),
        role_arn: arn.then(|| format!("arn:aws:iam::{n:012}:role/RolecallTarget")),
        source_profile: "default".into(),
        region: "us-east-1".into(),
        role_session_name: None,
        external_id: None,
        duration_seconds: None,
        mfa_serial: None,
    }
}

const HAND_WRITTEN: &str = "[default]\nregion = eu-west-1\n\n[profile personal]   \nsso_session = corp\n# my notes\n\n[sso-session corp]\nsso_region = us-east-1\n";

#[track_caller]
fn check_splice(existing: &str, profiles: &[Profile], expect: Expect) {
    let actual = match profiles::splice(existing, profiles, "inventory/prod.yaml", "prod") {
        Ok(text) => text,
        Err(e) => format!("{e:?}\n"),
    };
    expect.assert_eq(&actual);
}

#[test]
fn the_managed_block_is_appended_then_replaced_in_place() {
    let first = profiles::splice(
        HAND_WRITTEN,
        &[profile("dev", 2, true), profile("prod", 3, true)],
        "inventory/prod.yaml",
        "prod",
    )
    .unwrap();
    assert!(first.starts_with(HAND_WRITTEN), "the hand-written part is untouched");
    expect![[r#"
        [default]
        region = eu-west-1

        [profile personal]   
        sso_session = corp
        # my notes

        [sso-session corp]
        sso_region = us-east-1

        # BEGIN rolecall managed profiles: prod — do not edit
        # generated by rolecall from inventory/prod.yaml

        [profile dev]
        role_arn = arn:aws:iam::000000000002:role/RolecallTarget
        source_profile = default
        region = us-east-1

        [profile prod]
        role_arn = arn:aws:iam::000000000003:role/RolecallTarget
        source_profile = default
        region = us-east-1
        # END rolecall managed profiles: prod
    "#]]
    .assert_eq(&first);
    // Hand-written text after the block stays too, byte for byte.
    let edited = format!("{first}\n[profile after]\nregion = ap-south-1");
    // prod left the inventory (pruned); dev failed this run (kept as it was).
    let second = profiles::splice(
        &edited,
        &[profile("dev", 2, false), profile("new", 4, true)],
        "inventory/prod.yaml",
        "prod",
    )
    .unwrap();
    assert!(second.starts_with(HAND_WRITTEN));
    assert!(second.ends_with("# END rolecall managed profiles: prod\n\n[profile after]\nregion = ap-south-1"));
    check_splice(
        &edited,
        &[profile("dev", 2, false), profile("new", 4, true)],
        expect![[r#"
            [default]
            region = eu-west-1

            [profile personal]   
            sso_session = corp
            # my notes

            [sso-session corp]
            sso_region = us-east-1

            # BEGIN rolecall managed profiles: prod — do not edit
            # generated by rolecall from inventory/prod.yaml

            [profile dev]
            role_arn = arn:aws:iam::000000000002:role/RolecallTarget
            source_profile = default
            region = us-east-1

            [profile new]
            role_arn = arn:aws:iam::000000000004:role/RolecallTarget
            source_profile = default
            region = us-east-1
            # END rolecall managed profiles: prod

            [profile after]
            region = ap-south-1"#]],
    );
    // Same input, same output: a re-run changes nothing.
    assert_eq!(
        profiles::splice(
            &second,
            &[profile("dev", 2, false), profile("new", 4, true)],
            "inventory/prod.yaml",
            "prod"
        )
        .unwrap(),
        second
    );
}

#[test]
fn conflicts_and_damage_refuse_to_write() {
    check_splice(
        HAND_WRITTEN,
        &[profile("personal", 2, true), profile("default", 3, true)],
        expect![[r#"
        Conflicts(["personal", "default"])
    "#]],
    );
    let damaged = format!("{HAND_WRITTEN}{}\n[profile x]\n", profiles::LEGACY_BEGIN);
    check_splice(
        &damaged,
        &[profile("dev", 2, true)],
        expect![[r#"
        Damaged("expected one `# BEGIN rolecall managed profiles — do not edit` line followed by one `# END rolecall managed profiles` line, found 1 and 0")
    "#]],
    );
    assert!(
        matches!(profiles::splice("", &[profile("dev", 2, true)], "x", "prod"), Ok(t) if t.starts_with(&profiles::begin("prod")))
    );
}

/// Several inventories keep their own blocks in one config; the unnamed
/// block of rolecall 0.2 is adopted by the first inventory that writes
/// (one block after, never two); a profile name in two blocks is refused,
/// naming the other inventory.
#[test]
fn inventories_keep_their_own_blocks_and_adopt_the_old_one() {
    let legacy = format!(
        "{HAND_WRITTEN}\n{}\n# generated by rolecall from inventory/prod.yaml\n\n[profile dev]\nrole_arn = arn:aws:iam::000000000002:role/RolecallTarget\nsource_profile = default\nregion = us-east-1\n{}\n",
        profiles::LEGACY_BEGIN,
        profiles::LEGACY_END
    );
    let adopted = profiles::splice(&legacy, &[profile("dev", 2, true)], "inventory/admin.yaml", "admin").unwrap();
    assert!(adopted.starts_with(HAND_WRITTEN));
    assert!(!adopted.contains(profiles::LEGACY_BEGIN), "{adopted}");
    assert_eq!(adopted.matches("# BEGIN rolecall").count(), 1);
    assert!(adopted.contains(&profiles::begin("admin")));
    // A second inventory appends its own block and leaves admin's alone.
    let both = profiles::splice(&adopted, &[profile("dev-ro", 2, true)], "inventory/ro.yaml", "readonly").unwrap();
    assert!(both.starts_with(&adopted));
    // (Appended after one blank line.)
    assert_eq!(profiles::outside_block(&both, "readonly"), format!("{adopted}\n"));
    // admin again: only its block changes.
    let again = profiles::splice(
        &both,
        &[profile("dev", 2, true), profile("prod", 3, true)],
        "inventory/admin.yaml",
        "admin",
    )
    .unwrap();
    assert_eq!(
        profiles::outside_block(&again, "admin"),
        profiles::outside_block(&both, "admin")
    );
    assert!(again.contains("[profile dev-ro]") && again.contains("[profile prod]"));
    // The same name from both inventories: refused, naming the other one.
    assert_eq!(
        profiles::splice(&again, &[profile("prod", 3, true)], "inventory/ro.yaml", "readonly"),
        Err(profiles::SpliceError::OtherInventory {
            inventory: Some("admin".to_owned()),
            names: vec!["prod".to_owned()],
        })
    );
    // With its own block present, an inventory does not adopt the old one,
    // and the old one's names are the other inventory's.
    let mixed = format!(
        "{again}\n{}\n[profile old]\nrole_arn = x\n{}\n",
        profiles::LEGACY_BEGIN,
        profiles::LEGACY_END
    );
    assert_eq!(
        profiles::splice(&mixed, &[profile("old", 5, true)], "inventory/admin.yaml", "admin"),
        Err(profiles::SpliceError::OtherInventory {
            inventory: None,
            names: vec!["old".to_owned()],
        })
    );
    // A block of one inventory inside another's is damage.
    let nested = format!(
        "{}\n{}\n{}\n{}\n",
        profiles::begin("a"),
        profiles::begin("b"),
        profiles::end("b"),
        profiles::end("a")
    );
    assert!(matches!(
        profiles::splice(&nested, &[], "x", "a"),
        Err(profiles::SpliceError::Damaged(m)) if m.contains("overlap")
    ));
}

#[test]
fn standalone_file_and_optional_settings() {
    let mut p = profile("dev", 2, true);
    p.role_session_name = Some("alice".into());
    p.external_id = Some("ext-1".into());
    p.duration_seconds = Some(7200);
    expect![[r#"
        # AWS CLI profiles generated by rolecall from inventory/prod.yaml.
        # Regenerated on every apply; edits are lost. Use with AWS_CONFIG_FILE or
        # include the stanzas in ~/.aws/config.

        [profile dev]
        role_arn = arn:aws:iam::000000000002:role/RolecallTarget
        source_profile = default
        region = us-east-1
        role_session_name = alice
        external_id = ext-1
        duration_seconds = 7200
    "#]]
    .assert_eq(&profiles::standalone(
        &[p, profile("failed", 3, false)],
        "inventory/prod.yaml",
    ));
    expect![[r#"
        --- config
        +++ config
        @@ -1,2 +1,2 @@
         a
        -b
        +c
    "#]]
    .assert_eq(&profiles::diff("a\nb\n", "a\nc\n", "config"));
}

fn findings() -> Vec<model::DriftFinding> {
    let f = |n: u64, region: Option<&str>, kind, reason: &str, details: Vec<model::DriftDetail>| model::DriftFinding {
        account_id: account(n),
        account_name: format!("acct-{n}"),
        role: region.map(|_| "default".to_owned()),
        region: region.map(str::to_owned),
        kind,
        reason: reason.into(),
        details,
    };
    use model::DriftKind::*;
    vec![
        f(
            1,
            Some("us-east-1"),
            InSync,
            "UPDATE_COMPLETE matches the inventory",
            vec![],
        ),
        f(
            2,
            Some("us-east-1"),
            Drifted,
            "role R differs from the inventory (1 difference)",
            vec![model::DriftDetail {
                path: "Policies.extra".into(),
                expected: "absent".into(),
                actual: "{\"Statement\":[]}".into(),
            }],
        ),
        f(
            3,
            None,
            Uncovered,
            "ACTIVE in the organization, not in the inventory",
            vec![],
        ),
    ]
}

#[test]
fn drift_reports_as_table_and_markdown() {
    let notes = vec!["CloudFormation drift detection unavailable here; the live-role comparison was used".to_owned()];
    expect![[r#"
        ACCOUNT       NAME    REGION     RESULT     REASON
        000000000001  acct-1  us-east-1  IN_SYNC    UPDATE_COMPLETE matches the inventory
        000000000002  acct-2  us-east-1  DRIFTED    role R differs from the inventory (1 difference)
                                                      Policies.extra: expected absent, actual {"Statement":[]}
        000000000003  acct-3  -          UNCOVERED  ACTIVE in the organization, not in the inventory

        note: CloudFormation drift detection unavailable here; the live-role comparison was used
        Drift: 1 in sync, 1 drifted, 0 stale, 0 missing, 0 unhealthy, 1 uncovered, 0 orphaned, 0 errors (3 checked)
        To repair: `rolecall apply -i FILE --revert-drift` puts the DRIFTED roles back as the inventory has them
    "#]]
    .assert_eq(&text(|w| crate::drift::write_table(w, &findings(), &notes, true)));
    expect![[r#"
        **rolecall drift: 2 findings in 3 targets** (1 DRIFTED, 1 UNCOVERED; 1 in sync).

        > CloudFormation drift detection unavailable here; the live-role comparison was used

        To repair: `rolecall apply -i FILE --revert-drift` puts the DRIFTED roles back as the inventory has them.

        ## DRIFTED (1)

        - `000000000002` (acct-2) us-east-1: role R differs from the inventory (1 difference)
          - `Policies.extra`: expected `absent`, actual `{"Statement":[]}`

        ## UNCOVERED (1)

        - `000000000003` (acct-3): ACTIVE in the organization, not in the inventory
    "#]]
    .assert_eq(&text(|w| crate::drift::write_markdown(w, &findings(), &notes)));
    let json: serde_json::Value = serde_json::from_str(&text(|w| {
        crate::drift::write_json(w, "2026-11-29T12:00:00Z", &findings(), &notes)
    }))
    .unwrap();
    assert_eq!(
        (json["counts"]["DRIFTED"].as_u64(), json["complete"].as_bool()),
        (Some(1), Some(true))
    );
}

/// Every export format gives back every ARN of the registry (read back
/// the way its consumer reads it), with the entry it belongs to.
#[test]
fn every_export_format_round_trips_every_arn() {
    let entry = |n: u64, role: &str, region: &str, name: &str, arn: Option<&str>| model::registry::Entry {
        account_id: account(n),
        account_name: name.into(),
        role: role.into(),
        role_name: "R".into(),
        stack_name: format!("rolecall-{role}"),
        region: region.into(),
        stack_id: None,
        role_arn: arn.map(str::to_owned),
        outputs: BTreeMap::new(),
        fingerprint: None,
        status: if arn.is_some() { Status::Created } else { Status::Failed },
        error: None,
    };
    let entries = [
        entry(
            1,
            "admin",
            "us-east-1",
            "dev, \"main\"",
            Some("arn:aws:iam::000000000001:role/Admin"),
        ),
        entry(
            1,
            "deploy-ci",
            "eu-west-1",
            "dev",
            Some("arn:aws:iam::000000000001:role/ci/Deploy+Eu@x=1,y"),
        ),
        entry(2, "admin", "us-east-1", "prod", None),
    ];
    let refs: Vec<&model::registry::Entry> = entries.iter().collect();
    let want: BTreeMap<String, String> = entries
        .iter()
        .filter_map(|e| Some((registry::map_key(e), e.role_arn.clone()?)))
        .collect();

    // csv: a header, quoted fields where needed.
    let csv = registry::to_csv(&refs);
    assert!(csv.starts_with("account_id,account_name,role,region,role_arn,status\n"));
    assert!(csv.contains("\"dev, \"\"main\"\"\""), "{csv}");
    // Read back as a CSV reader does (RFC 4180: quotes, doubled quotes).
    let mut rows: Vec<Vec<String>> = Vec::new();
    for line in csv.lines() {
        let (mut row, mut cell, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    cell.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => row.push(std::mem::take(&mut cell)),
                (c, _) => cell.push(c),
            }
        }
        row.push(cell);
        rows.push(row);
    }
    assert!(rows.iter().all(|r| r.len() == 6), "{rows:?}");
    assert_eq!(rows[1][1], "dev, \"main\"");
    let from_csv: BTreeMap<String, String> = rows[1..]
        .iter()
        .filter(|r| !r[4].is_empty())
        .map(|r| (format!("{}/{}/{}", r[2], r[0], r[3]), r[4].clone()))
        .collect();
    assert_eq!(from_csv, want);

    // json: the entries themselves.
    let json: Vec<model::registry::Entry> = serde_json::from_str(&registry::entries_json(&refs)).unwrap();
    assert_eq!(json, entries.to_vec());

    // tfvars: one map.
    let tfvars = registry::to_tfvars(&refs);
    let from_tf: BTreeMap<String, String> = tfvars
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(" = ")?;
            Some((k.trim_matches('"').to_owned(), v.trim_matches('"').to_owned()))
        })
        .filter(|(k, _)| k != "rolecall_role_arns")
        .collect();
    assert_eq!(from_tf, want);
    expect![[r#"
        rolecall_role_arns = {
          "admin/000000000001/us-east-1" = "arn:aws:iam::000000000001:role/Admin"
          "deploy-ci/000000000001/eu-west-1" = "arn:aws:iam::000000000001:role/ci/Deploy+Eu@x=1,y"
        }
    "#]]
    .assert_eq(&tfvars);

    // env: lines a shell sources.
    expect![[r#"
        export ROLECALL_ADMIN_000000000001_US_EAST_1='arn:aws:iam::000000000001:role/Admin'
        export ROLECALL_DEPLOY_CI_000000000001_EU_WEST_1='arn:aws:iam::000000000001:role/ci/Deploy+Eu@x=1,y'
    "#]]
    .assert_eq(&registry::to_env(&refs).unwrap());
    let clash = [
        entry(1, "a-b", "us-east-1", "d", Some("arn:1")),
        entry(1, "a_b", "us-east-1", "d", Some("arn:2")),
    ];
    assert_eq!(
        registry::to_env(&clash.iter().collect::<Vec<_>>()),
        Err(
            "a_b/000000000001/us-east-1 and a-b/000000000001/us-east-1 both become ROLECALL_A_B_000000000001_US_EAST_1"
                .to_owned()
        )
    );
}

/// At scale, text output is what needs attention plus counts: 300
/// stacks of two roles with 3 to create and an account that failed print
/// 4 rows, the summary, one line per role and what was left out.
#[test]
fn at_scale_only_what_needs_attention_is_listed() {
    let mut entries = Vec::new();
    for n in 1..=150 {
        for role in ["admin", "readonly"] {
            let action = if role == "admin" && n % 50 == 0 {
                Action::Create
            } else {
                Action::NoOp
            };
            let mut e = entry(
                n,
                "us-east-1",
                action,
                if action == Action::Create {
                    "no stack rolecall-admin"
                } else {
                    "matches"
                },
            );
            e.role = role.into();
            entries.push(e);
        }
    }
    let mut plan = Plan {
        entries,
        errors: vec![AccountError {
            account_id: account(151),
            account_name: "acct-151".into(),
            region: None,
            message: "cannot assume …".into(),
        }],
        stack_sets: vec![],
    };
    plan.sort();
    expect![[r#"
        ACCOUNT       NAME      ROLE   REGION     ACTION  REASON
        000000000050  acct-50   admin  us-east-1  create  no stack rolecall-admin
        000000000100  acct-100  admin  us-east-1  create  no stack rolecall-admin
        000000000150  acct-150  admin  us-east-1  create  no stack rolecall-admin
        000000000151  acct-151  -      -          error   cannot assume …

        Plan: 3 to create, 0 to update, 0 to recover, 0 to wait for, 297 unchanged, 0 blocked, 1 error (300 stacks in 151 accounts)
          admin: 3 to create, 147 unchanged
          readonly: 150 unchanged
        297 unchanged not listed (--all lists every row)
    "#]]
    .assert_eq(&text(|w| crate::write_plan(w, &plan, false)));
    let all = text(|w| crate::write_plan(w, &plan, true));
    assert_eq!(all.lines().count(), 1 + 301 + 1 + 3, "{all}");

    // Nothing to do: the counts alone.
    plan.entries.retain(|e| e.action == Action::NoOp);
    plan.errors.clear();
    expect![[r#"
        Plan: 0 to create, 0 to update, 0 to recover, 0 to wait for, 297 unchanged, 0 blocked, 0 errors (297 stacks in 150 accounts)
          admin: 147 unchanged
          readonly: 150 unchanged
        297 unchanged not listed (--all lists every row)
    "#]]
    .assert_eq(&text(|w| crate::write_plan(w, &plan, false)));

    // The apply summary and drift likewise.
    let mut outcomes: Vec<Outcome> = (1..=100).map(|n| outcome(n, "us-east-1", Status::Unchanged)).collect();
    outcomes[41] = outcome(42, "us-east-1", Status::Created);
    expect![[r#"
        ACCOUNT       NAME     REGION     ACTION  RESULT   ROLE ARN / ERROR
        000000000042  acct-42  us-east-1  create  created  arn:aws:iam::000000000042:role/RolecallTarget

        Apply: 1 created, 0 updated, 99 unchanged, 0 failed, 0 blocked, 0 not attempted (100 stacks)
        99 unchanged not listed (--all lists every row)
    "#]]
    .assert_eq(&text(|w| crate::write_summary(w, &outcomes, false)));
    expect![[r#"
        ACCOUNT       NAME    REGION     RESULT     REASON
        000000000002  acct-2  us-east-1  DRIFTED    role R differs from the inventory (1 difference)
                                                      Policies.extra: expected absent, actual {"Statement":[]}
        000000000003  acct-3  -          UNCOVERED  ACTIVE in the organization, not in the inventory

        Drift: 1 in sync, 1 drifted, 0 stale, 0 missing, 0 unhealthy, 1 uncovered, 0 orphaned, 0 errors (3 checked)
        1 in sync not listed (--all lists every row)
        To repair: `rolecall apply -i FILE --revert-drift` puts the DRIFTED roles back as the inventory has them
    "#]]
    .assert_eq(&text(|w| crate::drift::write_table(w, &findings(), &[], false)));
}

/// The HTML report: every string from AWS is text. A name that would end
/// the script element or open a tag appears only escaped, in the markup and
/// in the embedded JSON; the counts and the findings are in the page.
#[test]
fn the_html_report_never_lets_a_name_become_markup() {
    let evil = "</script><img src=x onerror=alert(1)>&\u{2028}";
    let findings = vec![
        model::DriftFinding {
            account_id: account(3),
            account_name: evil.into(),
            role: Some("default".into()),
            region: Some("us-east-1".into()),
            kind: model::DriftKind::Drifted,
            reason: "role R differs <b>".into(),
            details: vec![model::DriftDetail {
                path: "Policies.x".into(),
                expected: "absent".into(),
                actual: "{\"a\":\"<script>\"}".into(),
            }],
        },
        model::DriftFinding {
            account_id: account(2),
            account_name: "ok".into(),
            role: Some("default".into()),
            region: Some("us-east-1".into()),
            kind: model::DriftKind::InSync,
            reason: "matches".into(),
            details: vec![],
        },
    ];
    let ous = crate::html::Ous::from([(account(3).to_string(), "ou-ab12-3456".to_owned())]);
    let report = crate::html::Report {
        command: "drift".into(),
        inventory: "platform<x>".into(),
        generated_at: "2026-12-04T00:00:00Z".into(),
        rows: crate::html::drift_rows(&findings, &ous),
    };
    let page = text(|w| crate::html::write_html(w, &report));
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("<b>"));
    assert_eq!(
        page.matches("</script>").count(),
        2,
        "only the page's own two script elements end"
    );
    assert!(page.contains("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&amp;"));
    assert!(page.contains("\\u003c/script\\u003e\\u003cimg src=x onerror=alert(1)\\u003e\\u0026\\u2028"));
    assert!(page.contains("<title>rolecall drift — platform&lt;x&gt;</title>"));
    assert!(page.contains("id=\"count-DRIFTED\">1<"));
    assert!(page.contains("id=\"count-IN_SYNC\">1<"));
    assert!(page.contains("<h2>Details (1)</h2>"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "nothing from the network"
    );
    // The embedded data reads back as the rows.
    let json = page
        .split("<script type=\"application/json\" id=\"data\">")
        .nth(1)
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(json.split("</script>").next().unwrap()).unwrap();
    assert_eq!(json["accounts"][0][1], evil, "the drifted account first");
    assert_eq!(json["accounts"][0][2], "ou-ab12-3456");
    assert_eq!(json["accounts"][1][2], "-");
}
