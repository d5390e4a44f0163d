//! `rafter completion SHELL`: the shell completion script, generated from the same clap
//! definitions the parser uses, so it always knows every command and flag.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::args::{Cli, CompletionArgs};

pub fn run(args: &CompletionArgs) -> anyhow::Result<()> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "rafter", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(())
}
