//! The `magg` command line: a thin front end over the `magg` library.
//!
//! `main` parses flags, calls one library entry point per subcommand, prints the error
//! chain once and exits with code 2 on failure (1 when a run finished but some cells
//! failed), like ripgrep does.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("magg: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`magg sql ... | head`) is not an error worth reporting.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            // Each cause once (our messages quote their cause), secrets redacted.
            eprintln!("magg: {}", magg::errors::message(err.as_ref()));
            ExitCode::from(2)
        }
    }
}
