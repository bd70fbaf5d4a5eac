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

use crate::catalog::{Catalog, CatalogCell};
use crate::config::compile::ParentCell;
use crate::errors::{CellError, ErrorKind};
use crate::config::{CompiledPipeline, PipelineConfig};
use crate::h5::ReadOptions;
use crate::session::{self, SessionOptions};
use crate::sink::{Codec, SinkError, StoreLayout, StoreTemplate, VariableSpec, ZarrSink};
use crate::store::StoreOptions;
use crate::table::{AbsentBeam, CellFilter, GranuleRef, GranuleTable, GranuleTableOptions, ScanMetrics};

mod definition;
pub mod event;
mod inputs;
pub mod worker;

pub use definition::StoreDefinition;
pub use inputs::{
    BUILT_IN_CONFIGS, IndexLocation, Resolved, RunInputs, load_catalog,
    load_pipeline, select_cells,
};

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
    /// `--resume` on a store another pipeline, catalog or grid wrote.
    #[error(
        "store {url} was written by a different run definition, so resuming would mix two pipelines in one store:\n  {}\n(pass --overwrite to replace the store, or choose another --store)",
        differences.join("\n  ")
    )]
    DefinitionMismatch {
        /// The store.
        url: String,
        /// One line per difference: "what: store X, now Y".
        differences: Vec<String>,
    },
    /// The store would be larger than the limits without `--yes`.
    #[error("{0}")]
    TooLarge(String),
    /// The config, catalog or a path given to the run cannot be used.
    #[error("{0}")]
    Input(String),
}

/// Everything a run needs, resolved from flags, YAML, a catalog or a Lambda event
/// (see [`RunInputs::resolve`], the one place front ends build it).
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
    /// Object store settings for reading granules (e.g. NSIDC's temporary credentials).
    pub read_store: StoreOptions,
    /// Object store settings for the output store (e.g. the user's own bucket).
    pub write_store: StoreOptions,
    /// Reader settings.
    pub read: ReadOptions,
    /// Cores to use: cells processed at once, and partitions per cell query.
    pub workers: usize,
    /// Replace the cells being run (and the whole store when its definition differs).
    pub overwrite: bool,
    /// Skip cells whose chunks are complete in an existing store of the same definition.
    pub resume: bool,
    /// Coordinate index file ([`crate::table::index`]): read before the run when it
    /// exists, written after it when the run indexed beams it did not list. `None`: the
    /// run still learns an index in memory, shared by its cells, and forgets it.
    pub index: Option<std::path::PathBuf>,
    /// Digest of the whole catalog (cells and granules, [`Catalog::digest`]), recorded
    /// in the store's definition so `--resume` with another catalog is caught.
    pub catalog_digest: Option<String>,
    /// Write stores larger than [`SIZE_LIMITS`] without asking.
    pub yes: bool,
    /// Stop the run when this many cells in a row fail the same systemic way
    /// (unreachable endpoint, rejected credentials, time-outs). 0: never stop.
    pub max_consecutive_failures: usize,
}

impl RunConfig {
    /// Every cell of `catalog` into `store_url` with `pipeline` and default settings:
    /// all cores, no index file, credentials from the environment.
    pub fn new(pipeline: PipelineConfig, catalog: &Catalog, store_url: impl Into<String>) -> Self {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            pipeline,
            parent_order: catalog.metadata.parent_order,
            catalog_parents: catalog.cells().iter().map(|c| c.morton).collect(),
            cells: catalog.cells(),
            store_url: store_url.into(),
            read_store: StoreOptions::default(),
            write_store: StoreOptions::default(),
            read: ReadOptions::default().with_decode_threads(workers),
            workers,
            overwrite: false,
            resume: false,
            index: None,
            catalog_digest: Some(catalog.digest()),
            yes: false,
            max_consecutive_failures: DEFAULT_MAX_CONSECUTIVE_FAILURES,
        }
    }
}

/// Cells in a row failing the same systemic way before a run stops.
pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: usize = 3;

