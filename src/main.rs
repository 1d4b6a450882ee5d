//! The `plugen` binary: parse the command line, run it, print any error on one line.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = plugen::cli::Cli::parse();
    match plugen::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plugen: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
