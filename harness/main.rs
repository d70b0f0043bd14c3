//! The `bench` binary: parse the command line, run, map the outcome to an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = bench::cli::Cli::parse();
    match bench::run(cli) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            bench::ExitCode::CouldNotRun.into()
        }
    }
}
