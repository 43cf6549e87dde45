//! The ARN registry's bytes: read the previous document before a run, write
//! the next one after it. What the next one holds is
//! `planner::registry::next`; how it is spelled is `reporter::registry`.

use std::path::Path;

use anyhow::Context;
use model::Inventory;
use model::registry::Registry;
use planner::registry::Header;

use crate::files;

/// Where the ARN registry is read and written unless `--registry` says.
pub(crate) const DEFAULT_REGISTRY: &str = "rolecall-registry.json";

/// The registry at `path`, or `None` when there is none yet. A file that
/// cannot be read stops the run before anything changes.
pub(crate) fn read_previous(path: &Path) -> anyhow::Result<Option<Registry>> {
    let text = files::read_or_empty(path).with_context(|| format!("cannot read the registry {}", path.display()))?;
    if text.is_empty() {
        return Ok(None);
    }
    planner::registry::parse(&text).map(Some).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}\n  help: fix or move the file, or pass another --registry",
            path.display()
        )
    })
}

/// The registry a file names (the `profiles` command): it must be there.
pub(crate) fn read(path: &Path) -> anyhow::Result<Registry> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the registry {}", path.display()))?;
    planner::registry::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The next registry of a run of `inv`, written to `path`; returns it.
pub(crate) fn write_next(
    path: &Path,
    inv: &Inventory,
    previous: Option<&Registry>,
    outcomes: &[model::Outcome],
    scope: planner::registry::Scope<'_>,
) -> anyhow::Result<Registry> {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let header = Header {
        generated_at: &now,
        source_account: &inv.source_account,
        stack_name: &inv.role.stack_name,
        role_name: &inv.role.name,
    };
    let registry = planner::registry::next(previous, &header, outcomes, scope);
    files::write_atomic(path, &reporter::registry::to_json(&registry), 0o644)
        .with_context(|| format!("cannot write the registry {}", path.display()))?;
    eprintln!(
        "rolecall: wrote the ARN registry {} ({} entries)",
        path.display(),
        registry.entries.len()
    );
    Ok(registry)
}
