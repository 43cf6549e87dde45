//! The ARN registry's bytes: pretty JSON, sorted by account then region
//! (as `planner::registry::next` leaves it), stable formatting. The
//! document is `model::registry`; its JSON Schema is
//! schemas/registry.v3.schema.json.

use model::registry::Registry;

/// Pretty JSON with a trailing newline: the bytes that go to the file.
pub fn to_json(registry: &Registry) -> String {
    let mut text = serde_json::to_string_pretty(registry).expect("the registry always serialises");
    text.push('\n');
    text
}
