//! The `rafter` command: parses arguments, runs one command, reports errors.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
