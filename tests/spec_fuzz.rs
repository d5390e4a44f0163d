//! A bounded fuzz run of everything a spec file goes through: YAML parsing, decoding,
//! completion and validation, and for what passes, the graph, the plan (text and JSON) and
//! the Terraform module. None of it may panic, whatever the input.
//!
//! The seeds are the three profiles completed into full specs (what `get cluster -o yaml`
//! prints), every file in `tests/invalid-specs/`, and the corpus in `tests/fuzz-corpus/`.
//! Each case applies one to four structure-aware mutations to a seed (byte flips, lines
//! deleted, duplicated, swapped or cut, scalars replaced from a dictionary of YAML and
//! rafter edge cases: anchors, merge keys, nesting, huge and signed numbers, YAML 1.1
//! booleans, bad CIDRs). The sequence is seeded, so a run is reproducible; a case that panics
//! is written to `target/fuzz-failures/` and the test fails naming it (add it to the corpus
//! once fixed). `RAFTER_FUZZ_CASES` sets the number of cases (default 10000, about ten
//! seconds in a debug build); `RAFTER_FUZZ_SEED` another sequence.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use rafter::model::build_graph;
use rafter::plan;
use rafter::spec::{self, SpecSources};

/// splitmix64: small, fast and good enough to pick mutations.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            (self.next() % bound as u64) as usize
        }
    }
}

const DICTIONARY: &[&str] = &[
    "---",
    "...",
    "&a",
    "*a",
    "<<: *a",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "? ",
    "~",
    "null",
    "no",
    "yes",
    "on",
    "true",
    "0x1F",
    "0o17",
    "0777",
    "-1",
    "-0",
    "1e400",
    ".nan",
    "-.inf",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999999",
    "3",
    "7",
    "0",
    "\"\\u0000\"",
    "'",
    "\"",
    "!!binary aGVsbG8=",
    "!!str",
    "!custom",
    "|",
    ">-",
    "\t",
    "é☃",
    "0.0.0.0/0",
    "10.0.0.0/33",
    "::/0",
    "999.1.1.1/8",
    "10.0.0.0/8",
    "eu-west-1a",
    "us-gov-west-1a",
    "cn-north-1a",
    "v1.99.0",
    "1.34.2",
    "ssh",
    "aws",
    "controlPlane",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "{a: {a: {a: {a: {a: {a: {a: {a: {a: {a:",
    "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.example.com",
];

fn mutate(seed: &str, random: &mut Random) -> String {
    let mut text = seed.to_string();
    // Mostly one mutation, so many cases stay close enough to valid to reach the planner.
    let mutations = if random.below(4) == 0 {
        1 + random.below(4)
    } else {
        1
    };
    for _ in 0..mutations {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        let line = random.below(lines.len());
        let token = DICTIONARY[random.below(DICTIONARY.len())];
        match random.below(8) {
            0 => {
                let mut bytes = text.into_bytes();
                if !bytes.is_empty() {
                    let at = random.below(bytes.len());
                    bytes[at] = b' ' + random.below(95) as u8;
                }
                text = String::from_utf8_lossy(&bytes).into_owned();
                continue;
            }
            1 => {
                lines.remove(line);
            }
            2 => {
                let copy = lines[line].clone();
                lines.insert(line, copy);
            }
            3 => {
                let other = random.below(lines.len());
                lines.swap(line, other);
            }
            4 => {
                let at = random.below(lines[line].len() + 1);
                if lines[line].is_char_boundary(at) {
                    lines[line].insert_str(at, token);
                }
            }
            5 => {
                // A mapping's value replaced: `key: value` → `key: TOKEN`.
                if let Some((key, _)) = lines[line].split_once(": ") {
                    lines[line] = format!("{key}: {token}");
                }
            }
            6 => lines.truncate(line),
            _ => {
                let indent = " ".repeat(random.below(8));
                lines.insert(line, format!("{indent}{token}"));
            }
        }
        text = lines.join("\n");
        text.push('\n');
    }
    text
}

/// How far a case got: every stage must be reached by some cases, or the mutations are
/// too blunt (or too gentle) to test anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    NotYaml,
    Invalid,
    NoGraph,
    Planned,
}

/// Everything a spec text goes through. Errors are fine; panics are not.
fn exercise(text: &str) -> Stage {
    let Ok(document) = spec::load::parse_stored(text, "fuzz.yaml") else {
        return Stage::NotYaml;
    };
    let Ok(prepared) = spec::prepare(&document, Some("s3://fuzz-state/clusters/fuzz")) else {
        return Stage::Invalid;
    };
    let cluster = &prepared.cluster;
    let _ = spec::to_yaml(cluster);
    let Ok(graph) = build_graph(cluster) else {
        return Stage::NoGraph;
    };
    if let Ok(plan) = plan::diff(&cluster.metadata.name, &graph, &[]) {
        let _ = plan::text::render(&plan, plan::text::Color::Never);
        let _ = plan::json::render(&plan);
    }
    let _ = rafter::terraform::render_module(cluster, &graph, &[]);
    Stage::Planned
}

fn seeds() -> Vec<(String, String)> {
    let mut seeds = Vec::new();
    for profile in common::ALL_PROFILES {
        let sources: SpecSources = common::example_sources(profile);
        let cluster = spec::load(&sources, None).unwrap().cluster;
        seeds.push((
            format!("profile {profile}"),
            spec::to_yaml(&cluster).unwrap(),
        ));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for directory in ["tests/invalid-specs", "tests/fuzz-corpus"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(directory))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "yaml")
            })
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            seeds.push((file.display().to_string(), text));
        }
    }
    seeds
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[test]
fn no_spec_text_makes_rafter_panic() {
    let seeds = seeds();
    assert!(seeds.len() >= 30, "{} seeds", seeds.len());
    // Every seed as it is first: the corpus itself must pass.
    for (name, text) in &seeds {
        let outcome = catch_unwind(AssertUnwindSafe(|| exercise(text)));
        assert!(outcome.is_ok(), "seed {name} panics");
    }
    let cases = setting("RAFTER_FUZZ_CASES", 10_000);
    let mut random = Random(setting("RAFTER_FUZZ_SEED", 0x5eed_f022));
    let failures = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let mut panicked = Vec::new();
    let mut reached = std::collections::BTreeMap::<Stage, u64>::new();
    for case in 0..cases {
        // Half the cases start from a complete, valid spec (the profiles come first).
        let pick = if random.below(2) == 0 {
            random.below(common::ALL_PROFILES.len())
        } else {
            random.below(seeds.len())
        };
        let (name, seed) = &seeds[pick];
        let text = mutate(seed, &mut random);
        match catch_unwind(AssertUnwindSafe(|| exercise(&text))) {
            Ok(stage) => *reached.entry(stage).or_default() += 1,
            Err(_) => {
                std::fs::create_dir_all(&failures).unwrap();
                let path = failures.join(format!("case-{case}.yaml"));
                std::fs::write(&path, &text).unwrap();
                panicked.push(format!("{} (from {name})", path.display()));
            }
        }
    }
    eprintln!("{cases} cases, by the stage they reached: {reached:?}");
    assert!(
        panicked.is_empty(),
        "{} of {cases} cases panicked: {panicked:#?}",
        panicked.len()
    );
    for stage in [Stage::NotYaml, Stage::Invalid, Stage::Planned] {
        assert!(
            reached.get(&stage).copied().unwrap_or(0) * 20 >= cases,
            "fewer than one case in twenty reached {stage:?}: {reached:?}"
        );
    }
}
