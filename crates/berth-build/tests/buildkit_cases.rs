//! BuildKit's own parser and lexer cases, run against berth-build:
//! - `testfiles/*/Dockerfile`: the parse, dumped as BuildKit dumps its AST,
//!   must equal the case's `result` file;
//! - `testfiles-negative/*/Dockerfile`: the parse must fail;
//! - `envVarTest`: `platform|word|expected` lines for one-word expansion
//!   (`error` when it must fail), with PWD=/home, SHELL=bash, KOREAN and an
//!   empty NULL set, as BuildKit's lexer test sets them;
//! - `wordsTest`: `words|expected,split,words` lines for word splitting,
//!   `ENV k=v` lines adding variables as they come.
//!
//! The cases live in the shared test data (BuildKit's files, Apache-2.0),
//! outside this repository; a missing directory is a failure, not a skip.

use std::path::{Path, PathBuf};

use berth_build::{Instruction, Lexer};

fn data_dir() -> PathBuf {
    let beside =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/dockerfile-parser");
    if beside.is_dir() {
        return beside;
    }
    let fixed = PathBuf::from("/work/shared/testdata/dockerfile-parser");
    assert!(
        fixed.is_dir(),
        "BuildKit's parser cases are missing: neither {} nor {} exists",
        beside.display(),
        fixed.display()
    );
    fixed
}

fn case_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no cases in {}", dir.display());
    dirs
}

/// Counts passes and keeps the failures' explanations.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
}

impl Tally {
    fn check(&mut self, ok: bool, why: impl FnOnce() -> String) {
        match ok {
            true => self.passed += 1,
            false => self.failed.push(why()),
        }
    }

    fn report(&self, what: &str) {
        eprintln!(
            "{what}: {} of {} pass",
            self.passed,
            self.passed + self.failed.len()
        );
        assert!(
            self.failed.is_empty(),
            "{what}: {} failed:\n{}",
            self.failed.len(),
            self.failed.join("\n\n")
        );
    }
}

#[test]
fn buildkit_parser_testfiles() {
    let mut tally = Tally::default();
    for dir in case_dirs(&data_dir().join("testfiles")) {
        let text = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let want = std::fs::read_to_string(dir.join("result")).unwrap();
        let got = match berth_build::parse(&text) {
            Ok(df) => {
                let lines: Vec<String> = df.instructions.iter().map(Instruction::dump).collect();
                lines.join("\n") + "\n"
            }
            Err(e) => format!("error: {e}\n"),
        };
        tally.check(got == want, || {
            format!("{}:\n--- want\n{want}--- got\n{got}", dir.display())
        });
    }
    tally.report("testfiles");
}

#[test]
fn buildkit_parser_negative_testfiles() {
    let mut tally = Tally::default();
    for dir in case_dirs(&data_dir().join("testfiles-negative")) {
        let text = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let got = berth_build::parse(&text);
        tally.check(got.is_err(), || {
            format!("{}: parsed, must fail: {got:?}", dir.display())
        });
    }
    tally.report("testfiles-negative");
}

#[test]
fn buildkit_env_var_cases() {
    let text = std::fs::read_to_string(data_dir().join("envVarTest")).unwrap();
    let env: Vec<String> = ["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]
        .map(String::from)
        .to_vec();
    let lx = Lexer::new('\\');
    let mut tally = Tally::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 3, "envVarTest line {}: {line:?}", n + 1);
        let (platform, source, want) = (parts[0].trim(), parts[1].trim(), parts[2].trim());
        match platform {
            "A" | "U" => {}
            "W" => continue,
            other => panic!("envVarTest line {}: platform {other:?}", n + 1),
        }
        let got = lx.process_word(source, &env);
        let ok = match (want, &got) {
            ("error", r) => r.is_err(),
            (w, Ok(g)) => g == w,
            (_, Err(_)) => false,
        };
        tally.check(ok, || {
            format!(
                "envVarTest line {}: {source:?}: want {want:?}, got {got:?}",
                n + 1
            )
        });
    }
    tally.report("envVarTest");
}

#[test]
fn buildkit_words_cases() {
    let text = std::fs::read_to_string(data_dir().join("wordsTest")).unwrap();
    let lx = Lexer::new('\\');
    let mut env: Vec<String> = Vec::new();
    let mut tally = Tally::default();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(kv) = line.strip_prefix("ENV ") {
            env.push(kv.trim_start_matches(' ').to_string());
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 2, "wordsTest line {}: {line:?}", n + 1);
        let source = parts[0].trim();
        let want: Vec<&str> = parts[1].trim_start_matches(' ').split(',').collect();
        let got = match lx.process_words(source, &env) {
            Ok(w) => w,
            Err(_) => vec!["error".to_string()],
        };
        tally.check(got == want, || {
            format!(
                "wordsTest line {}: {source:?}: want {want:?}, got {got:?}",
                n + 1
            )
        });
    }
    tally.report("wordsTest");
}
