//! Subcommands. Each file holds one subcommand's flags (clap derive; the doc comments are
//! the help text) and a `run` that turns them into library calls.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod common;
mod compile;
mod demo;
mod export;
mod index;
mod inspect;
mod run;
mod sql;
mod synth;

/// magg aggregates satellite point observations (e.g. ICESat-2 ATL06 land-ice heights)
/// into HEALPix cells and writes them as a Zarr v3 store following the DGGS convention.
///
/// Start with `magg demo`, which runs the whole pipeline on synthetic data.
#[derive(Debug, Parser)]
#[command(
    name = "magg",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Start with `magg demo`: the whole pipeline on synthetic data, no credentials, no network.\nEvery subcommand has --help with examples."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
// No doc comments on the variants: clap then takes each subcommand's about and long
// help (with its examples) from the doc comment of its Args struct.
enum Command {
    Run(run::RunArgs),
    Demo(demo::DemoArgs),
    Sql(sql::SqlArgs),
    Export(export::ExportArgs),
    Compile(compile::CompileArgs),
    Synth(synth::SynthArgs),
    Inspect(inspect::InspectArgs),
    Index(index::IndexArgs),
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Sql(args) => sql::run(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Compile(args) => compile::run(args).await,
        Command::Synth(args) => synth::run(args).await,
        Command::Inspect(args) => inspect::run(args).await,
        Command::Index(args) => index::run(args).await,
    }
}
