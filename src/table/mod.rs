//! Granules as a DataFusion table.
//!
//! One row per segment of every beam of every granule. Columns: `granule` (file name),
//! `beam` (the group), `row` (index in the beam), then the data-source columns of a
//! pipeline config (`latitude`, `longitude`, the variables, the quality column) and any
//! extra `--var` datasets.
//!
//! Why a hand-written `TableProvider` + `ExecutionPlan` and not DataFusion's file stack
//! (`FileFormat`/`FileOpener`): the unit of parallel work is a granule x beam, not a file,
//! and the cell predicate changes *which rows of which datasets* are fetched (latitude and
//! longitude first, then the other datasets only for the chunks under the cell). A
//! `FileOpener` yields one stream per file and would serialise the six beams.
//!
//! What makes a query fast (see `docs/sql.md`):
//! - projection: only the datasets of selected columns are read;
//! - `quality = v`: applied while reading;
//! - a parent-cell predicate ([`filter`]): only rows in the cell, only chunks under them,
//!   only granules whose catalog entry lists the cell.

mod bounds;
pub mod exec;
pub mod filter;
pub mod index;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use parking_lot::Mutex;

use crate::catalog::Catalog;
use crate::h5::{H5Error, H5File, ReadOptions};
use crate::store::StoreOptions;

pub use exec::GranuleScanExec;
pub use filter::{CellFilter, Pushed};
pub use index::{CoordinateIndex, IndexError, IndexSpec};
pub use crate::source::{ColumnSource, META_COLUMNS, POINT_CELL, POINT_CELL_ORDER, SourceSpec};

/// Errors building or scanning a granule table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// A granule could not be read (the reader's message names the granule).
    #[error("{source}")]
    Granule {
        /// The granule URL.
        url: String,
        /// The reader's error (names the dataset); boxed, as the largest variant of an
        /// error returned on every scan path.
        source: Box<H5Error>,
    },
    /// Datasets of one beam disagree in length.
    #[error("granule {url}: {dataset} has {got} rows, expected {expected} like {reference}")]
    Length {
        /// The granule URL.
        url: String,
        /// The dataset with the odd length.
        dataset: String,
        /// Its length.
        got: u64,
        /// The length of the reference dataset.
        expected: u64,
        /// The reference dataset (latitude).
        reference: String,
    },
    /// No granule has a dataset the table needs, so its type is unknown.
    #[error("no granule has {dataset} in any of the groups {groups}; cannot infer the type of column {column:?}")]
    NoSchema {
        /// The column.
        column: String,
        /// The path template.
        dataset: String,
        /// The groups searched.
        groups: String,
    },
    /// The table has no granules.
    #[error("no granules to read: {0}")]
    Empty(String),
    /// A file pattern could not be expanded.
    #[error("{pattern}: {detail}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// What went wrong.
        detail: String,
    },
    /// Arrow failed on a batch (a bug or a type the table cannot handle).
    #[error("granule {url}: {source}")]
    Arrow {
        /// The granule URL.
        url: String,
        /// The cause.
        source: arrow::error::ArrowError,
    },
    /// A data column takes a name the table uses itself, or two columns collide.
    #[error(transparent)]
    Column(#[from] crate::source::SourceError),
    /// A task failed (a panic in a worker thread: a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<TableError> for DataFusionError {
    fn from(e: TableError) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

/// What to do with values equal to a dataset's fill value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FillHandling {
    /// Make them NULL (SQL aggregates skip NULLs): the default.
    #[default]
    Null,
    /// Drop rows where any selected column holds its fill value.
    Drop,
}

/// How the table reads granules.
#[derive(Debug, Clone)]
pub struct GranuleTableOptions {
    /// Table name in SQL.
    pub name: String,
    /// Groups (beams) read in every granule.
    pub groups: Vec<String>,
    /// Data columns; `latitude` and `longitude` first.
    pub columns: Vec<ColumnSource>,
    /// Fill values become NULL or drop their row.
    pub fill: FillHandling,
    /// Report and skip granules that cannot be read instead of failing the query.
    pub skip_bad_granules: bool,
    /// Cell restriction set by the caller (the job), in addition to SQL predicates.
    pub cell: Option<CellFilter>,
    /// Object store settings.
    pub store: StoreOptions,
    /// Reader settings.
    pub read: ReadOptions,
    /// Units (granule x beam) read ahead per partition, to overlap I/O with decoding.
    pub prefetch: usize,
    /// Read every granule through this store instead of resolving its URL (granule URLs
    /// are then paths inside it). Tests wrap a store to count requests; Lambda can pass a
    /// store with injected credentials.
    pub object_store: Option<Arc<dyn object_store::ObjectStore>>,
    /// Which cells each coordinate chunk touches, learned while scanning and shared by the
    /// scans of one run: a granule crosses several parent cells, and after its first
    /// cell the others decode only the latitude/longitude chunks that reach them.
    pub coord_index: Option<Arc<CoordinateIndex>>,
    /// Latitude convention of the [`POINT_CELL`] column (the pipeline's `output.latitude`).
    pub cell_mode: magg_udfs::healpix::LatitudeMode,
}

