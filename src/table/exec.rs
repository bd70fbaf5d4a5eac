//! The scan: granule x beam units spread over partitions, streamed as Arrow batches.
//!
//! Each partition reads its units in order with a small read-ahead (`prefetch`), so I/O
//! of the next beam overlaps decoding of the current one while memory stays bounded by
//! `partitions x prefetch` beams whatever the number of granules. A granule's metadata is
//! opened once and shared by the beams that need it, then dropped when its last beam is
//! done.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBufferBuilder, Float64Array, RecordBatch, RecordBatchOptions,
    StringArray, UInt64Array,
};
use arrow::compute::kernels::cmp;
use arrow::compute::{cast, filter, nullif, or_kleene};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream,
};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use super::{CellFilter, FillHandling, GranuleTableOptions, ScanMetrics, TableError};
use crate::h5::{FillValue, H5Error, H5File, RowSelection};

/// One unit of work: beams of a granule. Normally one beam; with `skip_bad_granules` all
/// beams of the granule, so a granule that fails in any beam contributes no row at all
/// (its other beams' batches are held back until every beam has been read).
#[derive(Debug, Clone)]
pub struct Unit {
    /// Granule URL.
    pub url: Arc<str>,
    /// Groups (beams).
    pub groups: Vec<Arc<str>>,
}

/// Opened granules shared between the units of one scan, dropped after their last unit.
#[derive(Debug, Default)]
struct FileCache {
    entries: parking_lot::Mutex<HashMap<Arc<str>, CachedFile>>,
}

/// A granule opened (or being opened) once for a scan, and how many units still use it.
type CachedFile = (Arc<OnceCell<H5File>>, usize);

impl FileCache {
    fn expect(&self, units: &[Unit]) {
        let mut e = self.entries.lock();
        for u in units {
            e.entry(Arc::clone(&u.url)).or_insert_with(|| (Arc::new(OnceCell::new()), 0)).1 += 1;
        }
    }

    fn cell(&self, url: &Arc<str>) -> Arc<OnceCell<H5File>> {
        let mut e = self.entries.lock();
        Arc::clone(&e.entry(Arc::clone(url)).or_insert_with(|| (Arc::new(OnceCell::new()), 1)).0)
    }

    fn done(&self, url: &Arc<str>) {
        let mut e = self.entries.lock();
        if let Some(entry) = e.get_mut(url) {
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 == 0 {
                e.remove(url);
            }
        }
    }
}

/// Everything the partitions of one scan share.
#[derive(Debug)]
struct Shared {
    options: Arc<GranuleTableOptions>,
    /// Full table schema.
    table_schema: SchemaRef,
    /// Output schema (projected).
    schema: SchemaRef,
    /// Indices into the table schema.
    projection: Vec<usize>,
    equals: Vec<(String, i64)>,
    cells: Vec<CellFilter>,
    /// The lat/lon box of the single cell predicate, when there is one (computed once
    /// per scan, not per beam).
    cell_box: Option<super::bounds::CellBox>,
    metrics: Arc<ScanMetrics>,
    files: FileCache,
    /// Index of the per-point cell column in the table schema, if the table has one.
    point_cell: Option<usize>,
}

/// The physical scan of a granule table.
#[derive(Debug)]
pub struct GranuleScanExec {
    shared: Arc<Shared>,
    partitions: Vec<Vec<Unit>>,
    properties: Arc<PlanProperties>,
}

impl GranuleScanExec {
    /// Plan a scan of `units` over `partitions` partitions.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        options: Arc<GranuleTableOptions>,
        table_schema: SchemaRef,
        projection: Vec<usize>,
        equals: Vec<(String, i64)>,
        cells: Vec<CellFilter>,
        units: Vec<Unit>,
        partitions: usize,
        metrics: Arc<ScanMetrics>,
        point_cell: Option<usize>,
    ) -> DfResult<Self> {
        let schema = Arc::new(table_schema.project(&projection)?);
        // Round-robin keeps the beams of one granule on different partitions, so a single
        // granule still uses every core.
        let n = partitions.min(units.len()).max(1);
        let mut parts = vec![Vec::new(); n];
        for (i, u) in units.into_iter().enumerate() {
            parts[i % n].push(u);
        }
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(n),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        let shared = Shared {
            options,
            table_schema,
            schema,
            projection,
            equals,
            cell_box: if cells.len() == 1 { super::bounds::CellBox::of(&cells[0]) } else { None },
            cells,
            metrics,
            files: FileCache::default(),
            point_cell,
        };
        for p in &parts {
            shared.files.expect(p);
        }
        Ok(Self { shared: Arc::new(shared), partitions: parts, properties: Arc::new(properties) })
    }

    /// Number of units (granule x beam) the scan reads.
    pub fn units(&self) -> usize {
        self.partitions.iter().map(Vec::len).sum()
    }
}

