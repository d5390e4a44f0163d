//! Every file in `tests/invalid-specs/` must be refused with exactly the errors its
//! `# expect: LINE:COL FIELD: TEXT [| HINT]` lines name, each at that file position.

use std::path::{Path, PathBuf};

use rafter::spec::{self, LoadError, SpecSources};

#[derive(Debug)]
struct Expected {
    line: u64,
    column: u64,
    field: String,
    text: String,
    hint: Option<String>,
}

fn parse_expectations(path: &Path) -> Vec<Expected> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("# expect: "))
        .map(|line| {
            let (position, rest) = line.split_once(' ').unwrap();
            let (line_number, column) = position.split_once(':').unwrap();
            let (field, message) = rest.split_once(": ").unwrap();
            let (text, hint) = match message.split_once(" | ") {
                Some((text, hint)) => (text, Some(hint.to_string())),
                None => (message, None),
            };
            Expected {
                line: line_number.parse().unwrap(),
                column: column.parse().unwrap(),
                field: field.to_string(),
                text: text.to_string(),
                hint,
            }
        })
        .collect()
}

/// (line, column, field, message, hint) of each error the loader reports.
fn actual_errors(path: &Path) -> Vec<(u64, u64, String, String, String)> {
    let sources = SpecSources {
        file: Some(path.to_path_buf()),
        ..SpecSources::default()
    };
    match spec::load(&sources, None) {
        Ok(_) => Vec::new(),
        Err(LoadError::Invalid(invalid)) => invalid
            .errors
            .iter()
            .map(|error| {
                let (line, column) = match &error.origin {
                    spec::source::Origin::File {
                        path: origin_path,
                        line,
                        column,
                    } => {
                        assert_eq!(
                            &**origin_path,
                            path.display().to_string(),
                            "error located in the wrong file"
                        );
                        (*line, *column)
                    }
                    other => panic!("error not located in the file: {other:?}"),
                };
                (
                    line,
                    column,
                    error.path.to_string(),
                    error.message.clone(),
                    error.hint.clone().unwrap_or_default(),
                )
            })
            .collect(),
        Err(LoadError::Syntax(syntax)) => {
            vec![(
                syntax.line,
                syntax.column,
                "(yaml)".to_string(),
                format!("not valid YAML: {}", syntax.message),
                String::new(),
            )]
        }
        Err(other) => panic!("{}: unexpected error kind: {other}", path.display()),
    }
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid-specs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_invalid_spec_is_refused_with_located_errors() {
    let files = fixtures();
    assert!(
        files.len() >= 20,
        "the issue asks for at least 20 invalid specs, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let expected = parse_expectations(file);
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` line",
            file.display()
        );
        let actual = actual_errors(file);
        if actual.len() != expected.len() {
            failures.push(format!(
                "{}: expected {} errors, got {actual:#?}",
                file.display(),
                expected.len()
            ));
            continue;
        }
        for want in &expected {
            let found = actual.iter().any(|(line, column, field, message, hint)| {
                *line == want.line
                    && *column == want.column
                    && *field == want.field
                    && message.contains(&want.text)
                    && want
                        .hint
                        .as_ref()
                        .is_none_or(|wanted| hint.contains(wanted))
            });
            if !found {
                failures.push(format!(
                    "{}: no error matches {want:?}; got {actual:#?}",
                    file.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn errors_never_echo_a_private_key() {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid-specs/24-private-key.yaml");
    let sources = SpecSources {
        file: Some(file),
        ..SpecSources::default()
    };
    let error = spec::load(&sources, None).unwrap_err().to_string();
    assert!(
        !error.contains("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"),
        "{error}"
    );
    assert!(error.contains("private key"), "{error}");
}
