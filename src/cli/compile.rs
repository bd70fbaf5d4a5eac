//! `magg compile`: print the SQL a pipeline config runs for a cell.

use std::process::ExitCode;

use magg::config::compile::ParentCell;
use magg::table::CellFilter;

/// Print the SQL query a pipeline config compiles to.
///
/// Every aggregation variable becomes one aggregate in a `GROUP BY cell` query; with
/// `--cell` the query is restricted to that parent cell, exactly as `magg run` executes it.
///
/// Examples:
///   magg compile configs/atl06.yaml
///   magg compile configs/atl06.yaml --cell -4211322
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct CompileArgs {
    /// Pipeline config YAML (or `atl06` for the built-in one).
    config: String,
    /// Restrict to this parent cell (decimal morton index, e.g. -4211322).
    #[arg(long, allow_hyphen_values = true)]
    cell: Option<i64>,
}

pub(crate) async fn run(args: CompileArgs) -> anyhow::Result<ExitCode> {
    let config = super::common::load_config(Some(&args.config)).await?;
    let compiled = config.compile()?;
    let parent = match args.cell {
        None => None,
        Some(m) => {
            let f = CellFilter::from_morton(m, config.latitude_mode()?)
                .map_err(|e| anyhow::anyhow!("--cell {m}: {e}"))?;
            Some(ParentCell { order: f.parent_order, nested: f.parent })
        }
    };
    println!("{};", compiled.cell_sql(parent));
    Ok(ExitCode::SUCCESS)
}
