//! `magg run`: aggregate every cell of a catalog into a Zarr store.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use magg::run::{IndexLocation, RunConfig, RunEvent, RunInputs, RunSummary};
use magg::store::StoreOptions;

/// Aggregate granules into a HEALPix Zarr store, one chunk per catalog cell.
///
/// Reads the pipeline config (what to read, how to aggregate) and a granule catalog
/// (which granules touch which parent cell), runs the config's GROUP BY query for every
/// cell on all cores, and writes each cell's chunk. A cell whose granules cannot be read
/// is reported and written nowhere; the other cells finish, and the exit code is 1.
///
/// The store records what defines it (config, grid, catalog). `--resume` continues a
/// store of the same definition and refuses another, naming the difference.
/// `--overwrite` on a store of the same definition replaces only the chunks of the cells
/// being run (so `--morton-cell X --overwrite` redoes one cell and keeps the others); on
/// a store of another definition it replaces the whole store, and says so first.
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
    /// Pipeline config YAML (path or s3:// URL), or `atl06` for the built-in ATL06 config.
    #[arg(long, default_value = "atl06")]
    config: String,
    /// Granule catalog JSON (parent morton cell -> granule URLs): a path or s3:// URL.
    #[arg(long)]
    catalog: String,
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
    /// Replace the chunks of the cells being run (the whole store if it was written by
    /// another definition).
    #[arg(long)]
    overwrite: bool,
    /// Keep an existing store of the same definition and skip cells whose chunks are complete.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Print the cells, granules per cell and the store; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write a store beyond the size limits (256 MB per cell, 100 GB per run).
    #[arg(long)]
    yes: bool,
    /// Write a JSON report (one entry per cell: granules, rows, seconds, absent beams, error).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Coordinate index file to read and update. Default: CATALOG's name with
    /// `.index.json` (catalog.json -> catalog.index.json).
    #[arg(long, conflicts_with = "no_index")]
    index: Option<PathBuf>,
    /// Neither read nor write a coordinate index file.
    #[arg(long)]
    no_index: bool,
    /// Seconds to wait for a connection to S3/HTTPS before giving up.
    #[arg(long, default_value_t = 5.0)]
    connect_timeout: f64,
    /// Seconds one S3/HTTPS request may take (retries of failed requests stop after as long).
    #[arg(long, default_value_t = 30.0)]
    request_timeout: f64,
    /// Stop when this many cells in a row fail the same way (unreachable endpoint,
    /// rejected credentials, time-outs); 0 never stops.
    #[arg(long, default_value_t = magg::run::DEFAULT_MAX_CONSECUTIVE_FAILURES)]
    max_consecutive_failures: usize,
}

