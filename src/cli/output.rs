//! Writing to the terminal: data to stdout, everything else to stderr.

use std::io::IsTerminal;

use rafter::plan::text::Color;
use rafter::spec::{Diagnostic, InvalidSpec, LoadError};

use super::failure::{EXIT_FAILURE, EXIT_INVALID_SPEC, Failure};

/// Colors only for a terminal, and never when `NO_COLOR` is set (no-color.org).
pub fn stdout_color() -> Color {
    let disabled = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    if !disabled && std::io::stdout().is_terminal() {
        Color::Always
    } else {
        Color::Never
    }
}

pub fn print_warnings(warnings: &[Diagnostic]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

/// Prints `error: …`, each cause on its own line, and a hint; returns the exit code.
pub fn report_error(error: &anyhow::Error) -> u8 {
    eprintln!("error: {error}");
    let mut exit_code = EXIT_FAILURE;
    let mut hint = None;
    for cause in error.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            exit_code = failure.exit_code;
            hint = failure.hint.clone();
        }
        if cause.downcast_ref::<InvalidSpec>().is_some()
            || cause
                .downcast_ref::<rafter::spec::source::YamlSyntaxError>()
                .is_some()
            || matches!(
                cause.downcast_ref::<LoadError>(),
                Some(LoadError::Invalid(_) | LoadError::Syntax(_) | LoadError::EmptyFile { .. })
            )
        {
            exit_code = EXIT_INVALID_SPEC;
        }
        // Nothing to build a spec from is a usage error, like a missing argument.
        if matches!(
            cause.downcast_ref::<LoadError>(),
            Some(LoadError::NothingGiven)
        ) {
            exit_code = super::failure::EXIT_USAGE;
        }
    }
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
    exit_code
}

/// Prints a plan to stdout in the chosen format.
pub fn print_plan(plan: &rafter::plan::Plan, format: super::args::PlanFormat) {
    match format {
        super::args::PlanFormat::Text => {
            print!("{}", rafter::plan::text::render(plan, stdout_color()))
        }
        super::args::PlanFormat::Json => {
            println!("{:#}", rafter::plan::json::render(plan));
        }
    }
}

/// Rows as aligned columns (two spaces apart, no trailing blanks), one line each.
pub fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A journalled operation's steps, numbered, those the unfinished journal records as done
/// marked `(done)`: `steps` as (key, description).
pub fn print_journalled_steps(
    operation: &str,
    steps: impl IntoIterator<Item = (String, String)>,
    unfinished: Option<&rafter::state::journal::Journal>,
) {
    if let Some(journal) = unfinished {
        println!(
            "Continuing the {operation} started {} (its steps marked done are not repeated).",
            journal.started_at
        );
    }
    for (index, (key, description)) in steps.into_iter().enumerate() {
        let done = unfinished.is_some_and(|journal| journal.is_done(&key));
        println!(
            "  {:>2}. {description}{}",
            index + 1,
            if done { "  (done)" } else { "" }
        );
    }
}
