//! `rafter man --out DIR`: rafter's manual pages, generated from the clap definitions:
//! `rafter.1`, and `rafter-VERB.1` and `rafter-VERB-NOUN.1` for every command, as git and
//! cargo name theirs (`man rafter-create-cluster`).

use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory;

use crate::cli::args::{Cli, ManArgs};

pub fn run(args: &ManArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot make {}", args.out.display()))?;
    let mut written = Vec::new();
    write_pages(&Cli::command(), "rafter", &args.out, &mut written)?;
    println!(
        "Wrote {} manual pages to {} (`man -l {}/rafter.1`).",
        written.len(),
        args.out.display(),
        args.out.display()
    );
    Ok(())
}

/// The page of `command` (called `name`) and, under it, one for each subcommand.
fn write_pages(
    command: &clap::Command,
    name: &str,
    out: &Path,
    written: &mut Vec<String>,
) -> anyhow::Result<()> {
    let command = command.clone().name(name.to_string());
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .with_context(|| format!("cannot render the page of {name}"))?;
    let file = out.join(format!("{name}.1"));
    std::fs::write(&file, page).with_context(|| format!("cannot write {}", file.display()))?;
    written.push(name.to_string());
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, &format!("{name}-{}", sub.get_name()), out, written)?;
    }
    Ok(())
}
