//! `--html FILE` of plan, apply and drift: the report's rows (the
//! reporter builds and renders them), each account's OU from the targets,
//! written atomically.

use std::path::Path;

use anyhow::Context;
use model::{Inventory, Target};

/// Each account's OU (its parent in Organizations), where known.
pub(crate) fn ous<'a>(targets: impl IntoIterator<Item = &'a Target>) -> reporter::html::Ous {
    targets
        .into_iter()
        .filter_map(|t| Some((t.account_id.to_string(), t.parent.clone()?)))
        .collect()
}

/// Writes the report when `--html` asked for one.
pub(crate) async fn write(
    path: Option<&Path>,
    command: &str,
    inv: &Inventory,
    rows: impl FnOnce() -> Vec<reporter::html::Row>,
) -> anyhow::Result<()> {
    let Some(path) = path else {
        return Ok(());
    };
    let report = reporter::html::Report {
        command: command.to_owned(),
        inventory: inv.name.clone(),
        generated_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        rows: rows(),
    };
    let mut text = Vec::new();
    reporter::html::write_html(&mut text, &report)?;
    let text = String::from_utf8(text).context("the HTML report is not UTF-8")?;
    crate::files::write_atomic(path, &text, 0o644)
        .await
        .with_context(|| format!("cannot write the HTML report {}", path.display()))?;
    eprintln!("rolecall: wrote the HTML report {}", path.display());
    Ok(())
}
