//! Which parent cells each latitude/longitude chunk of a beam reaches.
//!
//! A beam's track is continuous and a 10,000-row chunk spans about 200 km, so a 100 km
//! parent cell is reached by one or two chunks of each granule that crosses it. Without an
//! index, every cell decodes and hashes every coordinate of every granule listed for it,
//! then keeps a few percent. With one, a cell decodes only the chunks that reach it.
//!
//! The index is exact, not a bounding box: for every chunk it lists the parent cells its
//! points hash into, hashed exactly as the cell predicate hashes them ([`IndexSpec`]). A
//! chunk is skipped only when none of its points falls in the cell, so results are
//! identical with and without it.
//!
//! It is filled two ways: by cell-filtered scans as a side effect (the first cell that
//! reads a beam whole records it; later cells of the run read only their chunks), and by
//! [`build`] (`magg index`), which reads every beam once. It persists as JSON next to the
//! catalog, so later runs and single-cell workers (Lambda) start with it. An entry records
//! the granule's size in bytes and the beam's row count; when either differs from the
//! file being read, the entry is ignored and the beam is read whole.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use magg_udfs::healpix::LatitudeMode;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{CellFilter, GranuleTableOptions, TableError};
use crate::h5::{H5Error, RowSelection};

/// Version written in, and required of, index files.
pub const FORMAT_VERSION: u32 = 1;

/// Errors reading or writing an index file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The file could not be read or written.
    #[error("coordinate index {path}: {source}")]
    Io {
        /// The index file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid index.
    #[error("coordinate index {path}: not a magg coordinate index ({source}); rebuild it with `magg index` or run with --no-index")]
    Json {
        /// The index file.
        path: PathBuf,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// The file is an index of another format version or with an unknown setting.
    #[error("coordinate index {path}: {detail}")]
    Invalid {
        /// The index file.
        path: PathBuf,
        /// What is wrong and what was expected.
        detail: String,
    },
}

/// How points are assigned to cells in an index: hashed at `hash_order` with `mode`, the
/// hash truncated to `order`. An index answers only cell predicates hashed the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IndexSpec {
    /// Order the points are hashed at (18 for the main job's predicate).
    pub hash_order: u8,
    /// Order of the cells recorded per chunk (the catalog's parent order).
    pub order: u8,
    /// Latitude convention.
    pub mode: LatitudeMode,
}

impl IndexSpec {
    /// The spec that answers `cell`'s predicate.
    pub fn of(cell: &CellFilter) -> Self {
        Self { hash_order: cell.hash_order, order: cell.parent_order, mode: cell.mode }
    }

    /// The spec of the main job for a catalog of `parent_order` cells (see
    /// [`CellFilter::from_morton`]: the job hashes at order 18).
    pub fn for_job(parent_order: u8, mode: LatitudeMode) -> Self {
        Self { hash_order: 18, order: parent_order, mode }
    }
}

#[derive(Debug)]
struct BeamIndex {
    spec: IndexSpec,
    /// Size of the granule in bytes, and rows of the beam, when indexed.
    size: u64,
    rows: u64,
    chunks: Vec<(Range<u64>, Vec<u64>)>,
}

impl BeamIndex {
    /// Whether the entry answers predicates hashed as `spec` for a file of `size` bytes
    /// whose beam has `rows` rows (the cell order may differ: cells are compared at the
    /// coarser of the two).
    fn fits(&self, spec: &IndexSpec, size: u64, rows: u64) -> bool {
        self.spec.hash_order == spec.hash_order && self.spec.mode == spec.mode && self.size == size && self.rows == rows
    }
}

/// A beam: granule URL and group.
type BeamKey = (Arc<str>, Arc<str>);

/// Per-beam, per-chunk cell sets (see the module docs). Shared by the cells of a run.
#[derive(Debug, Default)]
pub struct CoordinateIndex {
    entries: Mutex<HashMap<BeamKey, Arc<BeamIndex>>>,
    learned: AtomicUsize,
}

