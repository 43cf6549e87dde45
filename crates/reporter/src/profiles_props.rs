//! Property tests of the managed-block rewriter: whatever the user's config
//! holds, rolecall's writes change only its block, and writing the same
//! profiles twice changes nothing.

use model::{AccountId, Profile};
use proptest::prelude::*;

use crate::profiles::{LEGACY_BEGIN, LEGACY_END, begin, end, outside_block, splice};

/// Lines a real config (or a damaged one) may hold, markers included.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("[default]".to_owned()),
        Just("region = eu-west-1".to_owned()),
        Just("[profile dev]".to_owned()),
        Just("[profile  prod ]".to_owned()),
        Just("[sso-session corp]".to_owned()),
        Just("# a comment of the user's".to_owned()),
        Just(LEGACY_BEGIN.to_owned()),
        Just(LEGACY_END.to_owned()),
        Just(format!("{LEGACY_BEGIN}   ")),
        Just(begin("a")),
        Just(end("a")),
        Just(begin("b")),
        Just(end("b")),
        "[a-z_ =\\[\\]#;.-]{0,30}",
        "\\PC{0,20}",
    ]
}

/// Any text: lines joined by \n or \r\n, with or without a final newline.
fn config() -> impl Strategy<Value = String> {
    (prop::collection::vec((line(), any::<bool>()), 0..12), any::<bool>()).prop_map(|(lines, last)| {
        let mut text = String::new();
        for (i, (l, crlf)) in lines.iter().enumerate() {
            text.push_str(l);
            if i + 1 < lines.len() || last {
                text.push_str(if *crlf { "\r\n" } else { "\n" });
            }
        }
        text
    })
}

fn profiles() -> impl Strategy<Value = Vec<Profile>> {
    prop::collection::btree_map("[a-e]{1,2}", prop::option::of("[0-9]{3}"), 0..5).prop_map(|names| {
        names
            .into_iter()
            .map(|(name, arn)| Profile {
                name: format!("acct-{name}"),
                account_id: AccountId::parse("111111111111").expect("valid id"),
                account_name: name.clone(),
                role_arn: arn.map(|n| format!("arn:aws:iam::111111111111:role/R{n}")),
                source_profile: "default".to_owned(),
                region: "us-east-1".to_owned(),
                role_session_name: None,
                external_id: None,
                duration_seconds: None,
                mfa_serial: None,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn only_the_block_changes_and_writes_are_idempotent(
        existing in config(),
        writes in prop::collection::vec((prop_oneof![Just("a"), Just("b")], profiles()), 1..5),
    ) {
        // Two inventories write their blocks into one config, in turn.
        let mut text = existing.clone();
        for (inventory, set) in &writes {
            let Ok(new) = splice(&text, set, "inventory.yaml", inventory) else {
                // Refused (damaged markers, names hand-written or in the
                // other inventory's block): the caller writes nothing.
                continue;
            };
            if outside_block(&text, inventory) == text {
                // No block of its own (nor one to adopt): appended; the
                // old text is a byte-identical prefix, followed only by
                // blank lines and the block.
                prop_assert!(new.starts_with(&text));
                let rest = &new[text.len()..];
                prop_assert!(rest.trim_start_matches('\n').starts_with(&begin(inventory)), "{rest:?}");
            } else {
                // Only its block changed; the other inventory's block and
                // everything of the user's are byte for byte the same.
                prop_assert_eq!(outside_block(&new, inventory), outside_block(&text, inventory));
            }
            prop_assert_eq!(&splice(&new, set, "inventory.yaml", inventory).expect("our own output splices"), &new);
            text = new;
        }
    }
}
