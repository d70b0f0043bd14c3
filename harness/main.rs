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
        bench::signals::ignore_file_size_signal();
    }
    let cli = bench::commands::cli::Cli::parse();
    match bench::run(cli) {
        Ok(code) => code.into(),
        // `bench inspect a.onnx | head -1`: the reader had what it wanted.
        Err(e) if bench::signals::closed_stdout_error(&e) => std::process::ExitCode::SUCCESS,
        Err(e) if bench::signals::file_too_large(&e) => {
            eprintln!(
                "error: {e:#}\n  fix: a file reached the file size limit (`ulimit -f` is {}); \
                 raise it, or write the results where there is room",
                bench::signals::file_size_limit()
            );
            bench::ExitCode::CouldNotRun.into()
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            bench::ExitCode::CouldNotRun.into()
        }
    }
}
