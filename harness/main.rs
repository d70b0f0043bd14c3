//! The `bench` binary: parse the command line, run, map the outcome to an exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Before anything else, so that no signal is lost to an inherited disposition (see
    // `bench::signals`). Workers keep the defaults: they die with their parent.
    let worker = matches!(
        std::env::args_os()
            .nth(1)
            .as_deref()
            .and_then(|a| a.to_str()),
        Some("worker" | "echo")
    );
    if !worker {
        bench::signals::install();
        bench::signals::quiet_on_closed_stdout();
    }
    let cli = bench::commands::cli::Cli::parse();
    match bench::run(cli) {
        Ok(code) => code.into(),
        // `bench inspect a.onnx | head -1`: the reader had what it wanted.
        Err(e) if bench::signals::closed_stdout_error(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            bench::ExitCode::CouldNotRun.into()
        }
    }
}
