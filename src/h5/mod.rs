//! HDF5 granules over object_store byte ranges, read into Arrow arrays.
//!
//! [`H5File`] opens a granule from any store [`crate::store::resolve`] understands and reads
//! 1-D numeric (and string) datasets, whole or by row ranges, fetching only the bytes it
//! needs. The I/O plan, which `docs/h5.md` describes in full, is:
//!
//! 1. **Open** (1 round trip): one ranged GET of the first `block_size` bytes, which also
//!    returns the object size; the superblock is parsed from it.
//! 2. **Metadata** (object headers, heaps, B-tree / fixed-array / extensible-array index
//!    nodes) is parsed by the pure-Rust `hdf5-reader` crate through a block cache
//!    (`meta.rs`), which the wave planner (`plan.rs`) fills first: for all datasets of one
//!    [`H5File::read_many`] call together, one batched round of block fetches per level of
//!    the file's pointer chain (dry runs of the read path against the cache, plus fan-out
//!    rules that fetch everything whose address is already known, and the children of a
//!    group whose names are not yet known). [`H5File::metadata_stats`] counts the rounds.
//! 3. **Chunk data** bypasses the cache: the chunk entries overlapping the requested rows
//!    are collected from the chunk index, their byte ranges are merged (gaps up to
//!    `coalesce_gap`) and fetched in one concurrent wave (`max_concurrency` requests), as
//!    soon as the dataset's own metadata is in.
//! 4. **Decode** runs on the process-wide rayon pool, chunks in parallel (`decode_threads`
//!    splits); the async caller awaits it without holding a thread:
//!    fletcher32 check, inflate with libdeflate, unshuffle fused with byte-order conversion,
//!    straight into the Arrow buffer.
//!
//! Fill values are *not* turned into nulls here: arrays come back without validity, and
//! [`DatasetInfo::fill_value`] tells the caller (the table layer) what the fill value is.
//! Rows whose chunk was never written are returned as the fill value, as libhdf5 does.
//!
//! The module knows nothing about ATL06 or DataFusion.

mod error;
pub mod inspect;
mod meta;
mod plan;
mod read;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::DataType;
use hdf5_reader::Hdf5File;
use hdf5_reader::messages::HdfMessage;
use hdf5_reader::messages::datatype::{Datatype, StringSize, VarLenKind};
use hdf5_reader::messages::layout::{ChunkIndexing, DataLayout};
use object_store::ObjectStore;
use object_store::path::Path;
use parking_lot::Mutex;

pub use error::H5Error;

use crate::store::StoreOptions;
use meta::MetaStorage;

/// Tuning of the I/O plan. The defaults suit S3 from the same region (first-byte latency
/// dominates, so fewer, larger requests win) and are fine for local files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Metadata cache block size in bytes; also the size of the first read at open.
    pub block_size: usize,
    /// Most requests in flight at once for one batch of fetches.
    pub max_concurrency: usize,
    /// Chunk byte ranges separated by at most this many bytes are fetched as one request
    /// (the gap is read and discarded: cheaper than a second request on S3).
    pub coalesce_gap: usize,
    /// Parallel splits of one read's decode on the rayon pool (whose size, the number of
    /// cores unless `RAYON_NUM_THREADS` says otherwise, bounds the threads); 1 decodes a
    /// read's chunks one after another.
    pub decode_threads: usize,
    /// Largest decoded chunk accepted, in bytes; guards against corrupt chunk shapes.
    pub max_chunk_bytes: usize,
    /// Run the metadata wave planner (`plan.rs`) for local files too. Off by default: on
    /// a local file a cache miss costs one `pread`, less than the planner's dry runs; the
    /// tests turn it on to exercise the planner on local fixtures.
    pub plan_local_metadata: bool,
    /// A read whose filtered chunks decode to at most this many bytes is decoded in the
    /// calling task instead of on the rayon pool: for the few chunks of a cell's beam the
    /// hand-off (two thread wake-ups) cost about as much as the inflate.
    pub inline_decode_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            block_size: 32 * 1024,
            max_concurrency: 32,
            coalesce_gap: 16 * 1024,
            decode_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_chunk_bytes: 256 * 1024 * 1024,
            inline_decode_bytes: 512 * 1024,
            plan_local_metadata: false,
        }
    }
}

impl ReadOptions {
    /// Defaults with `decode_threads` set (e.g. 1 for single-core benchmarks).
    pub fn with_decode_threads(mut self, n: usize) -> Self {
        self.decode_threads = n.max(1);
        self
    }

    /// Defaults with `block_size` set.
    pub fn with_block_size(mut self, n: usize) -> Self {
        self.block_size = n;
        self
    }
}

/// How an [`H5File`]'s metadata cache was filled, from [`H5File::metadata_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetadataStats {
    /// Bytes fetched for metadata, including the first block read at open.
    pub bytes: u64,
    /// Batches fetched by the wave planner; each is one round of concurrent requests, and
    /// one planner call needs as many as its files' pointer chains are deep.
    pub planned_batches: u64,
    /// Fetches the parser had to make on its own (structures the planner does not
    /// foresee, or reads outside [`H5File::read_many`] / [`H5File::dataset_info`]).
    pub demand_fetches: u64,
}

/// Rows to read from a 1-D dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowSelection {
    /// Every row.
    All,
    /// Sorted, non-overlapping row ranges; the result is their concatenation.
    Ranges(Vec<Range<u64>>),
}

/// How a dataset's chunks are indexed (layout message v3 uses only the v1 B-tree; v4/v5
/// add the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkIndexKind {
    BTreeV1,
    SingleChunk,
    Implicit,
    FixedArray,
    ExtensibleArray,
    BTreeV2,
}

/// Storage layout of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Compact,
    Contiguous,
    Chunked { index: ChunkIndexKind },
}