/// Sizes a run writes only with `yes`: (bytes of one parent's chunks, bytes of the
/// store), uncompressed. A cell's chunks are built in memory, so the first also bounds a
/// worker's memory; order 18 under order 6 is 833 MB per cell.
pub const SIZE_LIMITS: (u64, u64) = (256 << 20, 100 << 30);

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
    /// Beams without coordinates in the cell's granules (a laser off, or a damaged
    /// file: the report lets a user tell which).
    pub absent_beams: Vec<AbsentBeam>,
    /// Why the cell failed, if it did (the reference's `error` field).
    pub error: Option<String>,
    /// The kind of failure and whether retrying may help, when it failed.
    pub failure: Option<CellError>,
}

impl CellReport {
    fn fail(&mut self, e: CellError) {
        self.error = Some(e.message.clone());
        self.failure = Some(e);
    }
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
    /// Why the run stopped before every cell was processed, if it did.
    pub stopped: Option<String>,
    /// Cells never started because the run stopped early.
    pub cells_not_run: usize,
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

    /// Absent beams over all cells, each (granule, beam) once.
    pub fn absent_beams(&self) -> Vec<&AbsentBeam> {
        let mut all: Vec<&AbsentBeam> = self.cells.iter().flat_map(|c| &c.absent_beams).collect();
        all.sort();
        all.dedup();
        all
    }
}

/// The store template a pipeline writes. Its attributes record the run definition
/// ([`StoreDefinition`]) that `--resume` and `--overwrite` compare against.
pub fn store_template(
    pipeline: &PipelineConfig,
    parent_order: u8,
    catalog_parents: &[i64],
    catalog_digest: Option<&str>,
) -> Result<StoreTemplate, RunError> {
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
    let definition = StoreDefinition::new(pipeline, &compiled, parent_order, catalog_parents, catalog_digest)?;
    let mut attributes = serde_json::Map::new();
    attributes.insert("magg_version".into(), env!("CARGO_PKG_VERSION").into());
    attributes.insert("pipeline".into(), pipeline.name.clone().into());
    attributes.insert(definition::ATTRIBUTE.into(), definition.to_json());
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

/// What [`prepare_store`] did with the store, for the front end to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAction {
    /// A new store.
    Created,
    /// An existing store of the same definition, kept (`--resume`, or `--overwrite`
    /// replacing only the cells being run).
    Reused,
    /// An existing store of another definition, deleted and created again
    /// (`--overwrite`); one line per difference.
    Replaced(Vec<String>),
}