pub(crate) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let timeouts = super::common::timeouts(args.connect_timeout, args.request_timeout)?;
    let store_opts = StoreOptions { timeouts: Some(timeouts), ..StoreOptions::default() };
    let inputs = RunInputs {
        config: Some(args.config.clone()),
        catalog: args.catalog.clone(),
        morton_cells: args.morton_cell.clone(),
        max_cells: args.max_cells,
        store: args.store.clone(),
        workers: args.max_workers,
        index: match (&args.index, args.no_index) {
            (_, true) => IndexLocation::Off,
            (Some(p), false) => IndexLocation::At(p.clone()),
            (None, false) => IndexLocation::NextToCatalog,
        },
        overwrite: args.overwrite,
        resume: args.resume,
        yes: args.yes,
        dry_run: args.dry_run,
        read_store: store_opts.clone(),
        write_store: store_opts,
    };
    let resolved = inputs.resolve().await?;
    for w in &resolved.warnings {
        eprintln!("magg: warning: {w}");
    }
    let mut config = resolved.config;
    config.max_consecutive_failures = args.max_consecutive_failures;
    if args.dry_run {
        let catalog = &resolved.catalog;
        let cells = &config.cells;
        let counts: Vec<usize> = cells.iter().map(|c| c.granules.len()).collect();
        let total: usize = counts.iter().sum();
        println!("config:  {} ({})", config.pipeline.file.display(), config.pipeline.name);
        println!("catalog: {} ({} cells at order {})", args.catalog, catalog.catalog.len(), catalog.metadata.parent_order);
        println!("store:   {}", if config.store_url.is_empty() { "(none given; needed to run)" } else { &config.store_url });
        println!("cells to process: {}", cells.len());
        if !counts.is_empty() {
            println!(
                "granules per cell: min {}, max {}, avg {:.1}",
                counts.iter().min().unwrap_or(&0),
                counts.iter().max().unwrap_or(&0),
                total as f64 / counts.len() as f64
            );
        }
        for c in cells {
            println!("  chunk {:>5}  cell {:>12}  {} granules", c.chunk_idx, c.morton, c.granules.len());
        }
        return Ok(ExitCode::SUCCESS);
    }
    // A report that cannot be written is found out now, not after hours of cells.
    if let Some(path) = &args.report {
        check_writable(path)?;
    }
    let summary = execute(&config).await?;
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing report {}", path.display()))?;
    }
    if let Some(why) = &summary.stopped {
        eprintln!("magg: {why}");
        return Ok(ExitCode::from(2));
    }
    Ok(if summary.failed() > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Fail now if `path` cannot be created or written; leaves no file behind that was not
/// there before.
fn check_writable(path: &std::path::Path) -> anyhow::Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("--report {}: cannot write the report there", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Run with a progress bar and print the summary; shared with `magg demo`.
pub(crate) async fn execute(config: &RunConfig) -> anyhow::Result<RunSummary> {
    let bar = super::common::progress(
        config.cells.len() as u64,
        "{elapsed_precise} [{bar:30}] {pos}/{len} cells  {msg}  ETA {eta}",
    );
    let start = std::time::Instant::now();
    let mut rows = 0u64;
    let summary = magg::run::run(config, |event: RunEvent<'_>| match event {
        RunEvent::Replacing { url, differences } => bar.suspend(|| {
            eprintln!("magg: replacing the whole store {url}: it was written by another definition:");
            for d in differences {
                eprintln!("  {d}");
            }
        }),
        RunEvent::Plan { cells, chunk_len, bytes } => bar.suspend(|| {
            println!(
                "writing {cells} cells x {chunk_len} child cells: at most {} uncompressed to {}",
                magg::run::human_bytes(bytes),
                config.store_url
            );
        }),
        RunEvent::Warning(w) => bar.suspend(|| eprintln!("magg: warning: {w}")),
        RunEvent::Cell(r) => {
            rows += r.rows_read;
            let rate = rows as f64 / start.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!("{:.2} M rows/s", rate / 1e6));
            bar.inc(1);
            if let Some(e) = &r.error {
                bar.suspend(|| eprintln!("magg: {e}"));
            }
        }
        _ => {}
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
        "{} cells written, {} skipped (complete), {} failed{} in {:.2} s",
        done,
        skipped,
        s.failed(),
        if s.cells_not_run > 0 { format!(", {} not run", s.cells_not_run) } else { String::new() },
        s.duration_s
    );
    println!(
        "{} observations aggregated into {} child cells; {} rows examined ({:.2} M rows/s)",
        s.total_obs(),
        with_data,
        rows,
        rows as f64 / s.duration_s.max(1e-9) / 1e6
    );
    let absent = s.absent_beams();
    if !absent.is_empty() {
        let granules: std::collections::BTreeSet<&str> = absent.iter().map(|a| a.granule.as_str()).collect();
        let damaged = absent.iter().filter(|a| a.missing != "group").count();
        println!(
            "{} beams absent in {} granules ({} with the group present but its coordinates missing); see --report",
            absent.len(),
            granules.len(),
            damaged
        );
    }
    println!("store: {}", s.store);
}