/// A dataset's fill value, decoded to the widest type of its class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FillValue {
    Int(i64),
    UInt(u64),
    Float(f64),
}

/// An attribute value (scalars are one-element vectors).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Int(Vec<i64>),
    UInt(Vec<u64>),
    Float(Vec<f64>),
    String(Vec<String>),
    /// A type this reader does not decode, described.
    Other(String),
}

/// What [`H5File::dataset_info`] knows about a dataset without reading its data.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    /// Absolute path, e.g. `/gt1l/land_ice_segments/h_li`.
    pub path: String,
    /// Arrow type of [`H5File::read`]'s result (`Utf8` for strings; `Binary` for types
    /// that cannot be read).
    pub data_type: DataType,
    /// The HDF5 type, described (`float32 be`, `string(12, ascii)`, `compound(16)`, ...).
    pub hdf5_type: String,
    pub shape: Vec<u64>,
    /// `u64::MAX` marks an unlimited dimension.
    pub max_shape: Option<Vec<u64>>,
    pub chunk_shape: Option<Vec<u64>>,
    pub layout: Layout,
    /// Filter names in pipeline (write) order, e.g. `["shuffle", "deflate(6)", "fletcher32"]`.
    pub filters: Vec<String>,
    /// The fill value from the fill-value message (or a `_FillValue` attribute). The reader
    /// returns fill values as ordinary values; turning them into nulls is the caller's job.
    pub fill_value: Option<FillValue>,
    pub attributes: Vec<(String, AttrValue)>,
}

impl DatasetInfo {
    /// Row boundaries of the chunks of a 1-D chunked dataset (one range covering all rows
    /// otherwise), so callers can align partitions to chunks and never decode one twice.
    pub fn chunk_row_ranges(&self) -> Vec<Range<u64>> {
        let n = self.shape.first().copied().unwrap_or(1);
        match (&self.chunk_shape, self.shape.len()) {
            (Some(c), 1) if c.first().is_some_and(|c| *c > 0) => {
                let c = c[0];
                (0..n.div_ceil(c)).map(|i| i * c..((i + 1) * c).min(n)).collect()
            }
            _ => std::iter::once(0..n).collect(),
        }
    }

    /// Number of rows of a 1-D dataset (1 for a scalar).
    pub fn num_rows(&self) -> u64 {
        if self.shape.is_empty() { 1 } else { self.shape[0] }
    }
}

/// One node of [`H5File::tree`], in depth-first order, children sorted by name.
#[derive(Debug, Clone, PartialEq)]
pub enum TreeEntry {
    Group { path: String, attributes: Vec<(String, AttrValue)> },
    Dataset(DatasetInfo),
}

/// Everything about a dataset the read path needs, resolved once per path.
pub(crate) struct Resolved {
    pub(crate) info: DatasetInfo,
    pub(crate) ds: hdf5_reader::Dataset,
    pub(crate) datatype: Datatype,
    pub(crate) layout: DataLayout,
    pub(crate) filters: Arc<[hdf5_reader::messages::filter_pipeline::FilterDescription]>,
    /// Fill value bytes as stored (file byte order), or zeros.
    pub(crate) fill_raw: Vec<u8>,
}

/// One stored chunk of a chunked dataset ([`H5File::chunk_extents`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkExtent {
    /// Rows of the dataset the chunk holds.
    pub rows: Range<u64>,
    /// Absolute byte offset in the file.
    pub offset: u64,
    /// Stored (compressed) size in bytes.
    pub size: u64,
    /// Filters skipped for this chunk (bit k: filter k of the pipeline).
    pub filter_mask: u32,
    /// Bytes per element.
    pub element_size: usize,
}

struct Inner {
    url: String,
    store: Arc<dyn ObjectStore>,
    location: Path,
    options: ReadOptions,
    meta: Arc<MetaStorage>,
    file: Hdf5File,
    size: u64,
    resolved: Mutex<HashMap<String, Arc<Resolved>>>,
}

/// An open HDF5 granule. Cheap to clone; all clones share the metadata cache.
#[derive(Clone)]
pub struct H5File {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for H5File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H5File").field("url", &self.inner.url).field("size", &self.inner.size).finish()
    }
}

/// The parser's options. Its chunk cache is unused (chunk data never goes through it) and
/// its limits guard the fuzzed paths.
fn parser_options(options: &ReadOptions) -> hdf5_reader::OpenOptions {
    hdf5_reader::OpenOptions::default()
        .with_chunk_cache_bytes(0)
        .with_max_chunk_bytes(options.max_chunk_bytes)
        .with_max_object_header_bytes(16 * 1024 * 1024)
}

/// Normalise a user path to `/a/b/c`.
fn norm_path(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", parts.join("/"))
}

