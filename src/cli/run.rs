//! `magg run`: aggregate every cell of a catalog into a Zarr store.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use magg::h5::ReadOptions;
use magg::run::{CellReport, RunConfig, RunSummary};
use magg::store::StoreOptions;

/// Aggregate granules into a HEALPix Zarr store, one chunk per catalog cell.
///
/// Reads the pipeline config (what to read, how to aggregate) and a granule catalog
/// (which granules touch which parent cell), runs the config's GROUP BY query for every
/// cell on all cores, and writes each cell's chunk. A cell whose granules cannot be read
/// is reported and written nowhere; the other cells finish, and the exit code is 1.
///
/// A coordinate index next to the catalog (`catalog.index.json`, see `magg index`) lets
/// each cell decode only the latitude/longitude chunks that reach it. The run reads it
/// when it exists and writes back the beams it had to read whole, so the next run of the
/// same catalog starts with them. Results are identical with or without it.
///
/// Examples:
///   magg run --config configs/atl06.yaml --catalog catalog.json --store out.zarr
///   magg run --catalog catalog.json --store s3://bucket/out.zarr --max-cells 5
///   magg run --catalog catalog.json --store out.zarr --morton-cell -4211322 --overwrite
///   magg run --catalog catalog.json --store out.zarr --resume --report report.json
///   magg run --catalog catalog.json --dry-run
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct RunArgs {
    /// Pipeline config YAML, or `atl06` for the built-in ATL06 config.
    #[arg(long, default_value = "atl06")]
    config: String,
    /// Granule catalog JSON (parent morton cell -> granule URLs).
    #[arg(long)]
    catalog: PathBuf,
    /// Output store: a local path or s3://bucket/prefix. Default: output.store of the config.
    #[arg(long)]
    store: Option<String>,
    /// Process only the first N cells of the catalog.
    #[arg(long)]
    max_cells: Option<usize>,
    /// Process only this parent cell (decimal morton); repeatable.
    #[arg(long, allow_hyphen_values = true)]
    morton_cell: Vec<i64>,
    /// Cores to use (cells at once and partitions per cell). Default: all cores.
    #[arg(long)]
    max_workers: Option<usize>,
    /// Replace an existing store.
    #[arg(long)]
    overwrite: bool,
    /// Keep an existing store and skip cells whose chunks are complete.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Print the cells, granules per cell and the store; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write a JSON report (one entry per cell: granules, rows, seconds, error).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Coordinate index file to read and update. Default: CATALOG's name with
    /// `.index.json` (catalog.json -> catalog.index.json).
    #[arg(long, conflicts_with = "no_index")]
    index: Option<PathBuf>,
    /// Neither read nor write a coordinate index file.
    #[arg(long)]
    no_index: bool,
}

pub(crate) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let pipeline = super::common::load_config(Some(&args.config))?;
    let catalog = super::common::load_catalog(&args.catalog)?;
    let cells = super::common::select_cells(&catalog, &args.morton_cell, args.max_cells)?;
    let store_url = args
        .store
        .clone()
        .or_else(|| pipeline.output.store.clone())
        .context("no output store: give --store or set output.store in the config")?;
    if args.dry_run {
        let counts: Vec<usize> = cells.iter().map(|c| c.granules.len()).collect();
        let total: usize = counts.iter().sum();
        println!("config:  {} ({})", pipeline.file.display(), pipeline.name);
        println!("catalog: {} ({} cells at order {})", args.catalog.display(), catalog.catalog.len(), catalog.metadata.parent_order);
        println!("store:   {store_url}");
        println!("cells to process: {}", cells.len());
        if !counts.is_empty() {
            println!(
                "granules per cell: min {}, max {}, avg {:.1}",
                counts.iter().min().unwrap_or(&0),
                counts.iter().max().unwrap_or(&0),
                total as f64 / counts.len() as f64
            );
        }
        for c in &cells {
            println!("  chunk {:>5}  cell {:>12}  {} granules", c.chunk_idx, c.morton, c.granules.len());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let workers = args.max_workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let config = RunConfig {
        pipeline,
        parent_order: catalog.metadata.parent_order,
        catalog_parents: catalog.cells().iter().map(|c| c.morton).collect(),
        cells,
        store_url,
        store: StoreOptions::default(),
        // --max-workers bounds the decode threads too, so 1 worker means one core.
        read: ReadOptions::default().with_decode_threads(workers),
        workers,
        overwrite: args.overwrite,
        resume: args.resume,
        index: (!args.no_index).then(|| args.index.clone().unwrap_or_else(|| magg::table::index::default_path(&args.catalog))),
    };
    let summary = execute(&config).await?;
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing report {}", path.display()))?;
    }
    Ok(if summary.failed() > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Run with a progress bar and print the summary; shared with `magg demo`.
pub(crate) async fn execute(config: &RunConfig) -> anyhow::Result<RunSummary> {
    let bar = super::common::progress(
        config.cells.len() as u64,
        "{elapsed_precise} [{bar:30}] {pos}/{len} cells  {msg}  ETA {eta}",
    );
    let start = std::time::Instant::now();
    let mut rows = 0u64;
    let summary = magg::run::run(config, |r: &CellReport| {
        rows += r.rows_read;
        let rate = rows as f64 / start.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("{:.2} M rows/s", rate / 1e6));
        bar.inc(1);
        if let Some(e) = &r.error {
            bar.suspend(|| eprintln!("magg: {e}"));
        }
    })
    .await?;
    bar.finish_and_clear();
    print_summary(&summary);
    if let (Some(path), true) = (&config.index, summary.index_beams_learned > 0) {
        println!(
            "coordinate index: {} beams listed, {} learned, written to {}",
            summary.index_beams_loaded,
            summary.index_beams_learned,
            path.display()
        );
    }
    Ok(summary)
}

fn print_summary(s: &RunSummary) {
    let done = s.cells.iter().filter(|c| c.error.is_none() && !c.skipped).count();
    let skipped = s.cells.iter().filter(|c| c.skipped).count();
    let with_data: u64 = s.cells.iter().map(|c| c.cells_with_data).sum();
    let rows: u64 = s.cells.iter().map(|c| c.rows_read).sum();
    println!(
        "{} cells written, {} skipped (complete), {} failed in {:.2} s",
        done,
        skipped,
        s.failed(),
        s.duration_s
    );
    println!(
        "{} observations aggregated into {} child cells; {} rows examined ({:.2} M rows/s)",
        s.total_obs(),
        with_data,
        rows,
        rows as f64 / s.duration_s.max(1e-9) / 1e6
    );
    println!("store: {}", s.store);
}