/// Something a run tells its front end as it goes.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunEvent<'a> {
    /// About to replace a whole store of another definition (said before deleting it).
    Replacing {
        /// The store.
        url: &'a str,
        /// What differs, one line each.
        differences: &'a [String],
    },
    /// The store the run writes: its size, before any chunk is written.
    Plan {
        /// Chunks (parent cells) the run writes.
        cells: usize,
        /// Cells per chunk.
        chunk_len: u64,
        /// Uncompressed bytes the run writes at most.
        bytes: u64,
    },
    /// A warning (a granule listed twice, stray files removed).
    Warning(&'a str),
    /// A cell finished.
    Cell(&'a CellReport),
}

/// Create the store template, or open an existing one as `resume`/`overwrite` say:
/// - no store: create it;
/// - a store of the same definition: keep it (`resume`; or `overwrite`, which then
///   replaces only the chunks of the cells being run, never another run's);
/// - a store of another definition: an error with `resume` (naming the differences),
///   replaced whole with `overwrite` (after [`RunEvent::Replacing`]);
/// - a store without `resume` or `overwrite`: an error.
pub async fn prepare_store(config: &RunConfig, mut on_event: impl FnMut(RunEvent<'_>)) -> Result<(ZarrSink, StoreAction), RunError> {
    let (store, prefix) = crate::store::resolve(&config.store_url, &config.write_store)?;
    let template = store_template(&config.pipeline, config.parent_order, &config.catalog_parents, config.catalog_digest.as_deref())?;
    let wanted = StoreDefinition::of_template(&template).unwrap_or_default();
    let existing = match ZarrSink::open(Arc::clone(&store), prefix.clone(), &config.store_url).await {
        Ok(sink) => Some(Ok(sink)),
        Err(SinkError::TemplateMissing { .. }) => None,
        // A store magg cannot read back (metadata damaged, another tool's group) is a
        // store of another definition.
        Err(e) => Some(Err(e)),
    };
    let differences = match &existing {
        None => {
            let sink = ZarrSink::create(store, prefix, &config.store_url, &template, false).await?;
            return Ok((sink, StoreAction::Created));
        }
        Some(Ok(sink)) => match StoreDefinition::of_template(sink.template()) {
            Some(found) => found.differences(&wanted),
            None => vec![format!(
                "definition: the store has none (written by another tool or a magg before {}), this run has one",
                env!("CARGO_PKG_VERSION")
            )],
        },
        Some(Err(e)) => vec![format!("metadata: the store's template cannot be read ({})", crate::errors::message(e))],
    };
    if !config.resume && !config.overwrite {
        return Err(SinkError::Exists { url: config.store_url.clone() }.into());
    }
    if differences.is_empty()
        && let Some(Ok(sink)) = existing
    {
        remove_stray_temporaries(&config.store_url, &mut on_event).await;
        return Ok((sink, StoreAction::Reused));
    }
    if config.resume {
        return Err(RunError::DefinitionMismatch { url: config.store_url.clone(), differences });
    }
    on_event(RunEvent::Replacing { url: &config.store_url, differences: &differences });
    let sink = ZarrSink::create(store, prefix, &config.store_url, &template, true).await?;
    Ok((sink, StoreAction::Replaced(differences)))
}

/// Delete the temporary files a killed writer leaves next to chunks of a local store
/// (object_store writes `c/75#1` and renames it to `c/75`); remote puts leave none.
async fn remove_stray_temporaries(url: &str, on_event: &mut impl FnMut(RunEvent<'_>)) {
    let Some(root) = crate::store::local_path(url) else { return };
    let removed = tokio::task::spawn_blocking(move || {
        let mut removed = Vec::new();
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                let p = e.path();
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                let stray = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.rsplit_once('#'))
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                if is_dir {
                    stack.push(p);
                } else if stray && std::fs::remove_file(&p).is_ok() {
                    removed.push(p);
                }
            }
        }
        removed
    })
    .await
    .unwrap_or_default();
    if !removed.is_empty() {
        let msg = format!(
            "removed {} temporary file(s) a killed writer left in {url} (e.g. {})",
            removed.len(),
            removed[0].display()
        );
        on_event(RunEvent::Warning(&msg));
    }
}

/// A job ready to process cells: compiled query and the table schema, shared by cells.
#[derive(Debug, Clone)]
pub struct CellJob {
    pipeline: PipelineConfig,
    compiled: CompiledPipeline,
    source: crate::source::SourceSpec,
    store: StoreOptions,
    read: ReadOptions,
    partitions: usize,
    schema: Arc<parking_lot::Mutex<Option<SchemaRef>>>,
    coord_index: Arc<crate::table::CoordinateIndex>,
}

/// What [`CellJob::aggregate`] returns: the child cells with data, one column per
/// variable, and the scan's counters.
pub type CellRows = (UInt64Array, Vec<ArrayRef>, Arc<ScanMetrics>);