impl H5File {
    /// Open the object at `location` of `store`; `url` is used in error messages only.
    /// Costs one ranged GET (the first metadata block, which also tells the object size).
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        location: Path,
        url: &str,
        options: &ReadOptions,
    ) -> Result<H5File, H5Error> {
        Self::open_in(store, location, url, options, None).await
    }

    /// [`H5File::open`]; `local` is the file's path when `store` is the local file system
    /// (set only by [`H5File::open_url`], which chose the store).
    async fn open_in(
        store: Arc<dyn ObjectStore>,
        location: Path,
        url: &str,
        options: &ReadOptions,
        local: Option<std::path::PathBuf>,
    ) -> Result<H5File, H5Error> {
        let block = options.block_size.max(512) as u64;
        let (first, size) = match crate::store::get_range_with_size(store.as_ref(), &location, 0..block).await {
            Ok(got) => got,
            // A zero-length object fails the ranged read; say what it is.
            Err(e) => {
                use object_store::ObjectStoreExt;
                return Err(match store.head(&location).await {
                    Ok(meta) if meta.size == 0 => H5Error::Empty { url: url.to_owned() },
                    _ => H5Error::io(url, e),
                });
            }
        };
        if size == 0 {
            return Err(H5Error::Empty { url: url.to_owned() });
        }
        let meta = Arc::new(MetaStorage::new(
            Arc::clone(&store),
            location.clone(),
            local,
            size,
            options.block_size,
            options.max_concurrency,
            tokio::runtime::Handle::current(),
        ));
        meta.seed(0, &first);
        let m = Arc::clone(&meta);
        let opts = parser_options(options);
        let file = run_blocking(url, "/", &meta, move || {
            let storage: hdf5_reader::storage::DynStorage = m;
            Hdf5File::from_storage_with_options(storage, opts)
        })
        .await?;
        Ok(H5File {
            inner: Arc::new(Inner {
                url: url.to_string(),
                store,
                location,
                options: options.clone(),
                meta,
                file,
                size,
                resolved: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Resolve `url` with [`crate::store::resolve`] and open it.
    pub async fn open_url(url: &str, store_opts: &StoreOptions, options: &ReadOptions) -> Result<H5File, H5Error> {
        let (store, location) = crate::store::resolve(url, store_opts)?;
        Self::open_in(store, location, url, options, crate::store::local_path(url)).await
    }

    /// The URL given at open.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Whether the granule is a local file.
    pub(crate) fn is_local(&self) -> bool {
        self.inner.meta.is_local()
    }

    /// Object size in bytes.
    pub fn size(&self) -> u64 {
        self.inner.size
    }

    /// Bytes fetched so far through the metadata cache (including the open prefix).
    pub fn metadata_bytes_fetched(&self) -> u64 {
        self.inner.meta.fetched_bytes()
    }

    /// How the metadata cache was filled so far (see `docs/h5.md`, I/O plan).
    pub fn metadata_stats(&self) -> MetadataStats {
        let (planned_batches, demand_fetches) = self.inner.meta.batches();
        MetadataStats { bytes: self.inner.meta.fetched_bytes(), planned_batches, demand_fetches }
    }

    /// Whether a group or dataset exists at `path`.
    pub async fn exists(&self, path: &str) -> Result<bool, H5Error> {
        let p = norm_path(path);
        if p == "/" {
            return Ok(true);
        }
        let file = self.inner.file.clone();
        let pp = p.clone();
        let r = self
            .blocking(&p, move || match file.dataset(&pp) {
                Ok(_) => Ok(true),
                Err(_) => file.group(&pp).map(|_| true),
            })
            .await;
        match r {
            Ok(b) => Ok(b),
            Err(H5Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Shape, type, layout, filters, fill value and attributes of the dataset at `path`.
    pub async fn dataset_info(&self, path: &str) -> Result<DatasetInfo, H5Error> {
        Ok(self.resolve(&norm_path(path)).await?.info.clone())
    }

    /// [`H5File::dataset_info`] of several datasets, resolved together: one metadata
    /// planner for all of them and one parse on the blocking pool, instead of one of each
    /// per dataset. One result per path, in order (a missing dataset is `NotFound` for
    /// that path only).
    pub async fn dataset_infos(&self, paths: &[String]) -> Vec<Result<DatasetInfo, H5Error>> {
        let paths: Vec<String> = paths.iter().map(|p| norm_path(p)).collect();
        self.resolve_many(&paths).await.into_iter().map(|r| r.map(|r| r.info.clone())).collect()
    }

    /// Read rows of the 1-D dataset at `path`.
    pub async fn read(&self, path: &str, rows: RowSelection) -> Result<ArrayRef, H5Error> {
        let mut v = self.read_many(&[(path.to_string(), rows)]).await?;
        v.pop().ok_or_else(|| H5Error::corrupt(&self.inner.url, path, "read returned no array"))
    }

    /// Read several datasets together. The metadata of all of them (path lookup, object
    /// headers, chunk-index entries of the requested rows) is fetched by the wave planner
    /// (`plan.rs`) in batched rounds, one round per level of the file's pointer chain; each
    /// request then runs as its own pipeline (resolve from the cache, fetch the chunks,
    /// decode) as soon as its own metadata is in, so its chunk fetch overlaps the metadata
    /// rounds the others still need.
    ///
    /// When every dataset is resolved already (e.g. by [`H5File::dataset_infos`]), the
    /// requests run as one pipeline instead: one index walk, one fetch wave, one decode.
    pub async fn read_many(&self, requests: &[(String, RowSelection)]) -> Result<Vec<ArrayRef>, H5Error> {
        let cached: Option<Vec<(Arc<Resolved>, RowSelection)>> =
            requests.iter().map(|(p, sel)| self.cached_resolved(&norm_path(p)).map(|r| (r, sel.clone()))).collect();
        if let Some(plan) = cached {
            return read::read_planned(self, plan).await;
        }
        let targets: Vec<plan::Target> =
            requests.iter().map(|(p, sel)| plan::Target { path: norm_path(p), rows: Some(sel.clone()) }).collect();
        let (txs, rxs): (Vec<_>, Vec<_>) = targets.iter().map(|_| tokio::sync::oneshot::channel::<()>()).unzip();
        let mut txs: Vec<Option<tokio::sync::oneshot::Sender<()>>> = txs.into_iter().map(Some).collect();
        let planner = plan::warm(self, &targets, move |i| {
            if let Some(tx) = txs.get_mut(i).and_then(Option::take) {
                let _ = tx.send(());
            }
        });
        let pipelines = futures::future::try_join_all(requests.iter().zip(&targets).zip(rxs).map(|(((p, sel), t), rx)| async move {
            // A planner that stops early drops the sender: the read path then fetches
            // what is still missing on demand.
            let _ = rx.await;
            let r = self.resolve_cached_metadata(&t.path).await?;
            let mut v = read::read_planned(self, vec![(r, sel.clone())]).await?;
            v.pop().ok_or_else(|| H5Error::corrupt(&self.inner.url, p, "read returned no array"))
        }));
        let ((), arrays) = futures::future::try_join(planner, pipelines).await?;
        Ok(arrays)
    }

    /// The stored chunks of the chunked 1-D dataset at `path` that hold rows of `rows`:
    /// byte ranges in the file, so a caller can fetch or account for exactly the bytes a
    /// read must decode (the cell benchmark decodes them with plain libdeflate as the
    /// baseline the job is compared with).
    pub async fn chunk_extents(&self, path: &str, rows: &RowSelection) -> Result<Vec<ChunkExtent>, H5Error> {
        let r = self.resolve(&norm_path(path)).await?;
        read::chunk_extents(self, r, rows).await
    }

    /// Every group and dataset, depth first, children sorted by name.
    pub async fn tree(&self) -> Result<Vec<TreeEntry>, H5Error> {
        let file = self.inner.file.clone();
        let url = self.inner.url.clone();
        let meta = Arc::clone(&self.inner.meta);
        run_blocking_h5(&self.inner.url, "/", &self.inner.meta, move || {
            let mut out = Vec::new();
            let root = file.root_group().map_err(|e| H5Error::from_parser(&url, "/", e, meta.take_io_error()))?;
            walk(&file, &url, &meta, &root, "/", &mut out, 0)?;
            Ok(out)
        })
        .await
    }

    /// The dataset at `path` as the read path needs it, parsed once. Unless already
    /// resolved, its metadata is first fetched by the wave planner.
    async fn resolve(&self, path: &str) -> Result<Arc<Resolved>, H5Error> {
        if let Some(r) = self.cached_resolved(path) {
            return Ok(r);
        }
        let mut one = self.resolve_many(&[path.to_string()]).await;
        one.pop().unwrap_or_else(|| Err(H5Error::corrupt(&self.inner.url, path, "dataset not resolved")))
    }

    /// Resolve normalised `paths`: the uncached ones warmed by one planner and parsed in
    /// one blocking task. One result per path.
    async fn resolve_many(&self, paths: &[String]) -> Vec<Result<Arc<Resolved>, H5Error>> {
        let mut missing: Vec<String> = paths.iter().filter(|p| self.cached_resolved(p).is_none()).cloned().collect();
        missing.sort();
        missing.dedup();
        let mut errors: HashMap<String, H5Error> = HashMap::new();
        if !missing.is_empty() {
            let targets: Vec<plan::Target> = missing.iter().map(|p| plan::Target { path: p.clone(), rows: None }).collect();
            // A failed batch fetch is reported by the parse below, which fetches on demand.
            let _ = plan::warm(self, &targets, |_| {}).await;
            let file = self.inner.file.clone();
            let url = self.inner.url.clone();
            let meta = Arc::clone(&self.inner.meta);
            let parsed = run_blocking_h5(&self.inner.url, "/", &self.inner.meta, move || {
                Ok(missing
                    .into_iter()
                    .map(|p| {
                        let r = parse_dataset(&file, &url, &meta, &p);
                        (p, r)
                    })
                    .collect::<Vec<_>>())
            })
            .await;
            // If the task itself failed (a panic outside the per-dataset parse), each path
            // is resolved on its own below and reports its own error.
            if let Ok(parsed) = parsed {
                let mut cache = self.inner.resolved.lock();
                for (p, r) in parsed {
                    match r {
                        Ok(r) => {
                            cache.insert(p, Arc::new(r));
                        }
                        Err(e) => {
                            errors.insert(p, e);
                        }
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            out.push(match errors.remove(p) {
                Some(e) => Err(e),
                None => self.resolve_cached_metadata(p).await,
            });
        }
        out
    }

    fn cached_resolved(&self, path: &str) -> Option<Arc<Resolved>> {
        self.inner.resolved.lock().get(path).cloned()
    }

    /// Parse the dataset at `path` (on the blocking pool; misses fetch on demand).
    async fn resolve_cached_metadata(&self, path: &str) -> Result<Arc<Resolved>, H5Error> {
        if let Some(r) = self.cached_resolved(path) {
            return Ok(r);
        }
        let file = self.inner.file.clone();
        let url = self.inner.url.clone();
        let meta = Arc::clone(&self.inner.meta);
        let p = path.to_string();
        let r = run_blocking_h5(&self.inner.url, path, &self.inner.meta, move || parse_dataset(&file, &url, &meta, &p)).await?;
        let r = Arc::new(r);
        self.inner.resolved.lock().insert(path.to_string(), Arc::clone(&r));
        Ok(r)
    }

    /// Run parser code on the blocking pool, mapping parser errors for `path`.
    async fn blocking<T: Send + 'static>(
        &self,
        path: &str,
        f: impl FnOnce() -> Result<T, hdf5_reader::error::Error> + Send + 'static,
    ) -> Result<T, H5Error> {
        run_blocking(&self.inner.url, path, &self.inner.meta, f).await
    }

    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }
    pub(crate) fn location(&self) -> &Path {
        &self.inner.location
    }
    pub(crate) fn options(&self) -> &ReadOptions {
        &self.inner.options
    }
    pub(crate) fn parser(&self) -> &Hdf5File {
        &self.inner.file
    }
    pub(crate) fn meta(&self) -> &Arc<MetaStorage> {
        &self.inner.meta
    }
}

/// Run `f` (parser code, which may block on the store) on the blocking pool. A panic in
/// the parser is caught and reported as `Corrupt` naming the url: a safety net for inputs
/// `hdf5-reader` does not expect, never a substitute for fixing our own panics.
pub(crate) async fn run_blocking<T: Send + 'static>(
    url: &str,
    path: &str,
    meta: &Arc<MetaStorage>,
    f: impl FnOnce() -> Result<T, hdf5_reader::error::Error> + Send + 'static,
) -> Result<T, H5Error> {
    let m = Arc::clone(meta);
    let (u, p) = (url.to_string(), path.to_string());
    run_blocking_h5(url, path, meta, move || f().map_err(|e| H5Error::from_parser(&u, &p, e, m.take_io_error()))).await
}

pub(crate) async fn run_blocking_h5<T: Send + 'static>(
    url: &str,
    path: &str,
    _meta: &Arc<MetaStorage>,
    f: impl FnOnce() -> Result<T, H5Error> + Send + 'static,
) -> Result<T, H5Error> {
    match tokio::task::spawn_blocking(move || std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))).await {
        Ok(Ok(r)) => r,
        Ok(Err(panic)) => Err(H5Error::corrupt(url, path, format!("parser panicked: {}", panic_message(&panic)))),
        Err(e) => Err(H5Error::corrupt(url, path, format!("parser task failed: {e}"))),
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

const MAX_TREE_DEPTH: usize = 64;

fn walk(
    file: &Hdf5File,
    url: &str,
    meta: &MetaStorage,
    group: &hdf5_reader::group::Group,
    path: &str,
    out: &mut Vec<TreeEntry>,
    depth: usize,
) -> Result<(), H5Error> {
    if depth > MAX_TREE_DEPTH {
        return Err(H5Error::corrupt(url, path, format!("group nesting deeper than {MAX_TREE_DEPTH} (a cycle?)")));
    }
    let perr = |e| H5Error::from_parser(url, path, e, meta.take_io_error());
    let attrs = group.attributes().map_err(perr)?;
    out.push(TreeEntry::Group { path: path.to_string(), attributes: attrs.iter().map(attr_value).collect() });
    let (groups, datasets) = group.members().map_err(perr)?;
    let child = |name: &str| if path == "/" { format!("/{name}") } else { format!("{path}/{name}") };
    enum Node {
        G(hdf5_reader::group::Group),
        D(Box<hdf5_reader::Dataset>),
    }
    let mut nodes: Vec<(String, Node)> = groups
        .into_iter()
        .map(|g| (child(g.name().rsplit('/').next().unwrap_or("")), Node::G(g)))
        .chain(datasets.into_iter().map(|d| (child(d.name().rsplit('/').next().unwrap_or("")), Node::D(Box::new(d)))))
        .collect();
    nodes.sort_by(|a, b| a.0.cmp(&b.0));
    for (p, n) in nodes {
        match n {
            Node::G(g) => walk(file, url, meta, &g, &p, out, depth + 1)?,
            Node::D(d) => out.push(TreeEntry::Dataset(resolve_dataset(file, url, Some(meta), &p, *d)?.info)),
        }
    }
    Ok(())
}

pub(crate) fn is_undefined(addr: u64, offset_size: u8) -> bool {
    addr == u64::MAX || (offset_size < 8 && addr == (1u64 << (8 * u32::from(offset_size))) - 1)
}

/// Open and resolve the dataset at `path` (blocking: misses fetch on demand).
fn parse_dataset(file: &Hdf5File, url: &str, meta: &Arc<MetaStorage>, path: &str) -> Result<Resolved, H5Error> {
    let ds = file.dataset(path).map_err(|e| match H5Error::from_parser(url, path, e, meta.take_io_error()) {
        H5Error::NotFound { .. } if file.group(path).is_ok() => H5Error::NotADataset { url: url.to_owned(), path: path.to_owned() },
        e => e,
    })?;
    resolve_dataset(file, url, Some(meta), path, ds)
}

/// Build the read-side description of a dataset from its parsed header.
/// `meta` is the cache whose recorded store error explains a parser I/O error (`None` for
/// the planner's dry runs, whose misses are not errors).
fn resolve_dataset(
    file: &Hdf5File,
    url: &str,
    meta: Option<&MetaStorage>,
    path: &str,
    ds: hdf5_reader::Dataset,
) -> Result<Resolved, H5Error> {
    let perr = |e| H5Error::from_parser(url, path, e, meta.and_then(MetaStorage::take_io_error));
    let header = file.get_or_parse_header(ds.address()).map_err(perr)?;
    let mut layout = None;
    let mut filters = Vec::new();
    for m in &header.messages {
        match m {
            HdfMessage::DataLayout(l) => layout = Some(l.layout.clone()),
            HdfMessage::FilterPipeline(f) => filters = f.filters.clone(),
            _ => {}
        }
    }
    let shape = ds.shape().to_vec();
    let mut layout = layout.ok_or_else(|| H5Error::corrupt(url, path, "dataset has no data layout message"))?;
    // Layout messages before v4 append the element size as an extra chunk dimension.
    if let DataLayout::Chunked { dims, element_size, .. } = &mut layout
        && dims.len() == shape.len() + 1
        && let Some(e) = dims.pop()
        && *element_size == 0
    {
        *element_size = e;
    }
    let datatype = ds.dtype().clone();
    let (data_type, hdf5_type) = describe_type(&datatype);
    let info_layout = match &layout {
        DataLayout::Compact { .. } => Layout::Compact,
        DataLayout::Contiguous { .. } => Layout::Contiguous,
        DataLayout::Chunked { chunk_indexing, .. } => Layout::Chunked {
            index: match chunk_indexing {
                None => ChunkIndexKind::BTreeV1,
                Some(ChunkIndexing::SingleChunk { .. }) => ChunkIndexKind::SingleChunk,
                Some(ChunkIndexing::Implicit) => ChunkIndexKind::Implicit,
                Some(ChunkIndexing::FixedArray { .. }) => ChunkIndexKind::FixedArray,
                Some(ChunkIndexing::ExtensibleArray { .. }) => ChunkIndexKind::ExtensibleArray,
                Some(ChunkIndexing::BTreeV2) => ChunkIndexKind::BTreeV2,
            },
        },
    };
    let chunk_shape = match &layout {
        DataLayout::Chunked { dims, .. } => Some(dims.iter().map(|d| u64::from(*d)).collect()),
        _ => None,
    };
    let elem = elem_size(&datatype);
    let fill_stored = ds.fill_value().and_then(|f| f.value.clone()).filter(|v| elem.is_some_and(|e| v.len() == e));
    let fill_value = fill_stored.as_deref().and_then(|v| decode_fill(&datatype, v));
    let fill_raw = fill_stored.unwrap_or_else(|| vec![0u8; elem.unwrap_or(0)]);
    let attributes = ds.attributes().iter().map(attr_value).collect();
    let info = DatasetInfo {
        path: path.to_string(),
        data_type,
        hdf5_type,
        shape,
        max_shape: ds.max_dims().map(<[u64]>::to_vec),
        chunk_shape,
        layout: info_layout,
        filters: filters.iter().map(filter_name).collect(),
        fill_value,
        attributes,
    };
    Ok(Resolved { info, ds, datatype, layout, filters: filters.into(), fill_raw })
}

fn filter_name(f: &hdf5_reader::messages::filter_pipeline::FilterDescription) -> String {
    match f.id {
        1 => format!("deflate({})", f.client_data.first().copied().unwrap_or(0)),
        2 => "shuffle".to_string(),
        3 => "fletcher32".to_string(),
        4 => "szip".to_string(),
        5 => "nbit".to_string(),
        6 => "scaleoffset".to_string(),
        id => match &f.name {
            Some(n) => format!("{n} (id {id})"),
            None => format!("filter {id}"),
        },
    }
}

/// Size of one element of a numeric type, `None` otherwise.
pub(crate) fn elem_size(dt: &Datatype) -> Option<usize> {
    match dt {
        Datatype::FixedPoint { size, .. } if matches!(size, 1 | 2 | 4 | 8) => Some(usize::from(*size)),
        Datatype::FloatingPoint { size, .. } if matches!(size, 4 | 8) => Some(usize::from(*size)),
        _ => None,
    }
}

fn describe_type(dt: &Datatype) -> (DataType, String) {
    use hdf5_reader::ByteOrder;
    let bo = |o: &ByteOrder| if matches!(o, ByteOrder::BigEndian) { "be" } else { "le" };
    match dt {
        Datatype::FixedPoint { size, signed, byte_order } => {
            let t = match (size, signed) {
                (1, true) => DataType::Int8,
                (2, true) => DataType::Int16,
                (4, true) => DataType::Int32,
                (8, true) => DataType::Int64,
                (1, false) => DataType::UInt8,
                (2, false) => DataType::UInt16,
                (4, false) => DataType::UInt32,
                (8, false) => DataType::UInt64,
                _ => DataType::Binary,
            };
            let s = if *signed { "int" } else { "uint" };
            (t, format!("{s}{} {}", u32::from(*size) * 8, bo(byte_order)))
        }
        Datatype::FloatingPoint { size, byte_order } => {
            let t = match size {
                4 => DataType::Float32,
                8 => DataType::Float64,
                _ => DataType::Binary,
            };
            (t, format!("float{} {}", u32::from(*size) * 8, bo(byte_order)))
        }
        Datatype::String { size: StringSize::Fixed(n), encoding, .. } => {
            (DataType::Utf8, format!("string({n}, {encoding:?})").to_lowercase())
        }
        Datatype::String { size: StringSize::Variable, encoding, .. }
        | Datatype::VarLen { kind: VarLenKind::String, encoding, .. } => {
            (DataType::Utf8, format!("string(variable, {encoding:?})").to_lowercase())
        }
        Datatype::Compound { size, fields } => (DataType::Binary, format!("compound({size} bytes, {} fields)", fields.len())),
        Datatype::Enum { base, members } => {
            (DataType::Binary, format!("enum({} members of {})", members.len(), describe_type(base).1))
        }
        Datatype::Array { base, dims } => (DataType::Binary, format!("array({dims:?} of {})", describe_type(base).1)),
        Datatype::VarLen { base, .. } => (DataType::Binary, format!("vlen({})", describe_type(base).1)),
        Datatype::Opaque { size, .. } => (DataType::Binary, format!("opaque({size})")),
        Datatype::Reference { .. } => (DataType::Binary, "reference".to_string()),
        Datatype::Bitfield { size, .. } => (DataType::Binary, format!("bitfield({size})")),
    }
}

/// Decode one stored element (file byte order) into a [`FillValue`].
fn decode_fill(dt: &Datatype, v: &[u8]) -> Option<FillValue> {
    use hdf5_reader::ByteOrder;
    let (size, be) = match dt {
        Datatype::FixedPoint { size, byte_order, .. } | Datatype::FloatingPoint { size, byte_order } => {
            (usize::from(*size), matches!(byte_order, ByteOrder::BigEndian))
        }
        _ => return None,
    };
    if v.len() != size || size > 8 {
        return None;
    }
    let mut b = [0u8; 8];
    if be {
        for (i, x) in v.iter().rev().enumerate() {
            b[i] = *x;
        }
    } else {
        b[..size].copy_from_slice(v);
    }
    let u = u64::from_le_bytes(b);
    Some(match dt {
        Datatype::FloatingPoint { size: 4, .. } => FillValue::Float(f64::from(f32::from_bits(u as u32))),
        Datatype::FloatingPoint { .. } => FillValue::Float(f64::from_bits(u)),
        Datatype::FixedPoint { signed: true, .. } => {
            let shift = 64 - 8 * size as u32;
            FillValue::Int(((u << shift) as i64) >> shift)
        }
        _ => FillValue::UInt(u),
    })
}

fn attr_value(a: &hdf5_reader::Attribute) -> (String, AttrValue) {
    let v = match &a.datatype {
        Datatype::FixedPoint { signed: true, .. } => match read_attr_ints(a) {
            Some(v) => AttrValue::Int(v),
            None => AttrValue::Other(describe_type(&a.datatype).1),
        },
        Datatype::FixedPoint { signed: false, .. } => match read_attr_uints(a) {
            Some(v) => AttrValue::UInt(v),
            None => AttrValue::Other(describe_type(&a.datatype).1),
        },
        Datatype::FloatingPoint { size: 4, .. } => match a.read_1d::<f32>() {
            Ok(v) => AttrValue::Float(v.into_iter().map(f64::from).collect()),
            Err(_) => a.read_scalar::<f32>().map_or_else(|_| AttrValue::Other("float32".into()), |x| AttrValue::Float(vec![f64::from(x)])),
        },
        Datatype::FloatingPoint { .. } => match a.read_1d::<f64>() {
            Ok(v) => AttrValue::Float(v),
            Err(_) => a.read_scalar::<f64>().map_or_else(|_| AttrValue::Other("float64".into()), |x| AttrValue::Float(vec![x])),
        },
        Datatype::String { .. } | Datatype::VarLen { kind: VarLenKind::String, .. } => match a.read_strings() {
            Ok(v) => AttrValue::String(v),
            Err(_) => match a.read_string() {
                Ok(s) => AttrValue::String(vec![s]),
                Err(e) => AttrValue::Other(format!("unreadable string: {e}")),
            },
        },
        other => AttrValue::Other(describe_type(other).1),
    };
    (a.name.clone(), v)
}

macro_rules! read_attr_as {
    ($a:expr, $out:ty, $($t:ty),*) => {{
        let a = $a;
        let size = match &a.datatype { Datatype::FixedPoint { size, .. } => *size, _ => 0 };
        let mut res: Option<Vec<$out>> = None;
        $(
            if res.is_none() && usize::from(size) == std::mem::size_of::<$t>() {
                res = a.read_1d::<$t>().ok().map(|v| v.into_iter().map(<$out>::from).collect())
                    .or_else(|| a.read_scalar::<$t>().ok().map(|x| vec![<$out>::from(x)]));
            }
        )*
        res
    }};
}

fn read_attr_ints(a: &hdf5_reader::Attribute) -> Option<Vec<i64>> {
    read_attr_as!(a, i64, i8, i16, i32, i64)
}

fn read_attr_uints(a: &hdf5_reader::Attribute) -> Option<Vec<u64>> {
    read_attr_as!(a, u64, u8, u16, u32, u64)
}

#[cfg(test)]
mod tests {
    //! In-memory files written by the pure-Rust `hdf5-writer` (libhdf5 files are covered by
    //! `tests/h5_conformance.rs`).
    #![allow(clippy::single_range_in_vec_init)] // one-range row selections are intended

    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::{Float64Type, Int32Type, UInt16Type};
    use hdf5_writer::{DatasetBuilder, FilterDescription, Hdf5Builder, WriteOptions};
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    async fn open_bytes(bytes: Vec<u8>, opts: &ReadOptions) -> H5File {
        let mem = Arc::new(InMemory::new());
        let p = Path::from("t.h5");
        mem.put(&p, bytes.into()).await.unwrap();
        H5File::open(mem, p, "mem://t.h5", opts).await.unwrap()
    }

    fn file() -> Vec<u8> {
        let xs: Vec<f64> = (0..100).map(|i| f64::from(i) * 0.25 - 3.0).collect();
        let deflate = FilterDescription { id: 1, name: None, client_data: vec![4] };
        let shuffle = FilterDescription { id: 2, name: None, client_data: vec![] };
        Hdf5Builder::new()
            .dataset(
                DatasetBuilder::typed_data::<f64>("g/x", [100u64], &xs)
                    .unwrap()
                    .chunked([7u64])
                    .filter(shuffle)
                    .filter(deflate),
            )
            .dataset(DatasetBuilder::typed_data::<i32>("g/c", [5u64], &[-2, -1, 0, 1, i32::MAX]).unwrap().compact())
            .dataset(DatasetBuilder::typed_data::<u16>("u", [4u64], &[0, 1, 65535, 7]).unwrap())
            .into_plan()
            .unwrap()
            .encode(WriteOptions::default())
            .unwrap()
    }

    #[tokio::test]
    async fn reads_chunked_compact_and_contiguous_in_memory() {
        for threads in [1, 3] {
            let f = open_bytes(file(), &ReadOptions::default().with_decode_threads(threads)).await;
            let x = f.read("/g/x", RowSelection::All).await.unwrap();
            let want: Vec<f64> = (0..100).map(|i| f64::from(i) * 0.25 - 3.0).collect();
            assert_eq!(x.as_primitive::<Float64Type>().values().to_vec(), want);
            let part = f.read("g/x", RowSelection::Ranges(vec![5..9, 95..100])).await.unwrap();
            let wp: Vec<f64> = want[5..9].iter().chain(&want[95..100]).copied().collect();
            assert_eq!(part.as_primitive::<Float64Type>().values().to_vec(), wp);
            let c = f.read("/g/c", RowSelection::Ranges(vec![3..5])).await.unwrap();
            assert_eq!(c.as_primitive::<Int32Type>().values().to_vec(), vec![1, i32::MAX]);
            let u = f.read("/u", RowSelection::All).await.unwrap();
            assert_eq!(u.as_primitive::<UInt16Type>().values().to_vec(), vec![0, 1, 65535, 7]);
            let info = f.dataset_info("/g/x").await.unwrap();
            assert_eq!(info.filters, vec!["shuffle".to_string(), "deflate(4)".to_string()]);
            assert_eq!(info.chunk_row_ranges().len(), 15);
            assert_eq!(info.chunk_row_ranges()[14], 98..100);
            assert_eq!(f.dataset_info("/g/c").await.unwrap().layout, Layout::Compact);
            assert_eq!(f.dataset_info("/u").await.unwrap().layout, Layout::Contiguous);
        }
    }

    /// The extents a selection needs are exactly the chunks holding its rows, and their
    /// bytes decode (inflate, unshuffle) to the same values the reader returns.
    #[tokio::test]
    async fn chunk_extents_are_the_bytes_a_read_decodes() {
        let bytes = file();
        let f = open_bytes(bytes.clone(), &ReadOptions::default()).await;
        let all = f.chunk_extents("/g/x", &RowSelection::All).await.unwrap();
        assert_eq!(all.len(), 15);
        assert_eq!(all.iter().map(|e| e.rows.clone()).collect::<Vec<_>>(), f.dataset_info("/g/x").await.unwrap().chunk_row_ranges());
        let some = f.chunk_extents("/g/x", &RowSelection::Ranges(vec![5..9, 95..100])).await.unwrap();
        assert_eq!(some.iter().map(|e| e.rows.clone()).collect::<Vec<_>>(), vec![0..7, 7..14, 91..98, 98..100]);
        assert!(f.chunk_extents("/g/c", &RowSelection::All).await.unwrap().is_empty(), "compact: no chunks");
        let want: Vec<f64> = (0..100).map(|i| f64::from(i) * 0.25 - 3.0).collect();
        for e in &some {
            assert_eq!((e.element_size, e.filter_mask), (8, 0));
            let stored = &bytes[e.offset as usize..(e.offset + e.size) as usize];
            let mut shuffled = vec![0u8; 7 * 8];
            let n = libdeflater::Decompressor::new().zlib_decompress(stored, &mut shuffled).unwrap();
            assert_eq!(n, 56, "edge chunks are stored whole");
            let values: Vec<f64> = (0..7)
                .map(|i| f64::from_le_bytes(std::array::from_fn(|b| shuffled[b * 7 + i])))
                .take((e.rows.end - e.rows.start) as usize)
                .collect();
            assert_eq!(values, want[e.rows.start as usize..e.rows.end as usize]);
        }
    }

    async fn open_mem(bytes: &[u8]) -> Result<H5File, H5Error> {
        let m = Arc::new(InMemory::new());
        m.put(&Path::from("t.h5"), bytes.to_vec().into()).await.unwrap();
        H5File::open(m, Path::from("t.h5"), "mem://t.h5", &ReadOptions::default()).await
    }

    /// A flipped byte inside a deflate chunk is a typed error naming url and path (or, in
    /// padding bits, harmless: the values stay exact); a
    /// flipped byte anywhere else never panics (HDF5 metadata without checksums cannot
    /// always be told from valid metadata, so other flips may read).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn corrupt_chunk_is_a_typed_error_naming_url_and_path() {
        let mut bytes = file();
        let f = open_bytes(bytes.clone(), &ReadOptions::default()).await;
        let r = f.resolve("/g/x").await.unwrap();
        let DataLayout::Chunked { address, dims, chunk_indexing, .. } = r.layout.clone() else { panic!("not chunked") };
        let sb = f.parser().superblock();
        let entries = read::collect_entries(
            f.parser(), address, &dims, chunk_indexing.as_ref(), &r.info.shape, r.info.max_shape.as_deref(), 8, None,
            sb.offset_size, sb.length_size,
        )
        .unwrap();
        assert_eq!(entries.len(), 15);
        let good = f.read("/g/x", RowSelection::All).await.unwrap();
        let in_chunk = |pos: u64| entries.iter().any(|e| pos >= e.address && pos < e.address + e.size);
        let mut detected = 0;
        for pos in (0..bytes.len()).step_by(7) {
            let orig = bytes[pos];
            bytes[pos] ^= 0x5a;
            let res = match open_mem(&bytes).await {
                Ok(f) => f.read("/g/x", RowSelection::All).await,
                Err(e) => Err(e),
            };
            if in_chunk(pos as u64) {
                match res {
                    Err(e) => {
                        assert!(e.to_string().contains("mem://t.h5") && e.to_string().contains("/g/x"), "{e}");
                        detected += 1;
                    }
                    // A flip confined to a deflate stream's padding bits changes nothing.
                    Ok(a) => assert!(a.as_ref() == good.as_ref(), "byte {pos} flipped: wrong values, no error"),
                }
            } else if let Err(e) = res {
                assert!(e.to_string().contains("mem://t.h5"), "{e}");
            }
            bytes[pos] = orig;
        }
        assert!(detected > 10, "only {detected} chunk flips tested");
    }

    #[test]
    fn fill_values_decode_both_orders() {
        use hdf5_reader::ByteOrder;
        let f4 = Datatype::FloatingPoint { size: 4, byte_order: ByteOrder::BigEndian };
        assert_eq!(decode_fill(&f4, &f32::MAX.to_be_bytes()), Some(FillValue::Float(f64::from(f32::MAX))));
        let i2 = Datatype::FixedPoint { size: 2, signed: true, byte_order: ByteOrder::LittleEndian };
        assert_eq!(decode_fill(&i2, &(-5i16).to_le_bytes()), Some(FillValue::Int(-5)));
        let u8t = Datatype::FixedPoint { size: 8, signed: false, byte_order: ByteOrder::BigEndian };
        assert_eq!(decode_fill(&u8t, &u64::MAX.to_be_bytes()), Some(FillValue::UInt(u64::MAX)));
        assert_eq!(decode_fill(&u8t, &[1, 2]), None);
    }
}