impl GranuleTableOptions {
    /// Options reading `source` (a pipeline config's [`SourceSpec`], or one built for
    /// `magg sql --files`), with default reader settings.
    pub fn new(source: SourceSpec) -> Self {
        Self {
            name: source.name,
            groups: source.groups,
            columns: source.columns,
            fill: FillHandling::Null,
            skip_bad_granules: false,
            cell: None,
            store: StoreOptions::default(),
            read: ReadOptions::default(),
            prefetch: 2,
            object_store: None,
            coord_index: None,
            cell_mode: source.cell_mode,
        }
    }
}

/// One granule and, when it came from a catalog, the parent cells that list it.
#[derive(Debug, Clone, PartialEq)]
pub struct GranuleRef {
    /// URL or local path.
    pub url: String,
    /// Parent cells (morton) whose catalog entry lists the granule, and their order.
    pub cells: Option<(u8, Vec<i64>)>,
}

impl GranuleRef {
    /// Whether the granule may hold rows of `cell`: true unless its catalog cells prove
    /// otherwise.
    pub fn may_touch(&self, cell: &CellFilter) -> bool {
        let Some((order, cells)) = &self.cells else { return true };
        let common = (*order).min(cell.parent_order);
        let Some(target) = parent_nested(cell.parent, cell.parent_order, common) else { return true };
        cells.iter().any(|m| {
            magg_udfs::morton::to_nested(*m)
                .ok()
                .and_then(|(n, o)| parent_nested(n, o, common))
                .is_none_or(|p| p == target)
        })
    }
}

/// Open a granule as the options say: through the override store, or by its URL.
pub(crate) async fn open_granule(options: &GranuleTableOptions, url: &str) -> Result<H5File, H5Error> {
    match &options.object_store {
        Some(store) => {
            let location = object_store::path::Path::from(url.trim_start_matches('/'));
            H5File::open(Arc::clone(store), location, url, &options.read).await
        }
        None => H5File::open_url(url, &options.store, &options.read).await,
    }
}

fn parent_nested(cell: u64, from: u8, to: u8) -> Option<u64> {
    (to <= from).then(|| cell >> (2 * u32::from(from - to)))
}

/// Granules from a catalog: every granule once, with the cells that list it.
pub fn granules_from_catalog(catalog: &Catalog) -> Vec<GranuleRef> {
    let order = catalog.metadata.parent_order;
    let mut out: indexmap::IndexMap<String, Vec<i64>> = indexmap::IndexMap::new();
    for cell in catalog.cells() {
        for url in cell.granules {
            out.entry(url).or_default().push(cell.morton);
        }
    }
    out.into_iter()
        .map(|(url, cells)| GranuleRef { url, cells: Some((order, cells)) })
        .collect()
}

/// Granules from paths, URLs and local glob patterns (`data/*.h5`).
pub fn granules_from_patterns(patterns: &[String]) -> Result<Vec<GranuleRef>, TableError> {
    let mut out = Vec::new();
    for p in patterns {
        let is_url = p.contains("://") && !p.starts_with("file://");
        if !is_url && p.contains(['*', '?', '[']) {
            let paths = glob::glob(p).map_err(|e| TableError::Pattern { pattern: p.clone(), detail: e.to_string() })?;
            let mut found: Vec<String> = Vec::new();
            for entry in paths {
                let path = entry.map_err(|e| TableError::Pattern { pattern: p.clone(), detail: e.to_string() })?;
                found.push(path.to_string_lossy().into_owned());
            }
            if found.is_empty() {
                return Err(TableError::Pattern { pattern: p.clone(), detail: "matches no file".into() });
            }
            found.sort();
            out.extend(found.into_iter().map(|url| GranuleRef { url, cells: None }));
        } else {
            out.push(GranuleRef { url: p.clone(), cells: None });
        }
    }
    // A file matched by two patterns, or named twice, is one granule: read once.
    let mut seen = HashSet::new();
    out.retain(|g| seen.insert(crate::store::normalize_url(&g.url)));
    Ok(out)
}

/// A beam of a granule that has no coordinates to read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct AbsentBeam {
    /// The granule URL.
    pub granule: String,
    /// The group (beam).
    pub group: String,
    /// `group` when the whole group is missing, else the missing dataset's path.
    pub missing: String,
}