impl DisplayAs for GranuleScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let s = &self.shared;
        let cols: Vec<&str> = s.schema.fields().iter().map(|f| f.name().as_str()).collect();
        let granules: std::collections::HashSet<&str> =
            self.partitions.iter().flatten().map(|u| &*u.url).collect();
        write!(
            f,
            "GranuleScanExec: table={}, granules={}, units={}, partitions={}, projection=[{}]",
            s.options.name,
            granules.len(),
            self.units(),
            self.partitions.len(),
            cols.join(", ")
        )?;
        for (c, v) in &s.equals {
            write!(f, ", pushed={c}={v}")?;
        }
        for c in &s.cells {
            let m = c.morton().map(|m| format!(" (morton {m})")).unwrap_or_default();
            write!(
                f,
                ", cell=order {} nested {}{m} hashed at order {} ({:?})",
                c.parent_order, c.parent, c.hash_order, c.mode
            )?;
        }
        Ok(())
    }
}

impl ExecutionPlan for GranuleScanExec {
    fn name(&self) -> &str {
        "GranuleScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let units = self.partitions.get(partition).cloned().unwrap_or_default();
        let shared = Arc::clone(&self.shared);
        let prefetch = shared.options.prefetch.max(1);
        let stream = futures::stream::iter(units)
            .map(move |unit| {
                let shared = Arc::clone(&shared);
                async move { read_unit_guarded(&shared, &unit).await }
            })
            .buffered(prefetch)
            .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok::<RecordBatch, TableError>)))
            .try_flatten()
            .map_err(datafusion::error::DataFusionError::from);
        Ok(Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.shared.schema), stream)))
    }
}

/// Read a unit; with `skip_bad_granules`, a granule error is recorded and the unit is
/// empty. The file cache entry is released either way.
async fn read_unit_guarded(shared: &Shared, unit: &Unit) -> Result<Vec<RecordBatch>, TableError> {
    let mut result = Ok(Vec::new());
    for group in &unit.groups {
        match read_beam(shared, &unit.url, group).await {
            Ok(Some(b)) => {
                if let Ok(v) = &mut result {
                    v.push(b);
                }
            }
            Ok(None) => {}
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    shared.files.done(&unit.url);
    match result {
        Err(e @ (TableError::Granule { .. } | TableError::Length { .. })) if shared.options.skip_bad_granules => {
            let mut bad = shared.metrics.bad_granules.lock();
            if !bad.iter().any(|(u, _)| u == &*unit.url) {
                eprintln!("magg: skipping bad granule: {e}");
                bad.push((unit.url.to_string(), e.to_string()));
            }
            Ok(Vec::new())
        }
        other => other,
    }
}

async fn open(shared: &Shared, url: &Arc<str>) -> Result<H5File, TableError> {
    let cell = shared.files.cell(url);
    let file = cell
        .get_or_try_init(|| async {
            let f = super::open_granule(&shared.options, url).await;
            if f.is_ok() {
                ScanMetrics::add(&shared.metrics.granules_opened, 1);
            }
            f
        })
        .await
        .map_err(|source| TableError::Granule { url: url.to_string(), source: Box::new(source) })?;
    Ok(file.clone())
}

/// Runs of `true` in `mask` as row ranges.
pub(crate) fn runs(mask: &[bool]) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &m) in mask.iter().enumerate() {
        match (m, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s as u64..i as u64);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s as u64..mask.len() as u64);
    }
    out
}

pub(crate) fn as_f64(url: &str, a: &ArrayRef) -> Result<Float64Array, TableError> {
    let c = cast(a, &DataType::Float64).map_err(|source| TableError::Arrow { url: url.to_owned(), source })?;
    Ok(c.as_any().downcast_ref::<Float64Array>().cloned().unwrap_or_else(|| Float64Array::from(Vec::<f64>::new())))
}

