//! `magg demo`: the whole pipeline on synthetic data, no credentials, no network.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use magg::config::PipelineConfig;
use magg::h5::ReadOptions;
use magg::run::{CellJob, RunConfig};
use magg::store::StoreOptions;
use magg::synth::{SynthOptions, generate};

/// Run the main job end to end on synthetic data: no credentials, no network.
///
/// Writes synthetic ATL06 granules over West Antarctica, builds the catalog of the
/// order-6 cells they cross, aggregates them with the built-in atl06 config into an
/// order-12 Zarr store, and prints where everything is and a short table of results.
///
/// Examples:
///   magg demo
///   magg demo --out /tmp/magg-demo --granules 20 --seed 7
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct DemoArgs {
    /// Working directory for granules, catalog and store.
    #[arg(long, default_value = "magg-demo")]
    out: PathBuf,
    /// Number of synthetic granules.
    #[arg(long, default_value_t = 6)]
    granules: usize,
    /// Segments per beam in each granule.
    #[arg(long, default_value_t = 20_000)]
    rows_per_beam: usize,
    /// Random seed (same seed, same granules).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Cores to use. Default: all cores.
    #[arg(long)]
    max_workers: Option<usize>,
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let granule_dir = args.out.join("granules");
    std::fs::create_dir_all(&granule_dir).with_context(|| format!("creating {}", granule_dir.display()))?;
    let opts = SynthOptions {
        out_dir: granule_dir.clone(),
        granules: args.granules,
        seed: args.seed,
        rows_per_beam: args.rows_per_beam,
        ..SynthOptions::default()
    };
    println!("1/3 writing {} synthetic ATL06 granules to {}", args.granules, granule_dir.display());
    let synth = tokio::task::spawn_blocking(move || generate(&opts)).await??;
    let catalog = synth.catalog.clone();
    println!(
        "    {} rows; catalog {} lists {} cells at order {}",
        synth.rows_written,
        synth.catalog_path.display(),
        catalog.catalog.len(),
        catalog.metadata.parent_order
    );

    let pipeline = PipelineConfig::atl06();
    let store_url = std::path::absolute(args.out.join("demo.zarr"))?.to_string_lossy().into_owned();
    let workers = args.max_workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut config = RunConfig::new(pipeline.clone(), &catalog, store_url.clone());
    config.workers = workers;
    config.read = ReadOptions::default().with_decode_threads(workers);
    // The demo's own store: running the demo again replaces it.
    config.overwrite = true;
    println!("2/3 aggregating with the built-in atl06 config (child order {})", pipeline.output.grid.child_order);
    let summary = super::run::execute(&config).await?;

    println!("3/3 results");
    let mut cells = summary.cells.clone();
    cells.sort_by_key(|c| std::cmp::Reverse(c.total_obs));
    println!("    {:>12} {:>6} {:>9} {:>10} {:>8}", "parent cell", "chunk", "granules", "obs", "children");
    for c in cells.iter().take(5) {
        println!(
            "    {:>12} {:>6} {:>9} {:>10} {:>8}",
            c.parent_morton, c.chunk_idx, c.granule_count, c.total_obs, c.cells_with_data
        );
    }
    if let Some(top) = cells.first() {
        let cell = catalog.cells().into_iter().find(|c| c.morton == top.parent_morton).context("top cell vanished")?;
        let job = CellJob::new(&pipeline, StoreOptions::default(), ReadOptions::default(), workers)?;
        let (ids, columns, _) = job.aggregate(&cell).await?;
        let mut fields = vec![Field::new("cell_ids", DataType::UInt64, true)];
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(ids)];
        for (v, a) in pipeline.compile()?.variables.iter().zip(columns) {
            fields.push(Field::new(&v.name, a.data_type().clone(), true));
            arrays.push(a);
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?;
        let n = batch.num_rows().min(5);
        println!("    first {n} child cells of {} with data:", top.parent_morton);
        println!("{}", arrow::util::pretty::pretty_format_batches(&[batch.slice(0, n)])?);
    }
    println!("store written to {store_url}");
    println!("open it in Python: xarray.open_zarr({store_url:?}, group=\"{}\")", pipeline.output.grid.child_order);
    Ok(if summary.failed() > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