/// The JSON form: one object per beam, chunks as `[first_row, end_row, [cells...]]`.
#[derive(Debug, Serialize, Deserialize)]
struct IndexFile {
    magg_coordinate_index: u32,
    hash_order: u8,
    cell_order: u8,
    latitude_mode: String,
    beams: Vec<BeamEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BeamEntry {
    granule: String,
    group: String,
    size: u64,
    rows: u64,
    chunks: Vec<(u64, u64, Vec<u64>)>,
}

impl CoordinateIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Beams indexed.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// True when no beam is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Beams added since the index was created or loaded (worth saving when non-zero).
    pub fn learned(&self) -> usize {
        self.learned.load(Ordering::Relaxed)
    }

    /// Whether the index holds `url`/`group` for a file of `size` bytes and `rows` rows,
    /// hashed as `spec` says.
    pub fn contains(&self, url: &str, group: &str, spec: &IndexSpec, size: u64, rows: u64) -> bool {
        self.entries
            .lock()
            .get(&(Arc::from(url), Arc::from(group)))
            .is_some_and(|e| e.fits(spec, size, rows))
    }

    /// Row ranges of the chunks of `url`/`group` that hold points of `cell`, or `None`
    /// when the beam is not indexed compatibly (other hashing, or the file changed).
    pub fn chunks_touching(&self, url: &Arc<str>, group: &Arc<str>, cell: &CellFilter, size: u64, rows: u64) -> Option<Vec<Range<u64>>> {
        let entry = Arc::clone(self.entries.lock().get(&(Arc::clone(url), Arc::clone(group)))?);
        if !entry.fits(&IndexSpec::of(cell), size, rows) {
            return None;
        }
        let (io, co) = (u32::from(entry.spec.order), u32::from(cell.parent_order));
        Some(
            entry
                .chunks
                .iter()
                .filter(|(_, cells)| {
                    cells.iter().any(|&c| if co >= io { cell.parent >> (2 * (co - io)) == c } else { c >> (2 * (io - co)) == cell.parent })
                })
                .map(|(r, _)| r.clone())
                .collect(),
        )
    }