/// Which rows of a beam lie in every cell filter.
fn cell_mask(lat: &Float64Array, lon: &Float64Array, cells: &[CellFilter]) -> Vec<bool> {
    let n = lat.len();
    let mut mask = vec![true; n];
    for c in cells {
        let shift = 2 * u32::from(c.hash_order - c.parent_order);
        for (i, m) in mask.iter_mut().enumerate() {
            if !*m {
                continue;
            }
            let (la, lo) = (lat.value(i), lon.value(i));
            *m = !lat.is_null(i)
                && !lon.is_null(i)
                && la.is_finite()
                && lo.is_finite()
                && magg_udfs::healpix::cell(la, lo, c.hash_order, c.mode).is_ok_and(|h| h >> shift == c.parent);
        }
    }
    mask
}

/// The cells at `c.hash_order` of the points inside the box `b` of `c` (`u64::MAX`
/// outside it, and for invalid coordinates): only those can be in the cell. A track
/// enters and leaves the box once or twice per beam, so the points inside form a few long
/// runs; each run is hashed in place through the vectorised kernel, with no gathered copy.
fn hash_boxed(lat: &Float64Array, lon: &Float64Array, c: &CellFilter, b: &super::bounds::CellBox) -> Vec<u64> {
    let (la, lo) = (lat.values(), lon.values());
    let n = lat.len();
    let no_nulls = lat.null_count() == 0 && lon.null_count() == 0;
    let inside = |i: usize| (no_nulls || (lat.is_valid(i) && lon.is_valid(i))) && lo[i].is_finite() && b.may_contain(la[i], lo[i]);
    let mut hashes = vec![u64::MAX; n];
    let mut run = Vec::new();
    let mut i = 0;
    while i < n {
        if !inside(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && inside(i) {
            i += 1;
        }
        run.clear();
        hash_into(&la[start..i], &lo[start..i], c.hash_order, c.mode, &mut run);
        hashes[start..i].copy_from_slice(&run);
    }
    hashes
}

/// The cells at order [`super::POINT_CELL_ORDER`] of coordinate arrays (`u64::MAX` for
/// NULL or invalid coordinates).
fn point_cells_of(url: &str, lat: &ArrayRef, lon: &ArrayRef, mode: magg_udfs::healpix::LatitudeMode) -> Result<Vec<u64>, TableError> {
    Ok(hash_points(&as_f64(url, lat)?, &as_f64(url, lon)?, super::POINT_CELL_ORDER, mode))
}

/// The per-point cell column: `NULL` where a point has no cell.
fn point_cell_array(cells: Vec<u64>) -> UInt64Array {
    let nulls = cells.contains(&u64::MAX).then(|| cells.iter().map(|&h| h != u64::MAX).collect::<arrow::buffer::NullBuffer>());
    UInt64Array::new(cells.into(), nulls)
}

/// Every point's cell at `order` (`u64::MAX` for NULL, non-finite or out-of-range
/// coordinates).
pub(crate) fn hash_points(lat: &Float64Array, lon: &Float64Array, order: u8, mode: magg_udfs::healpix::LatitudeMode) -> Vec<u64> {
    if lat.null_count() == 0 && lon.null_count() == 0 {
        return hash_slices(lat.values(), lon.values(), order, mode);
    }
    let (la, lo) = (lat.values(), lon.values());
    (0..lat.len())
        .map(|i| {
            if lat.is_valid(i) && lon.is_valid(i) {
                magg_udfs::healpix::cell(la[i], lo[i], order, mode).unwrap_or(u64::MAX)
            } else {
                u64::MAX
            }
        })
        .collect()
}

/// Cells of valid points through the vectorised kernel (its libm-free fast path); when a
/// coordinate is invalid (NaN, |lat| > 90), point by point with `u64::MAX` for the bad ones.
fn hash_slices(lat: &[f64], lon: &[f64], order: u8, mode: magg_udfs::healpix::LatitudeMode) -> Vec<u64> {
    let mut out = Vec::with_capacity(lat.len());
    hash_into(lat, lon, order, mode, &mut out);
    out
}

/// [`hash_slices`] appending to `out`.
fn hash_into(lat: &[f64], lon: &[f64], order: u8, mode: magg_udfs::healpix::LatitudeMode, out: &mut Vec<u64>) {
    let len = out.len();
    if magg_udfs::healpix::cells_into(lat, lon, order, mode, out).is_ok() {
        return;
    }
    out.truncate(len);
    out.extend(lat.iter().zip(lon).map(|(&la, &lo)| magg_udfs::healpix::cell(la, lo, order, mode).unwrap_or(u64::MAX)));
}

/// `array == fill` as a boolean mask (NULL where the array is NULL).
fn fill_mask(url: &str, array: &ArrayRef, fill: &FillValue) -> Result<Option<BooleanArray>, TableError> {
    let f64_value = match fill {
        FillValue::Float(v) => *v,
        FillValue::Int(v) => *v as f64,
        FillValue::UInt(v) => *v as f64,
    };
    let scalar = match fill {
        FillValue::Int(v) => cast(&(Arc::new(arrow::array::Int64Array::from(vec![*v])) as ArrayRef), array.data_type()),
        FillValue::UInt(v) => cast(&(Arc::new(UInt64Array::from(vec![*v])) as ArrayRef), array.data_type()),
        FillValue::Float(_) => cast(&(Arc::new(Float64Array::from(vec![f64_value])) as ArrayRef), array.data_type()),
    }
    .map_err(|source| TableError::Arrow { url: url.to_owned(), source })?;
    if scalar.is_null(0) {
        // The fill value does not fit the type (e.g. a float fill on an int dataset).
        return Ok(None);
    }
    let mask = cmp::eq(array, &arrow::array::Scalar::new(scalar))
        .map_err(|source| TableError::Arrow { url: url.to_owned(), source })?;
    Ok((mask.true_count() > 0).then_some(mask))
}

async fn read_beam(shared: &Shared, url_arc: &Arc<str>, group: &str) -> Result<Option<RecordBatch>, TableError> {
    let url = &**url_arc;
    let opts = &shared.options;
    let file = open(shared, url_arc).await?;
    let granule_err = |source: H5Error| TableError::Granule { url: url.to_owned(), source: Box::new(source) };

    // Data columns the output or a pushed filter needs, by index into opts.columns.
    let n_meta = super::META_COLUMNS.len();
    let n_data = opts.columns.len();
    let wants_cell = shared.point_cell.is_some_and(|i| shared.projection.contains(&i));
    let mut needed: Vec<usize> =
        shared.projection.iter().filter(|&&i| i >= n_meta && i < n_meta + n_data).map(|&i| i - n_meta).collect();
    if wants_cell && shared.cells.is_empty() {
        // Without a cell filter the point cells are hashed from the coordinates read below.
        for i in [0, 1] {
            if !needed.contains(&i) {
                needed.push(i);
            }
        }
    }
    for (c, _) in &shared.equals {
        if let Some(i) = opts.columns.iter().position(|col| &col.name == c)
            && !needed.contains(&i)
        {
            needed.push(i);
        }
    }

    // Every dataset the beam may read is resolved up front, together (one metadata
    // planner and one parse for the beam instead of one per dataset); the reads below
    // then find them cached. An absent beam (the latitude dataset is missing) is empty,
    // not an error: real granules lack beams that were off or over the ocean. Errors of
    // the other datasets are reported where they are read, after it is known whether the
    // beam has rows here.
    let lat_col = &opts.columns[0];
    let lon_col = &opts.columns[1];
    let (lat_path, lon_path) = (lat_col.path(group), lon_col.path(group));
    let mut paths = vec![lat_path.clone(), lon_path.clone()];
    paths.extend(needed.iter().filter(|&&i| i > 1).map(|&i| opts.columns[i].path(group)));
    // With a coordinate index, the latitude's row count first: the index may say the beam
    // has nothing in the cell, and then no other dataset is looked at.
    let index = opts.coord_index.as_ref().filter(|_| shared.cells.len() == 1);
    let first = if index.is_some() { &paths[..1] } else { &paths[..] };
    let lat_info = match file.dataset_infos(first).await.swap_remove(0) {
        Ok(info) => info,
        Err(H5Error::NotFound { .. }) => {
            // Absent beams are legitimate (a laser off), but a corrupted name reads the
            // same: say which, so reports can tell them apart.
            let group_path = match lat_col.template.split_once("{group}") {
                Some((before, _)) => format!("{before}{group}"),
                None => format!("/{group}"),
            };
            let missing = match file.exists(&group_path).await {
                Ok(false) => "group".to_owned(),
                _ => lat_path.clone(),
            };
            let absent = super::AbsentBeam { granule: url.to_owned(), group: group.to_owned(), missing };
            let mut list = shared.metrics.absent_beams.lock();
            if !list.contains(&absent) {
                list.push(absent);
            }
            return Ok(None);
        }
        Err(e) => return Err(granule_err(e)),
    };
    let n_rows = lat_info.shape.first().copied().unwrap_or(0);
    if n_rows == 0 {
        return Ok(None);
    }

    // Step 1: with a cell filter, coordinates decide which rows (and so chunks) to read.
    let mut values: HashMap<usize, ArrayRef> = HashMap::new();
    let mut point_cells: Option<Vec<u64>> = None;
    let (selection, selected_rows): (RowSelection, Vec<Range<u64>>) = if shared.cells.is_empty() {
        ScanMetrics::add(&shared.metrics.rows_scanned, n_rows);
        (RowSelection::All, std::iter::once(0..n_rows).collect())
    } else {
        // Rows worth decoding: every row, or only the chunks the run's coordinate index
        // says reach the cell (none: the beam is done without reading anything).
        let group_arc: Arc<str> = Arc::from(group);
        let known = index.and_then(|ix| ix.chunks_touching(url_arc, &group_arc, &shared.cells[0], file.size(), n_rows));
        let scan: Vec<Range<u64>> = known.clone().unwrap_or_else(|| std::iter::once(0..n_rows).collect());
        if scan.is_empty() {
            return Ok(None);
        }
        if index.is_some() {
            // The rest of the beam's datasets (results are cached; errors come back when
            // they are read).
            file.dataset_infos(&paths[1..]).await;
        }
        let sel = if known.is_none() { RowSelection::All } else { RowSelection::Ranges(scan.clone()) };
        let coord_requests = [(lat_path.clone(), sel.clone()), (lon_path.clone(), sel)];
        let coords = file.read_many(&coord_requests).await.map_err(granule_err)?;
        let lat = as_f64(url, &coords[0])?;
        let lon = as_f64(url, &coords[1])?;
        let expected: u64 = scan.iter().map(|r| r.end - r.start).sum();
        if lon.len() as u64 != expected || lat.len() as u64 != expected {
            return Err(TableError::Length {
                url: url.to_owned(),
                dataset: lon_path.clone(),
                got: lon.len() as u64,
                expected,
                reference: lat_path,
            });
        }
        ScanMetrics::add(&shared.metrics.rows_scanned, expected);
        // The mask, and every scanned point's cell at the filter's order (valid at least
        // where the mask is true).
        let (mask, hashes) = if shared.cells.len() == 1 {
            let c = &shared.cells[0];
            let hashes = match (index, &known, shared.cell_box) {
                // Indexing the beam: every point's cell is needed.
                (Some(ix), None, _) => {
                    let hashes = hash_points(&lat, &lon, c.hash_order, c.mode);
                    ix.insert(url_arc, &group_arc, super::IndexSpec::of(c), file.size(), &lat_info.chunk_row_ranges(), &hashes);
                    hashes
                }
                // Only membership: hash just the points inside the cell's box.
                (_, _, Some(b)) => hash_boxed(&lat, &lon, c, &b),
                (_, _, None) => hash_points(&lat, &lon, c.hash_order, c.mode),
            };
            let shift = 2 * u32::from(c.hash_order - c.parent_order);
            let mask: Vec<bool> = hashes.iter().map(|&h| h != u64::MAX && h >> shift == c.parent).collect();
            // They are the point cells when the filter hashed at their order and mode.
            (mask, ((c.hash_order, c.mode) == (super::POINT_CELL_ORDER, opts.cell_mode)).then_some(hashes))
        } else {
            (cell_mask(&lat, &lon, &shared.cells), None)
        };
        // Runs of the mask, per scanned range, as absolute rows.
        let mut ranges = Vec::new();
        let mut offset = 0usize;
        for r in &scan {
            let len = (r.end - r.start) as usize;
            ranges.extend(runs(&mask[offset..offset + len]).into_iter().map(|x| x.start + r.start..x.end + r.start));
            offset += len;
        }
        if ranges.is_empty() {
            return Ok(None);
        }
        let mask_arr = BooleanArray::from(mask);
        if wants_cell {
            point_cells = Some(match hashes {
                Some(h) => h.into_iter().zip(mask_arr.values()).filter_map(|(h, m)| m.then_some(h)).collect(),
                None => {
                    let pick = |a: &ArrayRef| filter(a.as_ref(), &mask_arr).map_err(|source| TableError::Arrow { url: url.to_owned(), source });
                    point_cells_of(url, &pick(&coords[0])?, &pick(&coords[1])?, opts.cell_mode)?
                }
            });
        }
        // Keep the coordinates of the selected rows if the output wants them.
        for (idx, arr) in [(0usize, &coords[0]), (1usize, &coords[1])] {
            if needed.contains(&idx) {
                let f = filter(arr.as_ref(), &mask_arr).map_err(|source| TableError::Arrow { url: url.to_owned(), source })?;
                values.insert(idx, f);
            }
        }
        (RowSelection::Ranges(ranges.clone()), ranges)
    };
    let n_selected: u64 = selected_rows.iter().map(|r| r.end - r.start).sum();
    ScanMetrics::add(&shared.metrics.rows_in_cell, n_selected);

    // Step 2: the other datasets, planned together, only for the selected rows.
    let to_read: Vec<usize> = needed.iter().copied().filter(|i| !values.contains_key(i)).collect();
    let requests: Vec<(String, RowSelection)> =
        to_read.iter().map(|&i| (opts.columns[i].path(group), selection.clone())).collect();
    let infos = futures::future::try_join_all(requests.iter().map(|(p, _)| file.dataset_info(p)))
        .await
        .map_err(granule_err)?;
    for (info, (path, _)) in infos.iter().zip(&requests) {
        let len = info.shape.first().copied().unwrap_or(0);
        if len != n_rows {
            return Err(TableError::Length {
                url: url.to_owned(),
                dataset: path.clone(),
                got: len,
                expected: n_rows,
                reference: lat_path.clone(),
            });
        }
    }
    let arrays = if requests.is_empty() { Vec::new() } else { file.read_many(&requests).await.map_err(granule_err)? };
    for ((&i, arr), info) in to_read.iter().zip(arrays).zip(&infos) {
        let arr = match &info.fill_value {
            Some(fill) => match fill_mask(url, &arr, fill)? {
                Some(m) => nullif(arr.as_ref(), &m).map_err(|source| TableError::Arrow { url: url.to_owned(), source })?,
                None => arr,
            },
            None => arr,
        };
        values.insert(i, arr);
    }
    // Coordinates read for the cell filter get the same fill treatment.
    for idx in [0usize, 1] {
        if let (Some(arr), true) = (values.get(&idx).cloned(), needed.contains(&idx) && !shared.cells.is_empty()) {
            let info = if idx == 0 { lat_info.clone() } else { file.dataset_info(&lon_path).await.map_err(granule_err)? };
            if let Some(fill) = &info.fill_value
                && let Some(m) = fill_mask(url, &arr, fill)?
            {
                let a = nullif(arr.as_ref(), &m).map_err(|source| TableError::Arrow { url: url.to_owned(), source })?;
                values.insert(idx, a);
            }
        }
    }

    if let (true, None, Some(la), Some(lo)) = (wants_cell, &point_cells, values.get(&0), values.get(&1)) {
        // No cell filter: from the coordinates read above (fill values are NULL by now).
        point_cells = Some(point_cells_of(url, la, lo, opts.cell_mode)?);
    }

    // Step 3: the row mask of pushed equality filters and fill dropping.
    let n = n_selected as usize;
    let mut keep = BooleanBufferBuilder::new(n);
    keep.append_n(n, true);
    let mut keep = BooleanArray::new(keep.finish(), None);
    for (c, v) in &shared.equals {
        let Some(i) = opts.columns.iter().position(|col| &col.name == c) else { continue };
        let Some(arr) = values.get(&i) else { continue };
        let wanted = cast(&(Arc::new(arrow::array::Int64Array::from(vec![*v])) as ArrayRef), arr.data_type())
            .map_err(|source| TableError::Arrow { url: url.to_owned(), source })?;
        let eq = if wanted.is_null(0) {
            BooleanArray::from(vec![false; n])
        } else {
            cmp::eq(arr, &arrow::array::Scalar::new(wanted)).map_err(|source| TableError::Arrow { url: url.to_owned(), source })?
        };
        keep = arrow::compute::and_kleene(&keep, &eq).map_err(|source| TableError::Arrow { url: url.to_owned(), source })?;
    }
    if opts.fill == FillHandling::Drop {
        let mut any_null = BooleanArray::from(vec![false; n]);
        for &i in &needed {
            if let Some(nulls) = values.get(&i).and_then(|arr| arr.logical_nulls()) {
                let is_null = BooleanArray::new(!nulls.inner(), None);
                any_null = or_kleene(&any_null, &is_null).map_err(|source| TableError::Arrow { url: url.to_owned(), source })?;
            }
        }
        let not_null = arrow::compute::not(&any_null).map_err(|source| TableError::Arrow { url: url.to_owned(), source })?;
        keep = arrow::compute::and_kleene(&keep, &not_null).map_err(|source| TableError::Arrow { url: url.to_owned(), source })?;
    }
    // NULL in the mask (a NULL quality flag) means drop.
    let keep = if keep.null_count() > 0 { arrow::compute::prep_null_mask_filter(&keep) } else { keep };
    let kept = keep.true_count();
    ScanMetrics::add(&shared.metrics.rows_kept, kept as u64);
    if kept == 0 {
        return Ok(None);
    }
    let all_kept = kept == n;

    // Step 4: assemble the projected columns.
    let name = url.rsplit('/').next().unwrap_or(url);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(shared.projection.len());
    for &p in &shared.projection {
        let col: ArrayRef = match p {
            0 => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(name, kept))),
            1 => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(group, kept))),
            p if Some(p) == shared.point_cell => {
                let cells = point_cell_array(point_cells.take().unwrap_or_default());
                if all_kept {
                    Arc::new(cells)
                } else {
                    filter(&cells, &keep).map_err(|source| TableError::Arrow { url: url.to_owned(), source })?
                }
            }
            2 => {
                let rows = UInt64Array::from_iter_values(selected_rows.iter().flat_map(|r| r.clone()));
                if all_kept {
                    Arc::new(rows)
                } else {
                    filter(&rows, &keep).map_err(|source| TableError::Arrow { url: url.to_owned(), source })?
                }
            }
            _ => {
                let arr = values.get(&(p - n_meta)).cloned().ok_or_else(|| TableError::Arrow {
                    url: url.to_owned(),
                    source: arrow::error::ArrowError::InvalidArgumentError(format!(
                        "column {} was not read",
                        shared.table_schema.field(p).name()
                    )),
                })?;
                let arr = if all_kept {
                    arr
                } else {
                    filter(arr.as_ref(), &keep).map_err(|source| TableError::Arrow { url: url.to_owned(), source })?
                };
                let want = shared.table_schema.field(p).data_type();
                if arr.data_type() == want {
                    arr
                } else {
                    cast(&arr, want).map_err(|source| TableError::Arrow { url: url.to_owned(), source })?
                }
            }
        };
        columns.push(col);
    }
    let batch = RecordBatch::try_new_with_options(
        Arc::clone(&shared.schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(kept)),
    )
    .map_err(|source| TableError::Arrow { url: url.to_owned(), source })?;
    Ok(Some(batch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_true() {
        assert_eq!(runs(&[]), Vec::<Range<u64>>::new());
        assert_eq!(runs(&[false, true, true, false, true]), vec![1..3, 4..5]);
        assert_eq!(runs(&[true, true]), vec![0..2]);
    }

    #[test]
    fn cell_mask_matches_direct_hashing() {
        let lat = Float64Array::from(vec![Some(-75.5), Some(-75.5), None, Some(f64::NAN), Some(-75.50001)]);
        let lon = Float64Array::from(vec![Some(123.25), Some(-60.0), Some(0.0), Some(0.0), Some(123.25)]);
        let c18 = magg_udfs::healpix::cell(-75.5, 123.25, 18, Default::default()).unwrap();
        let f = CellFilter { hash_order: 18, parent_order: 6, parent: c18 >> 24, mode: Default::default() };
        assert_eq!(cell_mask(&lat, &lon, &[f]), vec![true, false, false, false, true]);
    }
}