/// Counters a scan updates, for reports (`--report`) and tests.
#[derive(Debug, Default)]
pub struct ScanMetrics {
    /// Granules opened.
    pub granules_opened: AtomicU64,
    /// Granules not opened because their catalog entry does not list the cell.
    pub granules_pruned: AtomicU64,
    /// Rows whose coordinates were examined (or all rows read without a cell filter).
    pub rows_scanned: AtomicU64,
    /// Rows inside the cell (before the quality filter).
    pub rows_in_cell: AtomicU64,
    /// Rows returned.
    pub rows_kept: AtomicU64,
    /// Granules skipped with `skip_bad_granules`, with the error.
    pub bad_granules: Mutex<Vec<(String, String)>>,
    /// Beams read as empty because their coordinates are absent: (granule URL, group,
    /// what is missing). Real granules lack beams that were off; a corrupted name looks
    /// the same to the reader, so reports list them instead of hiding them.
    pub absent_beams: Mutex<Vec<AbsentBeam>>,
}

impl ScanMetrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Read a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The granule table.
#[derive(Debug)]
pub struct GranuleTable {
    options: Arc<GranuleTableOptions>,
    granules: Vec<GranuleRef>,
    schema: SchemaRef,
    /// Integer data columns equality can be pushed to.
    int_columns: Vec<String>,
    metrics: Arc<ScanMetrics>,
}

/// Column names must not shadow the table's own columns, nor each other.
fn check_columns(options: &GranuleTableOptions) -> Result<(), TableError> {
    let spec = SourceSpec {
        name: options.name.clone(),
        groups: options.groups.clone(),
        columns: options.columns.clone(),
        keys: options.columns.iter().map(|c| format!("column {}", c.name)).collect(),
        cell_mode: options.cell_mode,
    };
    Ok(spec.check()?)
}

impl GranuleTable {
    /// Build the table; the column types come from the first granule that has each
    /// dataset (granules are opened until every type is known).
    pub async fn try_new(options: GranuleTableOptions, granules: Vec<GranuleRef>) -> Result<Self, TableError> {
        if granules.is_empty() {
            return Err(TableError::Empty("the catalog or file list is empty".into()));
        }
        check_columns(&options)?;
        let mut types: Vec<Option<DataType>> = vec![None; options.columns.len()];
        let mut last_err = None;
        for g in &granules {
            if types.iter().all(Option::is_some) {
                break;
            }
            let file = match open_granule(&options, &g.url).await {
                Ok(f) => f,
                Err(source) => {
                    if options.skip_bad_granules {
                        last_err = Some(TableError::Granule { url: g.url.clone(), source: Box::new(source) });
                        continue;
                    }
                    return Err(TableError::Granule { url: g.url.clone(), source: Box::new(source) });
                }
            };
            for (i, col) in options.columns.iter().enumerate() {
                if types[i].is_some() {
                    continue;
                }
                for group in &options.groups {
                    let path = col.path(group);
                    match file.dataset_info(&path).await {
                        Ok(info) => {
                            types[i] = Some(info.data_type.clone());
                            break;
                        }
                        Err(H5Error::NotFound { .. }) => {}
                        Err(source) => return Err(TableError::Granule { url: g.url.clone(), source: Box::new(source) }),
                    }
                }
            }
        }
        let mut fields = vec![
            Field::new("granule", DataType::Utf8, false),
            Field::new("beam", DataType::Utf8, false),
            Field::new("row", DataType::UInt64, false),
        ];
        let mut int_columns = Vec::new();
        for (col, ty) in options.columns.iter().zip(types) {
            let Some(ty) = ty else {
                if let Some(e) = last_err {
                    return Err(e);
                }
                return Err(TableError::NoSchema {
                    column: col.name.clone(),
                    dataset: col.template.clone(),
                    groups: options.groups.join(", "),
                });
            };
            if ty.is_integer() {
                int_columns.push(col.name.clone());
            }
            fields.push(Field::new(&col.name, ty, true));
        }
        // Data columns never take this name (`SourceSpec::check`).
        fields.push(Field::new(POINT_CELL, DataType::UInt64, true));
        Ok(Self {
            options: Arc::new(options),
            granules,
            schema: Arc::new(Schema::new(fields)),
            int_columns,
            metrics: Arc::new(ScanMetrics::default()),
        })
    }

    /// A table whose schema is already known (from an earlier [`Self::try_new`] with the
    /// same options), so no granule is opened before the scan. The job uses it for every
    /// cell after the first.
    pub fn with_schema(options: GranuleTableOptions, granules: Vec<GranuleRef>, schema: SchemaRef) -> Self {
        let int_columns = schema
            .fields()
            .iter()
            .skip(META_COLUMNS.len())
            .take(options.columns.len())
            .filter(|f| f.data_type().is_integer())
            .map(|f| f.name().clone())
            .collect();
        Self {
            options: Arc::new(options),
            granules,
            schema,
            int_columns,
            metrics: Arc::new(ScanMetrics::default()),
        }
    }

