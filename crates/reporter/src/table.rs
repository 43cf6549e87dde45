//! Column-aligned text tables; the last column is never padded.

use std::collections::BTreeMap;
use std::io::{self, Write};

#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Removes column `index` from the header and every row (a ROLE
    /// column when the rows are all of one role).
    pub fn hide(&mut self, index: usize) {
        for row in &mut self.rows {
            if index < row.len() {
                row.remove(index);
            }
        }
    }

    /// No rows under the header.
    pub fn is_empty(&self) -> bool {
        self.rows.len() <= 1
    }

    pub fn write(&self, w: &mut dyn Write) -> io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            writeln!(w, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// More than one role among the rows: only then do tables show a ROLE
/// column (an inventory of one role prints what it always printed).
pub fn several_roles<'a>(mut roles: impl Iterator<Item = &'a str>) -> bool {
    let Some(first) = roles.next() else { return false };
    roles.any(|r| r != first)
}

/// Counts per role, then per kind (an action, a result), in the kinds'
/// order; only the kinds a role has.
pub fn by_role<'a, K: Ord + Copy>(rows: impl Iterator<Item = (&'a str, K)>) -> BTreeMap<&'a str, BTreeMap<K, usize>> {
    let mut out: BTreeMap<&str, BTreeMap<K, usize>> = BTreeMap::new();
    for (role, kind) in rows {
        *out.entry(role).or_default().entry(kind).or_default() += 1;
    }
    out
}

/// The line under a summary that says how many rows were left out of the
/// table (none: no line), and how to see them.
pub fn not_listed(w: &mut dyn Write, hidden: usize, what: &str) -> io::Result<()> {
    if hidden > 0 {
        writeln!(w, "{hidden} {what} not listed (--all lists every row)")?;
    }
    Ok(())
}