impl CellJob {
    /// A job for `pipeline` reading granules with `store`; each cell query uses
    /// `partitions` partitions.
    pub fn new(pipeline: &PipelineConfig, store: StoreOptions, read: ReadOptions, partitions: usize) -> Result<Self, RunError> {
        Ok(Self {
            compiled: pipeline.compile()?,
            source: pipeline.source()?,
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
    pub async fn aggregate(&self, cell: &CatalogCell) -> Result<CellRows, CellError> {
        let cell_err = |e: &(dyn std::error::Error + 'static)| CellError::from_error(e);
        let sql = self.sql(cell.morton).map_err(|e| CellError::new(ErrorKind::Config, crate::errors::message(&e)))?;
        let mut options = GranuleTableOptions::new(self.source.clone());
        options.store = self.store.clone();
        options.read = self.read.clone();
        options.coord_index = Some(Arc::clone(&self.coord_index));
        let granules: Vec<GranuleRef> = cell.granules.iter().map(|u| GranuleRef { url: u.clone(), cells: None }).collect();
        let known = self.schema.lock().clone();
        let table = match known {
            Some(schema) => GranuleTable::with_schema(options, granules, schema),
            None => {
                let t = GranuleTable::try_new(options, granules).await.map_err(|e| cell_err(&e))?;
                *self.schema.lock() = Some(t.schema_ref());
                t
            }
        };
        let metrics = table.metrics();
        let ctx = session::context(SessionOptions { target_partitions: self.partitions, ..Default::default() });
        session::register_table(&ctx, Arc::new(table)).map_err(|e| cell_err(&e))?;
        let df = ctx.sql(&sql).await.map_err(|e| cell_err(&e))?;
        let batches = df.collect().await.map_err(|e| cell_err(&e))?;
        let n_vars = self.compiled.variables.len();
        let internal = |m: String| CellError::new(ErrorKind::Internal, m);
        let cells: Vec<ArrayRef> = batches.iter().map(|b| Arc::clone(b.column(0))).collect();
        let cells = concat_or_empty(&cells, &arrow::datatypes::DataType::UInt64).map_err(internal)?;
        let cells = cells
            .as_any()
            .downcast_ref::<UInt64Array>()
            .cloned()
            .ok_or_else(|| internal(format!("cell column has type {}, expected UInt64", cells.data_type())))?;
        let mut columns = Vec::with_capacity(n_vars);
        for i in 0..n_vars {
            let parts: Vec<ArrayRef> = batches.iter().map(|b| Arc::clone(b.column(i + 1))).collect();
            let dt = batches.first().map_or(self.compiled.variables[i].data_type.clone(), |b| b.column(i + 1).data_type().clone());
            columns.push(concat_or_empty(&parts, &dt).map_err(internal)?);
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

/// What to do with a cell's existing chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CellMode {
    /// A new store: just write.
    #[default]
    Write,
    /// Skip the cell when its chunks are complete (`--resume`).
    SkipComplete,
    /// Delete the cell's chunks, then write (`--overwrite` of a kept store, a retried
    /// Lambda invocation): a failure leaves the cell incomplete, not stale.
    Replace,
}

/// Process one cell: aggregate it and write its chunk. Never fails: errors are reported.
pub async fn process_cell(job: &CellJob, sink: &ZarrSink, cell: &CatalogCell, mode: CellMode) -> CellReport {
    let start = Instant::now();
    let mut report = CellReport {
        chunk_idx: sink.chunk_index(cell.morton).unwrap_or(cell.chunk_idx as u64),
        parent_morton: cell.morton,
        granule_count: cell.granules.len(),
        ..Default::default()
    };
    let context = format!("cell {} (chunk {})", cell.morton, report.chunk_idx);
    let sink_err = |e: SinkError| CellError::from_error(&e).context(&context);
    let prepared = match mode {
        CellMode::Write => Ok(true),
        CellMode::SkipComplete => sink.cell_complete(cell.morton).await.map(|done| !done),
        CellMode::Replace => sink.clear_cell(cell.morton).await.map(|()| true),
    };
    match prepared {
        Ok(true) => {}
        Ok(false) => {
            report.skipped = true;
            report.duration_s = start.elapsed().as_secs_f64();
            return report;
        }
        Err(e) => {
            report.fail(sink_err(e));
            report.duration_s = start.elapsed().as_secs_f64();
            return report;
        }
    }
    let result = async {
        let (cells, columns, metrics) = job.aggregate(cell).await.map_err(|e| e.context(&context))?;
        report.files_processed = ScanMetrics::get(&metrics.granules_opened);
        report.rows_read = ScanMetrics::get(&metrics.rows_scanned);
        report.rows_in_cell = ScanMetrics::get(&metrics.rows_in_cell);
        report.total_obs = ScanMetrics::get(&metrics.rows_kept);
        let mut absent = metrics.absent_beams.lock().clone();
        absent.sort();
        for a in &mut absent {
            a.granule = crate::store::redact(&a.granule);
        }
        report.absent_beams = absent;
        let stats = sink.write_cell(cell.morton, &cells, &columns).await.map_err(sink_err)?;
        report.cells_with_data = stats.cells_with_data;
        Ok::<(), CellError>(())
    }
    .await;
    if let Err(e) = result {
        report.fail(e);
    }
    report.duration_s = start.elapsed().as_secs_f64();
    report
}

/// Run every cell of `config`, `workers` at a time; `on_event` hears what the run does
/// (the store it replaces, its size, each cell's report as it completes).
///
/// Everything that can fail before a cell starts is checked before the store is
/// touched: the config compiles, the coordinate index parses, the store's size is
/// within [`SIZE_LIMITS`] (or `yes`), an existing store's definition matches for
/// `resume`. Consolidates the store's metadata at the end. When
/// `max_consecutive_failures` cells in a row fail the same systemic way, the run stops
/// with that error in [`RunSummary::stopped`].
pub async fn run(config: &RunConfig, mut on_event: impl FnMut(RunEvent<'_>)) -> Result<RunSummary, RunError> {
    if config.cells.is_empty() {
        return Err(RunError::Nothing("no cells to process (the catalog is empty or no cell matched)".into()));
    }
    let start = Instant::now();
    let workers = config.workers.max(1);
    let job = CellJob::new(&config.pipeline, config.read_store.clone(), config.read.clone(), workers)?;
    let index = match config.index.clone() {
        Some(path) if path.exists() => blocking(move || crate::table::CoordinateIndex::load(&path)).await?,
        _ => crate::table::CoordinateIndex::new(),
    };
    let index_beams_loaded = index.len();
    let job = job.with_index(Arc::new(index));
    let template = store_template(&config.pipeline, config.parent_order, &config.catalog_parents, config.catalog_digest.as_deref())?;
    check_size(config, &template, &mut on_event)?;
    let (sink, action) = prepare_store(config, &mut on_event).await?;
    let mode = match (&action, config.resume) {
        (StoreAction::Reused, true) => CellMode::SkipComplete,
        (StoreAction::Reused, false) => CellMode::Replace,
        _ => CellMode::Write,
    };
    // Largest cells first, so a long cell does not start last and stretch the run.
    let mut cells = config.cells.clone();
    cells.sort_by_key(|c| std::cmp::Reverse(c.granules.len()));
    let total = cells.len();
    let mut stream = futures::stream::iter(cells)
        .map(|cell| {
            let job = job.clone();
            let sink = sink.clone();
            async move { process_cell(&job, &sink, &cell, mode).await }
        })
        .buffer_unordered(workers);
    let mut summary = RunSummary { store: config.store_url.clone(), index_beams_loaded, ..Default::default() };
    let mut streak: Option<(ErrorKind, usize)> = None;
    while let Some(report) = stream.next().await {
        on_event(RunEvent::Cell(&report));
        streak = match (&report.failure, streak) {
            (Some(f), Some((k, n))) if f.kind == k && k.systemic() => Some((k, n + 1)),
            (Some(f), _) if f.kind.systemic() => Some((f.kind, 1)),
            _ => None,
        };
        let stop = streak.filter(|&(_, n)| config.max_consecutive_failures > 0 && n >= config.max_consecutive_failures);
        let error = report.error.clone();
        summary.cells.push(report);
        if let Some((kind, n)) = stop {
            summary.cells_not_run = total - summary.cells.len();
            summary.stopped = Some(format!(
                "stopped after {n} cells in a row failed the same way ({kind:?}); {} cells not run: {}",
                summary.cells_not_run,
                error.unwrap_or_default()
            ));
            break;
        }
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

/// Say how much the run writes, and refuse more than [`SIZE_LIMITS`] unless `yes`.
fn check_size(config: &RunConfig, template: &StoreTemplate, on_event: &mut impl FnMut(RunEvent<'_>)) -> Result<(), RunError> {
    let chunk_len = 1_u64 << (2 * u32::from(template.child_order.saturating_sub(template.parent_order)));
    let per_cell = chunk_len.saturating_mul(crate::sink::template_bytes_per_cell(template));
    let bytes = per_cell.saturating_mul(config.cells.len() as u64);
    on_event(RunEvent::Plan { cells: config.cells.len(), chunk_len, bytes });
    let (cell_limit, store_limit) = SIZE_LIMITS;
    if !config.yes && (per_cell > cell_limit || bytes > store_limit) {
        return Err(RunError::TooLarge(format!(
            "output.grid.child_order {} under parent order {} makes {} cells per parent cell: {} per cell and {} for {} cells, \
             beyond the limits of {} per cell and {} per run (each cell's chunks are built in memory); \
             choose a coarser child_order, or pass --yes to write it anyway",
            template.child_order,
            template.parent_order,
            chunk_len,
            human_bytes(per_cell),
            human_bytes(bytes),
            config.cells.len(),
            human_bytes(cell_limit),
            human_bytes(store_limit),
        )));
    }
    Ok(())
}

/// `1.5 GB`, `832.0 MB`, `12 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
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
