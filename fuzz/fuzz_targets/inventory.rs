//! The inventory parser on arbitrary bytes: it must answer with an
//! inventory or diagnostics, never panic, hang or blow the stack. Files it
//! refers to (templates) read as a small valid template or as an error,
//! chosen by the input, so the template checks are reached too.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

const TEMPLATE: &str = "Resources:\n  R:\n    Type: AWS::IAM::Role\n";

fuzz_target!(|data: &[u8]| {
    let template_ok = data.first().is_some_and(|b| b & 1 == 1);
    let read = |_: &Path| -> std::io::Result<String> {
        if template_ok {
            Ok(TEMPLATE.to_owned())
        } else {
            Err(std::io::Error::other("no such file"))
        }
    };
    match planner::inventory::parse_bytes(data, Path::new("fuzz/inventory.yaml"), &read) {
        Ok((inventory, warnings)) => {
            // What a valid inventory leads to must not panic either.
            let _ = planner::inventory::render(&warnings);
            let desired = planner::desired(&inventory);
            assert!(!desired.template_body.is_empty());
        }
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty(), "an error without a diagnostic");
            let _ = planner::inventory::render(&diagnostics);
        }
    }
});