    /// The table schema.
    pub fn schema_ref(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The table's counters (shared by all its scans).
    pub fn metrics(&self) -> Arc<ScanMetrics> {
        Arc::clone(&self.metrics)
    }

    /// The granules.
    pub fn granules(&self) -> &[GranuleRef] {
        &self.granules
    }

    /// The options.
    pub fn options(&self) -> &GranuleTableOptions {
        &self.options
    }

    /// Index of the [`POINT_CELL`] column in the table schema, when the table has it.
    fn point_cell_index(&self) -> Option<usize> {
        let i = META_COLUMNS.len() + self.options.columns.len();
        (self.schema.fields().get(i).is_some_and(|f| f.name() == POINT_CELL)).then_some(i)
    }

    fn recognise(&self, e: &Expr) -> Option<Pushed> {
        let point_cell = self.point_cell_index().map(|_| (POINT_CELL, self.options.cell_mode));
        filter::recognise(e, "latitude", "longitude", &self.int_columns, point_cell)
    }
}

#[async_trait]
impl TableProvider for GranuleTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.recognise(f).is_some() {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut equals = Vec::new();
        let mut cells: Vec<CellFilter> = self.options.cell.iter().copied().collect();
        for f in filters {
            match self.recognise(f) {
                Some(Pushed::Equals { column, value }) => equals.push((column, value)),
                Some(Pushed::Cell(c)) => cells.push(c),
                None => {
                    return Err(DataFusionError::Internal(format!(
                        "granule table {} was given a filter it did not accept: {f}",
                        self.options.name
                    )));
                }
            }
        }
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let mut units = Vec::new();
        let mut seen = HashSet::new();
        for g in &self.granules {
            if !cells.iter().all(|c| g.may_touch(c)) {
                if seen.insert(g.url.clone()) {
                    ScanMetrics::add(&self.metrics.granules_pruned, 1);
                }
                continue;
            }
            let url: Arc<str> = Arc::from(g.url.as_str());
            let groups: Vec<Arc<str>> = self.options.groups.iter().map(|g| Arc::from(g.as_str())).collect();
            if self.options.skip_bad_granules {
                units.push(exec::Unit { url, groups });
            } else {
                units.extend(groups.into_iter().map(|group| exec::Unit { url: Arc::clone(&url), groups: vec![group] }));
            }
        }
        let partitions = state.config().target_partitions().max(1);
        let plan = GranuleScanExec::new(
            Arc::clone(&self.options),
            Arc::clone(&self.schema),
            projection,
            equals,
            cells,
            units,
            partitions,
            Arc::clone(&self.metrics),
            self.point_cell_index(),
        )?;
        Ok(Arc::new(plan))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_pruning_compares_at_the_coarser_order() {
        let (n6, _) = magg_udfs::morton::to_nested(-4_211_322).unwrap();
        let g = GranuleRef { url: "a.h5".into(), cells: Some((6, vec![-4_211_322])) };
        let same = CellFilter { hash_order: 18, parent_order: 6, parent: n6, mode: Default::default() };
        assert!(g.may_touch(&same));
        let other = CellFilter { parent: n6 + 1, ..same };
        assert!(!g.may_touch(&other));
        // A finer cell inside the listed parent may be touched; one outside may not.
        let child = CellFilter { parent_order: 8, parent: n6 * 16 + 3, ..same };
        assert!(g.may_touch(&child));
        let foreign_child = CellFilter { parent_order: 8, parent: (n6 + 1) * 16, ..same };
        assert!(!g.may_touch(&foreign_child));
        // No catalog information: always read.
        assert!(GranuleRef { url: "b.h5".into(), cells: None }.may_touch(&other));
    }

    #[test]
    fn patterns_expand_sorted_and_report_empty_matches() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.h5", "a.h5", "c.txt"] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        let pat = format!("{}/*.h5", dir.path().display());
        let got = granules_from_patterns(std::slice::from_ref(&pat)).unwrap();
        let names: Vec<_> = got.iter().map(|g| g.url.rsplit('/').next().unwrap().to_owned()).collect();
        assert_eq!(names, ["a.h5", "b.h5"]);
        let none = format!("{}/*.nc", dir.path().display());
        let err = granules_from_patterns(std::slice::from_ref(&none)).unwrap_err();
        assert_eq!(err.to_string(), format!("{none}: matches no file"));
    }
}
