//! `magg index`: build the coordinate index of a catalog.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use magg::h5::ReadOptions;
use magg::table::index::{self, GranuleIndexed};
use magg::table::{CoordinateIndex, GranuleTableOptions, IndexSpec};

/// Record which parent cells each latitude/longitude chunk of every beam reaches.
///
/// Reads the coordinates of every granule of the catalog once and writes, per beam and
/// chunk of rows, the parent cells its points fall in (hashed exactly as `magg run`
/// hashes them, so results do not change). `magg run` then decodes, for each cell, only
/// the chunks that reach it: a 10,000-row chunk spans about 200 km of track, so most
/// chunks of a granule are far from any one cell. Build it once per catalog; runs also
/// add the beams they read whole. An entry whose granule changed size or row count is
/// ignored. Granules already indexed are skipped, so an interrupted build continues.
///
/// Examples:
///   magg index --catalog catalog.json
///   magg index --catalog catalog.json --config configs/atl06.yaml --max-workers 8
///   magg index --catalog catalog.json --out /data/catalog.index.json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct IndexArgs {
    /// Granule catalog JSON.
    #[arg(long)]
    catalog: PathBuf,
    /// Pipeline config YAML (its groups, coordinates and latitude mode), or `atl06`.
    #[arg(long, default_value = "atl06")]
    config: String,
    /// Index file. Default: CATALOG's name with `.index.json`, where `magg run` looks.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Granules read at once. Default: number of cores.
    #[arg(long)]
    max_workers: Option<usize>,
}

pub(crate) async fn run(args: IndexArgs) -> anyhow::Result<ExitCode> {
    let pipeline = super::common::load_config(Some(&args.config)).await?;
    let catalog = super::common::load_catalog(&args.catalog).await?;
    let out = args.out.clone().unwrap_or_else(|| index::default_path(&args.catalog));
    let spec = IndexSpec::for_job(catalog.metadata.parent_order, pipeline.latitude_mode()?);
    let existing = if out.exists() {
        let path = out.clone();
        tokio::task::spawn_blocking(move || CoordinateIndex::load(&path)).await??
    } else {
        CoordinateIndex::new()
    };
    let index = Arc::new(existing);
    let workers = args.max_workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut options = GranuleTableOptions::new(pipeline.source()?);
    options.read = ReadOptions::default().with_decode_threads(workers);
    let granules = catalog.granules();

    let bar = super::common::progress(granules.len() as u64, "{elapsed_precise} [{bar:30}] {pos}/{len} granules  {msg}  ETA {eta}");
    let start = std::time::Instant::now();
    let mut rows = 0u64;
    let report = index::build(&options, &granules, spec, &index, workers, |g: &GranuleIndexed| {
        rows += g.rows;
        bar.set_message(format!("{:.1} M rows/s", rows as f64 / start.elapsed().as_secs_f64().max(1e-9) / 1e6));
        bar.inc(1);
        if let Some(e) = &g.error {
            bar.suspend(|| eprintln!("magg: {e}"));
        }
    })
    .await;
    bar.finish_and_clear();

    let failed = report.iter().filter(|g| g.error.is_some()).count();
    let beams: usize = report.iter().map(|g| g.beams).sum();
    let known: usize = report.iter().map(|g| g.known).sum();
    let (index_ref, path) = (Arc::clone(&index), out.clone());
    let written = tokio::task::spawn_blocking(move || index_ref.save(&path, &spec))
        .await?
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "indexed {beams} beams ({known} already indexed) of {} granules, {rows} coordinate rows, in {:.2} s",
        granules.len() - failed,
        start.elapsed().as_secs_f64()
    );
    println!("index: {} ({written} beams, cells at order {}, hashed at order {})", out.display(), spec.order, spec.hash_order);
    if failed > 0 {
        println!("{failed} granules could not be read (listed above) and are not indexed: their cells read them whole");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
