//! The job: one resolved run config -> one Zarr chunk per parent cell -> a report.
//!
//! Every front end (`magg run`, `magg demo`, the Lambda handler) builds a [`RunConfig`]
//! and calls [`process_cell`] or [`run`], so the same cell gives the same chunk whoever
//! runs it. Per cell: the compiled `GROUP BY cell` query runs over the cell's granules
//! (the table reads only rows inside the cell), and the grouped rows are scattered into
//! the cell's chunk by the sink. A failing cell (a corrupt or missing granule) is
//! reported and writes nothing; the other cells go on.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, UInt64Array};
use arrow::compute::concat;
use arrow::datatypes::SchemaRef;
use futures::StreamExt;
use serde::Serialize;

use crate::catalog::CatalogCell;
use crate::config::compile::ParentCell;
use crate::config::{CompiledPipeline, PipelineConfig};
use crate::h5::ReadOptions;
use crate::session::{self, SessionOptions};
use crate::sink::{Codec, SinkError, StoreLayout, StoreTemplate, VariableSpec, ZarrSink};
use crate::store::StoreOptions;
use crate::table::{CellFilter, GranuleRef, GranuleTable, GranuleTableOptions, ScanMetrics};

/// Errors that stop a whole run (per-cell errors go into [`CellReport::error`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store could not be resolved.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The store template could not be created or opened.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The coordinate index could not be read or written.
    #[error(transparent)]
    Index(#[from] crate::table::IndexError),
    /// A cell argument is not valid.
    #[error("cell {morton}: {detail}")]
    Cell {
        /// The cell.
        morton: i64,
        /// What is wrong.
        detail: String,
    },
    /// Nothing to do.
    #[error("{0}")]
    Nothing(String),
}

/// Everything a run needs, resolved from flags, YAML, a catalog or a Lambda event.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The pipeline.
    pub pipeline: PipelineConfig,
    /// Parent order of the catalog cells.
    pub parent_order: u8,
    /// Every catalog cell in catalog order: the compact layout's chunk order.
    pub catalog_parents: Vec<i64>,
    /// The cells to process now (a subset of the catalog with `--max-cells`/`--morton-cell`).
    pub cells: Vec<CatalogCell>,
    /// Output store URL or path.
    pub store_url: String,
    /// Object store settings (credentials, endpoint).
    pub store: StoreOptions,
    /// Reader settings.
    pub read: ReadOptions,
    /// Cores to use: cells processed at once, and partitions per cell query.
    pub workers: usize,
    /// Replace an existing store.
    pub overwrite: bool,
    /// Skip cells whose chunks are complete in an existing store.
    pub resume: bool,
    /// Coordinate index file ([`crate::table::index`]): read before the run when it
    /// exists, written after it when the run indexed beams it did not list. `None`: the
    /// run still learns an index in memory, shared by its cells, and forgets it.
    pub index: Option<std::path::PathBuf>,
}

/// What happened to one cell (the reference's Lambda body, plus magg's row counts).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CellReport {
    /// Chunk index in the store.
    pub chunk_idx: u64,
    /// The parent cell.
    pub parent_morton: i64,
    /// Granules listed for the cell.
    pub granule_count: usize,
    /// Granules opened (not pruned, not failed).
    pub files_processed: u64,
    /// Rows whose coordinates were examined.
    pub rows_read: u64,
    /// Rows inside the cell.
    pub rows_in_cell: u64,
    /// Rows kept after the quality filter (the observations aggregated).
    pub total_obs: u64,
    /// Child cells with at least one observation.
    pub cells_with_data: u64,
    /// Wall time in seconds.
    pub duration_s: f64,
    /// Skipped because the chunk was already complete (`--resume`).
    pub skipped: bool,
    /// Why the cell failed, if it did.
    pub error: Option<String>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    /// The store written.
    pub store: String,
    /// One report per processed cell, in completion order.
    pub cells: Vec<CellReport>,
    /// Wall time in seconds.
    pub duration_s: f64,
    /// Beams the coordinate index listed before the run.
    pub index_beams_loaded: usize,
    /// Beams the run added to the index (written to [`RunConfig::index`] when set).
    pub index_beams_learned: usize,
}

impl RunSummary {
    /// Cells that failed.
    pub fn failed(&self) -> usize {
        self.cells.iter().filter(|c| c.error.is_some()).count()
    }

    /// Observations aggregated over all cells.
    pub fn total_obs(&self) -> u64 {
        self.cells.iter().map(|c| c.total_obs).sum()
    }
}

