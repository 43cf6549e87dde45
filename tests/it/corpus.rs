//! The bad-input corpus (tests/corpus/): every malformed inventory or
//! template gives its clear error naming file:line and key, exit 1, no
//! panic, no AWS call (the counting proxy sees none) and nothing written,
//! whatever the command.

use std::collections::BTreeMap;
use std::path::Path;

use tests::proxy::Proxy;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn listing(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_malformed_input_is_a_clear_error_with_no_call_and_no_write() {
    let source = tests::workspace_root().join("tests/corpus");
    let dir = std::env::temp_dir().join(format!("rolecall-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&source, &dir.join("corpus"));
    let corpus = dir.join("corpus");
    // Too big to commit.
    let mut huge = String::from("version: 1\nsource_account: \"111111111111\"\n");
    huge.push_str(&"# padding\n".repeat(1_700_000));
    std::fs::write(corpus.join("66-huge.yaml"), huge).unwrap();
    let description = "x".repeat(60_000);
    std::fs::write(
        corpus.join("templates/huge.json"),
        format!(r#"{{"Resources": {{"R": {{"Type": "AWS::IAM::Role", "Properties": {{"Description": "{description}"}}}}}}}}"#),
    )
    .unwrap();

    let expected: BTreeMap<String, String> = std::fs::read_to_string(source.join("expected.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (file, want) = l.split_once('\t').expect("file<TAB>expected");
            (file.to_owned(), want.to_owned())
        })
        .collect();
    let files: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    assert!(files.len() >= 40, "the corpus has {} files", files.len());
    let mut missing: Vec<&String> = files.iter().filter(|f| !expected.contains_key(*f)).collect();
    missing.sort();
    assert!(missing.is_empty(), "no expectation in expected.tsv for {missing:?}");
    assert_eq!(
        expected.len(),
        files.len(),
        "expected.tsv names files that do not exist"
    );

    // Nothing listens behind the proxy: it counts what would have been called.
    let proxy = Proxy::start(9);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let config = out.join("config");
    std::fs::write(&config, "[default]\nregion = eu-west-1\n").unwrap();
    let before = listing(&out);
    let (reg, profiles) = (out.join("registry.json"), out.join("profiles.ini"));
    let (reg, profiles, config) = (
        reg.to_str().unwrap(),
        profiles.to_str().unwrap(),
        config.to_str().unwrap(),
    );
    for (file, want) in &expected {
        let path = corpus.join(file);
        let path = path.to_str().unwrap();
        let want = want.replace("FILE", path);
        for args in [
            vec!["validate", "-i", path],
            vec!["plan", "-i", path, "--registry", reg],
            vec![
                "apply",
                "-i",
                path,
                "--yes",
                "--registry",
                reg,
                "--profiles",
                profiles,
                "--profiles-into",
                config,
            ],
            vec!["drift", "-i", path, "--registry", reg],
            vec![
                "destroy",
                "-i",
                path,
                "--yes",
                "--registry",
                reg,
                "--profiles-into",
                config,
            ],
        ] {
            let run = tests::rolecall(&proxy.url(), &args);
            run.expect_code(1);
            assert!(
                run.stderr.contains(&want),
                "{file} / {}: expected {want:?} in:\n{}",
                args[0],
                run.stderr
            );
            assert!(run.stdout.is_empty(), "{file} / {}: stdout: {}", args[0], run.stdout);
        }
        assert!(proxy.take_calls().is_empty(), "{file}: an AWS call was made");
        assert_eq!(listing(&out), before, "{file}: something was written");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
