//! One parent cell into an existing store: the entry of a Lambda invocation and of any
//! worker that is handed a cell by an orchestrator (`magg invoke`).
//!
//! A worker never creates the store template: the orchestrator does, once, before it
//! fans out. A missing template is an error ([`WorkerError::TemplateMissing`]), not a
//! race between hundreds of workers each creating it. The worker checks that the
//! template was made for its pipeline (same variables, SQL, grid), then clears and
//! writes its cell's chunks ([`CellMode::Replace`]), so a retried invocation rewrites
//! the same bytes. It runs exactly the code `magg run` runs for a cell
//! ([`super::process_cell`]), so both write byte-identical chunks.

use std::sync::Arc;

use super::{CellJob, CellMode, CellReport, StoreDefinition, process_cell};
use crate::catalog::CatalogCell;
use crate::config::PipelineConfig;
use crate::errors::{CellError, ErrorKind};
use crate::h5::ReadOptions;
use crate::sink::{SinkError, ZarrSink};
use crate::store::StoreOptions;

/// One cell for a worker.
#[derive(Debug, Clone)]
pub struct WorkerInputs {
    /// The pipeline (the orchestrator's, sent in the event, or the built-in one).
    pub pipeline: PipelineConfig,
    /// The parent cell (decimal morton).
    pub parent_morton: i64,
    /// The parent order the sender believes the store has; checked when given.
    pub parent_order: Option<u8>,
    /// The child order the sender believes the store has; checked when given.
    pub child_order: Option<u8>,
    /// The chunk the sender believes the cell has; checked when given.
    pub chunk_idx: Option<u64>,
    /// The cell's granules.
    pub granule_urls: Vec<String>,
    /// The existing store.
    pub store_url: String,
    /// Credentials and endpoint for the granules (e.g. NSIDC's temporary S3 credentials).
    pub read_store: StoreOptions,
    /// Credentials and endpoint for the store (e.g. the function's own role).
    pub write_store: StoreOptions,
    /// Cores to use.
    pub workers: usize,
}

/// Why a worker could not start on its cell (a failure while processing it is in the
/// [`CellReport`] instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The store has no template: the orchestrator must create it first.
    #[error("store {url} has no template: create it first (magg invoke does; so does magg run)")]
    TemplateMissing {
        /// The store.
        url: String,
    },
    /// The inputs do not fit the store (another pipeline, grid or cell).
    #[error("{0}")]
    Mismatch(String),
    /// The store could not be reached or read.
    #[error(transparent)]
    Store(CellError),
}

impl WorkerError {
    /// As a typed cell error (for responses and retries).
    pub fn to_cell_error(&self) -> CellError {
        match self {
            Self::TemplateMissing { .. } => CellError::new(ErrorKind::Output, self.to_string()),
            Self::Mismatch(m) => CellError::new(ErrorKind::Config, m),
            Self::Store(e) => e.clone(),
        }
    }
}

/// Process one cell into the existing store at `inputs.store_url`.
pub async fn run_cell(inputs: &WorkerInputs) -> Result<CellReport, WorkerError> {
    let store_err = |e: &(dyn std::error::Error + 'static)| WorkerError::Store(CellError::from_error(e));
    let (store, prefix) = crate::store::resolve(&inputs.store_url, &inputs.write_store).map_err(|e| store_err(&e))?;
    let sink = match ZarrSink::open(store, prefix, &inputs.store_url).await {
        Ok(s) => s,
        Err(SinkError::TemplateMissing { .. }) => return Err(WorkerError::TemplateMissing { url: inputs.store_url.clone() }),
        Err(e) => return Err(store_err(&e)),
    };
    check_template(inputs, &sink)?;
    let job = CellJob::new(&inputs.pipeline, inputs.read_store.clone(), ReadOptions::default().with_decode_threads(inputs.workers), inputs.workers)
        .map_err(|e| WorkerError::Mismatch(crate::errors::message(&e)))?;
    let mut granules: Vec<String> = Vec::with_capacity(inputs.granule_urls.len());
    let mut seen = std::collections::HashSet::new();
    for u in &inputs.granule_urls {
        if seen.insert(crate::store::normalize_url(u)) {
            granules.push(u.clone());
        }
    }
    let cell = CatalogCell {
        chunk_idx: sink.chunk_index(inputs.parent_morton).map_err(|e| WorkerError::Mismatch(crate::errors::message(&e)))? as usize,
        morton: inputs.parent_morton,
        granules,
    };
    let job = job.with_index(Arc::default());
    Ok(process_cell(&job, &sink, &cell, CellMode::Replace).await)
}

/// The template must have been made for this pipeline and the cell must belong to it.
fn check_template(inputs: &WorkerInputs, sink: &ZarrSink) -> Result<(), WorkerError> {
    let t = sink.template();
    let mismatch = |what: String| WorkerError::Mismatch(format!("store {}: {what}", inputs.store_url));
    if let Some(p) = inputs.parent_order
        && p != t.parent_order
    {
        return Err(mismatch(format!("parent_order: store {}, event {p}", t.parent_order)));
    }
    let child = inputs.pipeline.output.grid.child_order;
    if let Some(c) = inputs.child_order
        && c != child
    {
        return Err(mismatch(format!("child_order: config {child}, event {c}")));
    }
    if child != t.child_order {
        return Err(mismatch(format!("output.grid.child_order: store {}, config {child}", t.child_order)));
    }
    if let Some(i) = inputs.chunk_idx {
        let actual = sink.chunk_index(inputs.parent_morton).map_err(|e| mismatch(crate::errors::message(&e)))?;
        if actual != i {
            return Err(mismatch(format!("chunk_idx: cell {} is chunk {actual} of the store, event says {i}", inputs.parent_morton)));
        }
    }
    // Same pipeline: compare the definition's pipeline part (the catalog part is the
    // orchestrator's business; it made the template from its catalog).
    if let Some(stored) = StoreDefinition::of_template(t) {
        let compiled = inputs.pipeline.compile().map_err(|e| mismatch(crate::errors::message(&e)))?;
        let parents = match &t.layout {
            crate::sink::StoreLayout::Compact { parents } => parents.clone(),
            crate::sink::StoreLayout::FullSphere => Vec::new(),
        };
        let mine = StoreDefinition::new(&inputs.pipeline, &compiled, t.parent_order, &parents, stored.catalog_sha256.as_deref())
            .map_err(|e| mismatch(crate::errors::message(&e)))?;
        let differences: Vec<String> =
            stored.differences(&mine).into_iter().filter(|d| !d.starts_with("catalog")).collect();
        if !differences.is_empty() {
            return Err(mismatch(format!("the template was made for another pipeline: {}", differences.join("; "))));
        }
    }
    Ok(())
}
