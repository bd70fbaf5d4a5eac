//! Subcommands. Each file holds one subcommand's flags (clap derive; the doc comments are
//! the help text) and a `run` that turns them into library calls.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod common;
mod compile;
mod demo;
mod export;
mod inspect;
mod run;
mod sql;
mod synth;

/// magg aggregates satellite point observations (e.g. ICESat-2 ATL06 land-ice heights)
/// into HEALPix cells and writes them as a Zarr v3 store following the DGGS convention.
///
/// Start with `magg demo`, which runs the whole pipeline on synthetic data.
#[derive(Debug, Parser)]
#[command(name = "magg", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Aggregate granules into a HEALPix Zarr store, one chunk per catalog cell.
    Run(run::RunArgs),
    /// Run the whole pipeline on synthetic data (no credentials, no network).
    Demo(demo::DemoArgs),
    /// Run SQL over granules (or without a table), print or write the result.
    Sql(sql::SqlArgs),
    /// Export the filtered, cell-tagged points of parent cells as Parquet.
    Export(export::ExportArgs),
    /// Print the SQL a pipeline config compiles to.
    Compile(compile::CompileArgs),
    /// Write synthetic ATL06-like granules and a catalog of the cells they cross.
    Synth(synth::SynthArgs),
    /// Show the groups and datasets of an HDF5 granule, or the values of one dataset.
    Inspect(inspect::InspectArgs),
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
    }
}