/// The store template a pipeline writes.
pub fn store_template(pipeline: &PipelineConfig, parent_order: u8, catalog_parents: &[i64]) -> Result<StoreTemplate, RunError> {
    let compiled = pipeline.compile()?;
    let layout = if pipeline.full_sphere() {
        StoreLayout::FullSphere
    } else {
        StoreLayout::Compact { parents: catalog_parents.to_vec() }
    };
    let codec = match pipeline.codec()? {
        None => Codec::None,
        Some(level) => Codec::Zstd { level },
    };
    let mut attributes = serde_json::Map::new();
    attributes.insert("magg_version".into(), env!("CARGO_PKG_VERSION").into());
    attributes.insert("pipeline".into(), pipeline.name.clone().into());
    Ok(StoreTemplate {
        parent_order,
        child_order: pipeline.output.grid.child_order,
        layout,
        variables: compiled
            .variables
            .iter()
            .map(|v| VariableSpec {
                name: v.name.clone(),
                data_type: v.data_type.clone(),
                fill_value: v.fill_value,
                attributes: serde_json::Map::new(),
            })
            .collect(),
        codec,
        attributes,
    })
}

/// Create the store template (or open it with `resume`), ready for [`process_cell`].
pub async fn prepare_store(config: &RunConfig) -> Result<ZarrSink, RunError> {
    let (store, prefix) = crate::store::resolve(&config.store_url, &config.store)?;
    if config.resume {
        match ZarrSink::open(Arc::clone(&store), prefix.clone(), &config.store_url).await {
            Ok(sink) => return Ok(sink),
            Err(SinkError::TemplateMissing { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let template = store_template(&config.pipeline, config.parent_order, &config.catalog_parents)?;
    Ok(ZarrSink::create(store, prefix, &config.store_url, &template, config.overwrite).await?)
}

/// A job ready to process cells: compiled query and the table schema, shared by cells.
#[derive(Debug, Clone)]
pub struct CellJob {
    pipeline: PipelineConfig,
    compiled: CompiledPipeline,
    store: StoreOptions,
    read: ReadOptions,
    partitions: usize,
    schema: Arc<parking_lot::Mutex<Option<SchemaRef>>>,
    coord_index: Arc<crate::table::CoordinateIndex>,
}

impl CellJob {
    /// A job for `pipeline`; each cell query uses `partitions` partitions.
    pub fn new(pipeline: &PipelineConfig, store: StoreOptions, read: ReadOptions, partitions: usize) -> Result<Self, RunError> {
        Ok(Self {
            compiled: pipeline.compile()?,
            pipeline: pipeline.clone(),
            store,
            read,
            partitions: partitions.max(1),
            schema: Arc::new(parking_lot::Mutex::new(None)),
            coord_index: Arc::default(),
        })
    }

    /// Use `index` (e.g. loaded from a file) as the job's coordinate index.
    pub fn with_index(mut self, index: Arc<crate::table::CoordinateIndex>) -> Self {
        self.coord_index = index;
        self
    }

    /// The job's coordinate index, as filled so far.
    pub fn index(&self) -> &Arc<crate::table::CoordinateIndex> {
        &self.coord_index
    }

    /// The SQL run for a cell.
    pub fn sql(&self, morton: i64) -> Result<String, RunError> {
        let f = CellFilter::from_morton(morton, self.pipeline.latitude_mode()?)
            .map_err(|e| RunError::Cell { morton, detail: e.to_string() })?;
        Ok(self.compiled.cell_sql(Some(ParentCell { order: f.parent_order, nested: f.parent })))
    }

    /// Aggregate one cell into rows (`cell` + one column per variable) without writing.
    pub async fn aggregate(&self, cell: &CatalogCell) -> Result<(UInt64Array, Vec<ArrayRef>, Arc<ScanMetrics>), String> {
        let sql = self.sql(cell.morton).map_err(|e| e.to_string())?;
        let mut options = GranuleTableOptions::from_config(&self.pipeline, &[]);
        options.store = self.store.clone();
        options.read = self.read.clone();
        options.coord_index = Some(Arc::clone(&self.coord_index));
        let granules: Vec<GranuleRef> = cell.granules.iter().map(|u| GranuleRef { url: u.clone(), cells: None }).collect();
        let known = self.schema.lock().clone();
        let table = match known {
            Some(schema) => GranuleTable::with_schema(options, granules, schema),
            None => {
                let t = GranuleTable::try_new(options, granules).await.map_err(|e| e.to_string())?;
                *self.schema.lock() = Some(t.schema_ref());
                t
            }
        };
        let metrics = table.metrics();
        let ctx = session::context(SessionOptions { target_partitions: self.partitions, ..Default::default() });
        session::register_table(&ctx, Arc::new(table)).map_err(|e| e.to_string())?;
        let df = ctx.sql(&sql).await.map_err(|e| e.to_string())?;
        let batches = df.collect().await.map_err(|e| e.to_string())?;
        let n_vars = self.compiled.variables.len();
        let cells: Vec<ArrayRef> = batches.iter().map(|b| Arc::clone(b.column(0))).collect();
        let cells = concat_or_empty(&cells, &arrow::datatypes::DataType::UInt64)?;
        let cells = cells
            .as_any()
            .downcast_ref::<UInt64Array>()
            .cloned()
            .ok_or_else(|| format!("cell column has type {}, expected UInt64", cells.data_type()))?;
        let mut columns = Vec::with_capacity(n_vars);
        for i in 0..n_vars {
            let parts: Vec<ArrayRef> = batches.iter().map(|b| Arc::clone(b.column(i + 1))).collect();
            let dt = batches.first().map_or(self.compiled.variables[i].data_type.clone(), |b| b.column(i + 1).data_type().clone());
            columns.push(concat_or_empty(&parts, &dt)?);
        }
        Ok((cells, columns, metrics))
    }
}

fn concat_or_empty(parts: &[ArrayRef], dt: &arrow::datatypes::DataType) -> Result<ArrayRef, String> {
    if parts.is_empty() {
        return Ok(arrow::array::new_empty_array(dt));
    }
    let refs: Vec<&dyn Array> = parts.iter().map(AsRef::as_ref).collect();
    concat(&refs).map_err(|e| e.to_string())
}

/// Process one cell: aggregate it and write its chunk. Never fails: errors are reported.
pub async fn process_cell(job: &CellJob, sink: &ZarrSink, cell: &CatalogCell, resume: bool) -> CellReport {
    let start = Instant::now();
    let mut report = CellReport {
        chunk_idx: sink.chunk_index(cell.morton).unwrap_or(cell.chunk_idx as u64),
        parent_morton: cell.morton,
        granule_count: cell.granules.len(),
        ..Default::default()
    };
    if resume {
        match sink.cell_complete(cell.morton).await {
            Ok(true) => {
                report.skipped = true;
                report.duration_s = start.elapsed().as_secs_f64();
                return report;
            }
            Ok(false) => {}
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        }
    }
    let result = async {
        let (cells, columns, metrics) = job.aggregate(cell).await?;
        report.files_processed = ScanMetrics::get(&metrics.granules_opened);
        report.rows_read = ScanMetrics::get(&metrics.rows_scanned);
        report.rows_in_cell = ScanMetrics::get(&metrics.rows_in_cell);
        report.total_obs = ScanMetrics::get(&metrics.rows_kept);
        let stats = sink.write_cell(cell.morton, &cells, &columns).await.map_err(|e| e.to_string())?;
        report.cells_with_data = stats.cells_with_data;
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = result {
        report.error = Some(format!("cell {} (chunk {}): {e}", cell.morton, report.chunk_idx));
    }
    report.duration_s = start.elapsed().as_secs_f64();
    report
}

/// Run every cell of `config`, `workers` at a time; `on_cell` sees each report as it
/// completes (progress bars). Consolidates the store's metadata at the end.
pub async fn run(config: &RunConfig, mut on_cell: impl FnMut(&CellReport)) -> Result<RunSummary, RunError> {
    if config.cells.is_empty() {
        return Err(RunError::Nothing("no cells to process (the catalog is empty or no cell matched)".into()));
    }
    let start = Instant::now();
    let sink = prepare_store(config).await?;
    let workers = config.workers.max(1);
    let index = match config.index.clone() {
        Some(path) if path.exists() => blocking(move || crate::table::CoordinateIndex::load(&path)).await?,
        _ => crate::table::CoordinateIndex::new(),
    };
    let index_beams_loaded = index.len();
    let job = CellJob::new(&config.pipeline, config.store.clone(), config.read.clone(), workers)?.with_index(Arc::new(index));
    // Largest cells first, so a long cell does not start last and stretch the run.
    let mut cells = config.cells.clone();
    cells.sort_by_key(|c| std::cmp::Reverse(c.granules.len()));
    let mut stream = futures::stream::iter(cells)
        .map(|cell| {
            let job = job.clone();
            let sink = sink.clone();
            let resume = config.resume;
            async move { process_cell(&job, &sink, &cell, resume).await }
        })
        .buffer_unordered(workers);
    let mut summary = RunSummary { store: config.store_url.clone(), index_beams_loaded, ..Default::default() };
    while let Some(report) = stream.next().await {
        on_cell(&report);
        summary.cells.push(report);
    }
    drop(stream);
    sink.consolidate().await?;
    summary.index_beams_learned = job.index().learned();
    if let (Some(path), true) = (&config.index, summary.index_beams_learned > 0) {
        let spec = crate::table::IndexSpec::for_job(config.parent_order, config.pipeline.latitude_mode()?);
        let (index, path) = (Arc::clone(job.index()), path.clone());
        blocking(move || index.save(&path, &spec)).await?;
    }
    summary.duration_s = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// Run a small file operation of the index off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::table::IndexError> + Send + 'static,
) -> Result<T, RunError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(RunError::from),
        // The closure panicked: a bug, not a bad input; let it surface as one.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
