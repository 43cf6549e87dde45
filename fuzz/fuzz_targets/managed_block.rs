//! The managed-block rewriter on arbitrary config text: whenever it writes,
//! everything outside rolecall's block is kept byte for byte, and writing
//! the same profiles again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::{AccountId, Profile};
use reporter::profiles::{outside_block, splice};

fn profiles(n: u8) -> Vec<Profile> {
    (0..n % 4)
        .map(|i| Profile {
            name: format!("p{i}"),
            account_id: AccountId::parse("111111111111").expect("valid"),
            account_name: format!("p{i}"),
            role_arn: (i % 2 == 0).then(|| format!("arn:aws:iam::111111111111:role/R{i}")),
            source_profile: "default".to_owned(),
            region: "us-east-1".to_owned(),
            role_session_name: None,
            external_id: None,
            duration_seconds: None,
            mfa_serial: None,
        })
        .collect()
}


fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let existing = String::from_utf8_lossy(rest);
    let set = profiles(n);
    // Inventory "a" writes, then "b" (which must leave a's block alone).
    let Ok(new) = splice(&existing, &set, "fuzz.yaml", "a") else { return };
    if outside_block(&existing, "a") != existing.as_ref() {
        assert_eq!(outside_block(&new, "a"), outside_block(&existing, "a"));
    } else {
        assert!(new.starts_with(existing.as_ref()));
    }
    let again = splice(&new, &set, "fuzz.yaml", "a").expect("our own output splices");
    assert_eq!(again, new);
    let other = splice(&new, &profiles(n.wrapping_add(1)), "fuzz.yaml", "a").expect("our own output splices");
    assert_eq!(outside_block(&other, "a"), outside_block(&new, "a"));
    if let Ok(b) = splice(&other, &set, "fuzz.yaml", "b") {
        assert_eq!(outside_block(&b, "b"), outside_block(&other, "b"));
    }
});
