//! Subcommands. Each file holds one subcommand's flags (clap derive; the doc comments are
//! the help text) and a `run` that turns them into library calls.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod inspect;
mod synth;

/// magg aggregates satellite point observations (e.g. ICESat-2 ATL06 land-ice heights)
/// into HEALPix cells and writes them as a Zarr v3 store following the DGGS convention.
#[derive(Debug, Parser)]
#[command(name = "magg", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write synthetic ATL06-like granules and a catalog of the cells they cross.
    Synth(synth::SynthArgs),
    /// Show the groups and datasets of an HDF5 granule, or the values of one dataset.
    Inspect(inspect::InspectArgs),
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Synth(args) => synth::run(args).await,
        Command::Inspect(args) => inspect::run(args).await,
    }
}
