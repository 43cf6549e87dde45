//! Column-aligned text tables; the last column is never padded.

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
