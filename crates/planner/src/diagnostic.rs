//! Problems found in an inventory, each with file, line, column, key and a fix.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, located. `line`/`column` are 1-based; 0 means "whole file".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The key, as a path: `accounts[2].id`.
    pub key: String,
    /// What is wrong, and what was expected.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one file.
#[derive(Debug)]
pub(crate) struct Sink {
    file: PathBuf,
    pub(crate) items: Vec<Diagnostic>,
}

impl Sink {
    pub(crate) fn new(file: &Path) -> Sink {
        Sink {
            file: file.to_path_buf(),
            items: Vec::new(),
        }
    }

    pub(crate) fn push(
        &mut self,
        severity: Severity,
        at: (usize, usize),
        key: &str,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.items.push(Diagnostic {
            severity,
            file: self.file.clone(),
            line: at.0,
            column: at.1,
            key: key.to_owned(),
            message: message.into(),
            help,
        });
    }

    pub(crate) fn error(&mut self, at: (usize, usize), key: &str, message: impl Into<String>, help: impl Into<String>) {
        let help = help.into();
        self.push(Severity::Error, at, key, message, (!help.is_empty()).then_some(help));
    }

    pub(crate) fn warning(
        &mut self,
        at: (usize, usize),
        key: &str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        let help = help.into();
        self.push(Severity::Warning, at, key, message, (!help.is_empty()).then_some(help));
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// Errors first, then by position.
    pub(crate) fn finish(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|a| (a.severity, a.line, a.column));
        self.items
    }
}