    /// Record the cells of every chunk of a beam from its points' cells at
    /// `spec.hash_order` (`u64::MAX` for points without valid coordinates).
    pub(crate) fn insert(&self, url: &Arc<str>, group: &Arc<str>, spec: IndexSpec, size: u64, chunks: &[Range<u64>], hashes: &[u64]) {
        let shift = 2 * u32::from(spec.hash_order - spec.order);
        let mut out = Vec::with_capacity(chunks.len());
        for r in chunks {
            let (a, b) = (r.start as usize, (r.end as usize).min(hashes.len()));
            let mut cells: Vec<u64> = hashes[a.min(b)..b].iter().filter(|&&h| h != u64::MAX).map(|h| h >> shift).collect();
            cells.sort_unstable();
            cells.dedup();
            out.push((r.clone(), cells));
        }
        let rows = hashes.len() as u64;
        let entry = BeamIndex { spec, size, rows, chunks: out };
        let old = self.entries.lock().insert((Arc::clone(url), Arc::clone(group)), Arc::new(entry));
        // New, or replacing an entry of another file or hashing (not a twin from a
        // concurrent scan of the same beam).
        if old.is_none_or(|o| o.spec != spec || o.size != size || o.rows != rows) {
            self.learned.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Read an index file.
    pub fn load(path: &Path) -> Result<Self, IndexError> {
        let text = std::fs::read_to_string(path).map_err(|source| IndexError::Io { path: path.to_owned(), source })?;
        let file: IndexFile = serde_json::from_str(&text).map_err(|source| IndexError::Json { path: path.to_owned(), source })?;
        let invalid = |detail: String| IndexError::Invalid { path: path.to_owned(), detail };
        if file.magg_coordinate_index != FORMAT_VERSION {
            return Err(invalid(format!(
                "format version {} (this magg reads version {FORMAT_VERSION}; rebuild it with `magg index`)",
                file.magg_coordinate_index
            )));
        }
        let mode = match file.latitude_mode.as_str() {
            "sphere" => LatitudeMode::Sphere,
            "authalic" => LatitudeMode::Authalic,
            other => return Err(invalid(format!("latitude_mode is '{other}', expected 'sphere' or 'authalic'"))),
        };
        if file.cell_order > file.hash_order || file.hash_order > magg_udfs::healpix::MAX_ORDER {
            return Err(invalid(format!(
                "cell_order {} and hash_order {}: expected cell_order <= hash_order <= {}",
                file.cell_order,
                file.hash_order,
                magg_udfs::healpix::MAX_ORDER
            )));
        }
        let spec = IndexSpec { hash_order: file.hash_order, order: file.cell_order, mode };
        let index = Self::new();
        {
            let mut entries = index.entries.lock();
            for b in file.beams {
                let chunks = b.chunks.into_iter().map(|(a, e, cells)| (a..e, cells)).collect();
                let entry = BeamIndex { spec, size: b.size, rows: b.rows, chunks };
                entries.insert((Arc::from(b.granule.as_str()), Arc::from(b.group.as_str())), Arc::new(entry));
            }
        }
        Ok(index)
    }

    /// Write the beams indexed as `spec` says to `path` (through a temporary file and a
    /// rename, so a reader never sees half a file). Returns the beams written.
    pub fn save(&self, path: &Path, spec: &IndexSpec) -> Result<usize, IndexError> {
        let mut beams: Vec<BeamEntry> = self
            .entries
            .lock()
            .iter()
            .filter(|(_, e)| e.spec == *spec)
            .map(|((url, group), e)| BeamEntry {
                granule: url.to_string(),
                group: group.to_string(),
                size: e.size,
                rows: e.rows,
                chunks: e.chunks.iter().map(|(r, c)| (r.start, r.end, c.clone())).collect(),
            })
            .collect();
        beams.sort_by(|a, b| (&a.granule, &a.group).cmp(&(&b.granule, &b.group)));
        let n = beams.len();
        let file = IndexFile {
            magg_coordinate_index: FORMAT_VERSION,
            hash_order: spec.hash_order,
            cell_order: spec.order,
            latitude_mode: spec.mode.as_str().to_owned(),
            beams,
        };
        let io = |source| IndexError::Io { path: path.to_owned(), source };
        let text = serde_json::to_string(&file).map_err(|source| IndexError::Json { path: path.to_owned(), source })?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, text + "\n").map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(n)
    }
}

/// The index file that belongs to a catalog: `catalog.json` -> `catalog.index.json`.
pub fn default_path(catalog: &Path) -> PathBuf {
    let stem = catalog.file_stem().map_or_else(|| "catalog".into(), |s| s.to_string_lossy().into_owned());
    catalog.with_file_name(format!("{stem}.index.json"))
}

/// What [`build`] did with one granule.
#[derive(Debug)]
pub struct GranuleIndexed {
    /// The granule URL.
    pub url: String,
    /// Beams read and indexed now.
    pub beams: usize,
    /// Beams already indexed for this file (skipped).
    pub known: usize,
    /// Coordinate rows read.
    pub rows: u64,
    /// Why the granule could not be indexed.
    pub error: Option<TableError>,
}

/// Index every beam of `granules` (the groups and coordinate datasets of `options`),
/// `workers` granules at a time; beams already in `index` for the same file are skipped.
/// A granule that cannot be read is reported in its [`GranuleIndexed`] and left out.
pub async fn build(
    options: &GranuleTableOptions,
    granules: &[String],
    spec: IndexSpec,
    index: &CoordinateIndex,
    workers: usize,
    mut on_granule: impl FnMut(&GranuleIndexed),
) -> Vec<GranuleIndexed> {
    let mut stream = futures::stream::iter(granules.iter().cloned())
        .map(|url| async move {
            let mut done = GranuleIndexed { url: url.clone(), beams: 0, known: 0, rows: 0, error: None };
            if let Err(e) = index_granule(options, &url, spec, index, &mut done).await {
                done.error = Some(e);
            }
            done
        })
        .buffer_unordered(workers.max(1));
    let mut out = Vec::with_capacity(granules.len());
    while let Some(done) = stream.next().await {
        on_granule(&done);
        out.push(done);
    }
    out
}

async fn index_granule(
    options: &GranuleTableOptions,
    url: &str,
    spec: IndexSpec,
    index: &CoordinateIndex,
    done: &mut GranuleIndexed,
) -> Result<(), TableError> {
    let granule_err = |source: H5Error| TableError::Granule { url: url.to_owned(), source: Box::new(source) };
    let file = super::open_granule(options, url).await.map_err(granule_err)?;
    let url_arc: Arc<str> = Arc::from(url);
    let (lat_col, lon_col) = (&options.columns[0], &options.columns[1]);
    for group in &options.groups {
        let lat_path = lat_col.path(group);
        let info = match file.dataset_info(&lat_path).await {
            Ok(info) => info,
            Err(H5Error::NotFound { .. }) => continue,
            Err(e) => return Err(granule_err(e)),
        };
        let rows = info.num_rows();
        if index.contains(url, group, &spec, file.size(), rows) {
            done.known += 1;
            continue;
        }
        let coords = file
            .read_many(&[(lat_path.clone(), RowSelection::All), (lon_col.path(group), RowSelection::All)])
            .await
            .map_err(granule_err)?;
        let lat = super::exec::as_f64(url, &coords[0])?;
        let lon = super::exec::as_f64(url, &coords[1])?;
        if lat.len() != lon.len() {
            return Err(TableError::Length {
                url: url.to_owned(),
                dataset: lon_col.path(group),
                got: lon.len() as u64,
                expected: lat.len() as u64,
                reference: lat_path,
            });
        }
        // Hashing a beam is ~10 ms of CPU: off the async workers.
        let hashes = tokio::task::spawn_blocking(move || super::exec::hash_points(&lat, &lon, spec.hash_order, spec.mode))
            .await
            .map_err(|e| TableError::Internal(format!("indexing {url}: {e}")))?;
        index.insert(&url_arc, &Arc::from(group.as_str()), spec, file.size(), &info.chunk_row_ranges(), &hashes);
        done.beams += 1;
        done.rows += rows;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(parent: u64) -> CellFilter {
        CellFilter { hash_order: 18, parent_order: 6, parent, mode: LatitudeMode::Sphere }
    }

    #[test]
    fn chunks_touching_checks_cells_size_and_rows() {
        let ix = CoordinateIndex::new();
        let (url, group): (Arc<str>, Arc<str>) = (Arc::from("g.h5"), Arc::from("gt1l"));
        let spec = IndexSpec::for_job(6, LatitudeMode::Sphere);
        // Six rows in chunks of 2; row 4 has no valid coordinates.
        let hashes = [7u64 << 24, 7 << 24, 7 << 24, 9 << 24, u64::MAX, 9 << 24 | 5];
        ix.insert(&url, &group, spec, 1000, &[0..2, 2..4, 4..6], &hashes);
        assert_eq!(ix.learned(), 1);
        assert_eq!(ix.chunks_touching(&url, &group, &filter(7), 1000, 6), Some(vec![0..2, 2..4]));
        assert_eq!(ix.chunks_touching(&url, &group, &filter(9), 1000, 6), Some(vec![2..4, 4..6]));
        assert_eq!(ix.chunks_touching(&url, &group, &filter(8), 1000, 6), Some(vec![]));
        // A coarser cell (order 5 holds order-6 cells 4..8): chunks 0 and 1.
        let coarse = CellFilter { parent_order: 5, parent: 1, ..filter(0) };
        assert_eq!(ix.chunks_touching(&url, &group, &coarse, 1000, 6), Some(vec![0..2, 2..4]));
        // Another size or row count: the file changed, so no answer.
        assert_eq!(ix.chunks_touching(&url, &group, &filter(7), 1001, 6), None);
        assert_eq!(ix.chunks_touching(&url, &group, &filter(7), 1000, 7), None);
        // Another hashing: no answer.
        let authalic = CellFilter { mode: LatitudeMode::Authalic, ..filter(7) };
        assert_eq!(ix.chunks_touching(&url, &group, &authalic, 1000, 6), None);
        assert_eq!(ix.chunks_touching(&url, &Arc::from("gt2l"), &filter(7), 1000, 6), None);
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.index.json");
        let ix = CoordinateIndex::new();
        let spec = IndexSpec::for_job(6, LatitudeMode::Authalic);
        let hashes = [3u64 << 24, 4 << 24, 4 << 24];
        ix.insert(&Arc::from("s3://b/g.h5"), &Arc::from("gt3r"), spec, 77, &[0..2, 2..3], &hashes);
        // An entry of another spec is not written into this spec's file.
        let other = IndexSpec { mode: LatitudeMode::Sphere, ..spec };
        ix.insert(&Arc::from("s3://b/g.h5"), &Arc::from("gt1l"), other, 77, std::slice::from_ref(&(0..3)), &hashes);
        assert_eq!(ix.save(&path, &spec).unwrap(), 1);
        let back = CoordinateIndex::load(&path).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back.learned(), 0);
        let f = CellFilter { mode: LatitudeMode::Authalic, ..filter(4) };
        assert_eq!(back.chunks_touching(&Arc::from("s3://b/g.h5"), &Arc::from("gt3r"), &f, 77, 3), Some(vec![0..2, 2..3]));
        let f3 = CellFilter { mode: LatitudeMode::Authalic, ..filter(3) };
        assert_eq!(back.chunks_touching(&Arc::from("s3://b/g.h5"), &Arc::from("gt3r"), &f3, 77, 3), Some(std::iter::once(0..2).collect::<Vec<_>>()));
        assert!(back.contains("s3://b/g.h5", "gt3r", &spec, 77, 3));
        assert!(!back.contains("s3://b/g.h5", "gt3r", &spec, 78, 3));
    }

    #[test]
    fn load_names_the_file_and_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index.json");
        std::fs::write(&path, r#"{"magg_coordinate_index": 2, "hash_order": 18, "cell_order": 6, "latitude_mode": "sphere", "beams": []}"#).unwrap();
        let e = CoordinateIndex::load(&path).unwrap_err().to_string();
        assert!(e.contains("x.index.json") && e.contains("format version 2"), "{e}");
        std::fs::write(&path, r#"{"magg_coordinate_index": 1, "hash_order": 18, "cell_order": 6, "latitude_mode": "flat", "beams": []}"#).unwrap();
        let e = CoordinateIndex::load(&path).unwrap_err().to_string();
        assert!(e.contains("'flat'") && e.contains("'sphere' or 'authalic'"), "{e}");
        std::fs::write(&path, "[1, 2]").unwrap();
        let e = CoordinateIndex::load(&path).unwrap_err().to_string();
        assert!(e.contains("not a magg coordinate index"), "{e}");
        let e = CoordinateIndex::load(&dir.path().join("missing.json")).unwrap_err().to_string();
        assert!(e.contains("missing.json"), "{e}");
    }

    #[test]
    fn default_path_sits_next_to_the_catalog() {
        assert_eq!(default_path(Path::new("/d/catalog.json")), PathBuf::from("/d/catalog.index.json"));
        assert_eq!(default_path(Path::new("cat")), PathBuf::from("cat.index.json"));
    }
}
