//! The invariants ARCHITECTURE.md writes as absences, kept by a test: no
//! AWS SDK path outside the executor's AWS module, no ARN formatted
//! outside `planner::partition`, and no SDK crate in any product crate's
//! manifest but the executor's. Test code (files and modules under
//! `#[cfg(test)]`) may do either.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every product source file of `crates/*/src` (and the executor's
/// examples), without the files that are test modules.
fn product_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let tests: Vec<PathBuf> = files.iter().flat_map(|f| test_modules(f)).collect();
    files.retain(|f| !tests.contains(f));
    files.sort();
    files
}

/// The files that `file` declares as `#[cfg(test)] mod name;`.
fn test_modules(file: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(file).unwrap();
    let dir = match file.file_name().and_then(|n| n.to_str()) {
        Some("lib.rs" | "main.rs" | "mod.rs") => file.parent().unwrap().to_path_buf(),
        _ => file.with_extension(""),
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|w| w[0] == "#[cfg(test)]")
        .filter_map(|w| w[1].strip_prefix("mod ")?.strip_suffix(';'))
        .flat_map(|name| [dir.join(format!("{name}.rs")), dir.join(name).join("mod.rs")])
        .collect()
}

/// The file's lines before its first `#[cfg(test)]`, numbered, without
/// comments.
fn product_lines(file: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect()
}

fn relative(file: &Path) -> String {
    file.strip_prefix(workspace()).unwrap().display().to_string()
}

/// `aws_sdk_x::`, `aws_config::` …: a path into the SDK (a log target
/// named in a string is not one).
fn names_the_sdk(line: &str) -> bool {
    [
        "aws_sdk_",
        "aws_config",
        "aws_smithy_",
        "aws_credential_types",
        "aws_types",
    ]
    .iter()
    .any(|p| {
        line.match_indices(p).any(|(i, _)| {
            let rest = &line[i..];
            let word = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(rest, |end| &rest[..end]);
            rest[word.len()..].starts_with("::") || line.trim_start().starts_with(&format!("use {word}"))
        })
    })
}

/// A string literal that builds an ARN: `arn:` followed by a format
/// placeholder (`{…}`, `${AWS::…}`), or the bare prefix `"arn:"`.
fn formats_an_arn(line: &str) -> bool {
    let mut literals = line.split('"').skip(1).step_by(2);
    literals.any(|lit| lit == "arn:" || lit.find("arn:").is_some_and(|i| lit[i..].contains('{')))
}

#[test]
fn sdk_paths_only_in_the_executors_aws_module() {
    let aws = workspace().join("crates/executor/src/aws");
    let mut found = Vec::new();
    for file in product_files().iter().filter(|f| !f.starts_with(&aws)) {
        for (n, line) in product_lines(file) {
            if names_the_sdk(&line) {
                found.push(format!("{}:{n}: {}", relative(file), line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SDK paths outside crates/executor/src/aws:\n{}",
        found.join("\n")
    );
}

#[test]
fn arns_are_formatted_only_in_partition_rs() {
    let home = workspace().join("crates/planner/src/partition.rs");
    let mut found = Vec::new();
    for file in product_files().iter().filter(|f| **f != home) {
        for (n, line) in product_lines(file) {
            if formats_an_arn(&line) {
                found.push(format!("{}:{n}: {}", relative(file), line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "ARNs built outside planner::partition:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_executor_depends_on_the_sdk() {
    for entry in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        if dir.ends_with("executor") {
            continue;
        }
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let deps: Vec<&str> = manifest
            .lines()
            .filter(|l| l.starts_with("aws-") || l.starts_with("aws_"))
            .collect();
        assert!(deps.is_empty(), "{} depends on {deps:?}", relative(&dir));
    }
}

/// The checks themselves find what they look for.
#[test]
fn the_checks_catch_what_they_are_for() {
    assert!(names_the_sdk("use aws_sdk_iam as iam;"));
    assert!(names_the_sdk("let c = aws_sdk_sts::Client::new(&cfg);"));
    assert!(names_the_sdk("    aws_config::defaults(BehaviorVersion::latest())"));
    assert!(!names_the_sdk(r#"    ("aws_sdk_sts", LevelFilter::DEBUG),"#));
    assert!(formats_an_arn(r#"format!("arn:aws:iam::{s}:root")"#));
    assert!(formats_an_arn(
        r#"json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:iam::{a}:root")})"#
    ));
    assert!(formats_an_arn(r#"if p.starts_with("arn:") {"#));
    assert!(!formats_an_arn(r#""write arn:aws:iam::<account>:policy/<name>""#));
    assert!(!product_files().is_empty());
    let executor_tests = workspace().join("crates/executor/src/tests.rs");
    assert!(!product_files().contains(&executor_tests), "test modules are left out");
}

/// The top-level modules of the crate that `text` names through `crate::`
/// (`crate::a::b`, `use crate::{a, b::{c, d}}`).
fn crate_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the brace group.
            let (mut depth, mut item_start) = (0usize, true);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        out.push(ident(&group[j..]));
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out
}

#[test]
fn no_import_circle_between_the_modules_of_a_crate() {
    for entry in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let src = entry.unwrap().path().join("src");
        let mut edges: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
        for file in product_files().iter().filter(|f| f.starts_with(&src)) {
            let rel = file.strip_prefix(&src).unwrap();
            let top = rel.components().next().unwrap().as_os_str().to_string_lossy();
            let top = top.trim_end_matches(".rs").to_owned();
            if top == "lib" || top == "main" {
                continue;
            }
            let text: String = product_lines(file).into_iter().map(|(_, l)| l + "\n").collect();
            let mine = edges.entry(top.clone()).or_default();
            mine.extend(crate_refs(&text).into_iter().filter(|r| *r != top));
        }
        let modules: Vec<String> = edges.keys().cloned().collect();
        for start in &modules {
            // Depth-first from each module: a path back to it is a circle.
            let mut stack = vec![vec![start.clone()]];
            let mut seen = std::collections::BTreeSet::new();
            while let Some(path) = stack.pop() {
                for next in edges.get(path.last().unwrap()).into_iter().flatten() {
                    assert!(
                        next != start,
                        "{}: import circle {} -> {start}",
                        relative(&src),
                        path.join(" -> ")
                    );
                    if edges.contains_key(next) && seen.insert(next.clone()) {
                        stack.push([path.clone(), vec![next.clone()]].concat());
                    }
                }
            }
        }
    }
}

#[test]
fn crate_refs_read_paths_and_groups() {
    assert_eq!(crate_refs("use crate::stacks::{Failure, Stack};"), ["stacks"]);
    assert_eq!(
        crate_refs("use crate::{exit, files::{a, b},\n    options};"),
        ["exit", "files", "options"]
    );
    assert_eq!(crate_refs("crate::observe::read_stack(x)"), ["observe"]);
}
