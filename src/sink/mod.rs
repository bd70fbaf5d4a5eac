//! Zarr v3 DGGS sink: the store template and one chunk per parent cell.
//!
//! # Layout (REFERENCE.md section 5, `docs/zarr.md`)
//!
//! ```text
//! <store>/zarr.json                 root group; consolidated metadata after consolidate()
//! <store>/<C>/zarr.json             group: zarr_conventions + dggs block (+ magg block)
//! <store>/<C>/cell_ids/zarr.json    uint64, fill 0: nested HEALPix ids at order C
//! <store>/<C>/morton/zarr.json      int64, fill 0: decimal morton at order C
//! <store>/<C>/<variable>/zarr.json  one 1-D array per template variable
//! <store>/<C>/<array>/c/<i>         chunk i = the 4^(C-P) children of one parent cell
//! ```
//!
//! Every array has the dimension `cells` and chunk length `4^(C-P)`. In the compact
//! layout (the reference's) chunk `i` belongs to the `i`-th catalog cell; in the
//! full-sphere layout chunk `i` is the parent whose nested id is `i`, so stores of
//! different catalogs line up.
//!
//! # Writes
//!
//! A parent cell owns its chunk in every array, so concurrent writers of different cells
//! never touch the same object. Each chunk is one `put` (atomic on S3; LocalFileSystem
//! writes a temporary file and renames), so a reader or a crash never sees half a chunk.
//! `cell_ids` is written last: its presence marks the cell complete for `--resume`.
//! Chunks are plain functions of the rows (sorted scatter, fixed codec), so re-running
//! the same inputs writes byte-identical chunks.

mod metadata;

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;

use arrow::array::{Array as _, ArrayRef, ArrowPrimitiveType, PrimitiveArray, UInt64Array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::{Map, Value};
use zarrs::array::{
    Array as ZArray, ArrayBytes, ArrayMetadata, ArrayMetadataV3, ArrayToBytesCodecTraits,
    CodecOptions,
};
use zarrs_object_store::AsyncObjectStore;

/// Name of the nested-id coordinate array (the DGGS `coordinate`).
pub const CELL_IDS: &str = "cell_ids";
/// Name of the morton coordinate array.
pub const MORTON: &str = "morton";

/// Errors of the Zarr sink. Messages name the store url, the cell and the variable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// A store exists where a new one was to be created.
    #[error("store {url} already exists; pass --overwrite to replace it")]
    Exists {
        /// The store.
        url: String,
    },
    /// `--overwrite` was asked for a prefix that holds objects but no Zarr store.
    #[error(
        "refusing to overwrite {url}: it holds {objects} objects but no zarr.json at its root, so it is not a zarr store; pick an empty or zarr location"
    )]
    NotAStore {
        /// The location.
        url: String,
        /// Objects found under it.
        objects: usize,
    },
    /// No template at the store (workers need the orchestrator to create it first).
    #[error("store {url} has no magg template (no <order>/zarr.json with a magg block); create it first")]
    TemplateMissing {
        /// The store.
        url: String,
    },
    /// The template is inconsistent.
    #[error("store {url}: invalid template: {message}")]
    InvalidTemplate {
        /// The store.
        url: String,
        /// What is wrong, as "got X, expected Y".
        message: String,
    },
    /// The parent cell has no chunk in this store.
    #[error("store {url}: parent cell {parent} is not one of the store's {count} catalog cells")]
    UnknownParent {
        /// The store.
        url: String,
        /// Parent morton.
        parent: i64,
        /// Number of parents in the compact layout.
        count: usize,
    },
    /// A morton index is malformed or at the wrong order.
    #[error("store {url}: parent cell {parent}: {message}")]
    BadParent {
        /// The store.
        url: String,
        /// Parent morton.
        parent: i64,
        /// Why.
        message: String,
    },
    /// A row's cell is not a child of the parent being written.
    #[error(
        "store {url}: cell {cell} (order {child_order}) is not a child of parent {parent}: got nested id {cell}, expected {first}..={last}"
    )]
    CellOutsideParent {
        /// The store.
        url: String,
        /// The row's nested id.
        cell: u64,
        /// The parent's morton.
        parent: i64,
        /// The child order.
        child_order: u8,
        /// First child nested id.
        first: u64,
        /// Last child nested id.
        last: u64,
    },
    /// Two rows name the same cell.
    #[error("store {url}: parent {parent}: cell {cell} appears more than once; expected one row per cell")]
    DuplicateCell {
        /// The store.
        url: String,
        /// Parent morton.
        parent: i64,
        /// Nested id.
        cell: u64,
    },
    /// The rows do not fit the template.
    #[error("store {url}: parent {parent}: {message}")]
    BadRows {
        /// The store.
        url: String,
        /// Parent morton.
        parent: i64,
        /// What is wrong, as "got X, expected Y".
        message: String,
    },
    /// A column could not be converted to its variable's data type.
    #[error("store {url}: parent {parent}: variable {variable}: cannot convert {from} to {to}: {source}")]
    Cast {
        /// The store.
        url: String,
        /// Parent morton.
        parent: i64,
        /// Variable name.
        variable: String,
        /// Column type.
        from: DataType,
        /// Variable type.
        to: DataType,
        /// The cause (boxed: inline it would make every `SinkError` 136+ bytes).
        source: Box<arrow::error::ArrowError>,
    },
    /// Object store I/O failed.
    #[error("store {url}: {key}: {source}")]
    Store {
        /// The store.
        url: String,
        /// The object key below the store root.
        key: String,
        /// The cause.
        source: object_store::Error,
    },
    /// A metadata document is not what magg writes.
    #[error("store {url}: {key}: {message}")]
    Metadata {
        /// The store.
        url: String,
        /// The object key below the store root.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The codec failed (a bug or a corrupt chunk).
    #[error("store {url}: array {variable}: codec: {message}")]
    Codec {
        /// The store.
        url: String,
        /// Array name.
        variable: String,
        /// The cause.
        message: String,
    },
    /// A blocking task panicked or was cancelled.
    #[error("store {url}: encoder task failed: {message}")]
    Task {
        /// The store.
        url: String,
        /// The cause.
        message: String,
    },
}

/// One output variable: an array in the group, one value per child cell.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableSpec {
    /// Array name (not `cell_ids` or `morton`, which the sink writes itself).
    pub name: String,
    /// Int8-64, UInt8-64, Float32 or Float64.
    pub data_type: DataType,
    /// Value of children without data (and of null rows); NaN allowed for floats.
    pub fill_value: f64,
    /// Array attributes (e.g. `long_name`, `units`).
    pub attributes: Map<String, Value>,
}

/// How parent cells map to chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLayout {
    /// Chunk `i` holds the `i`-th parent (the catalog's order); the reference's layout.
    Compact {
        /// Parent mortons in chunk order.
        parents: Vec<i64>,
    },
    /// Chunk `i` holds the parent with nested id `i` (all `12 * 4^P` parents).
    FullSphere,
}

/// Chunk compression after the `bytes` codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// Uncompressed (the reference's choice).
    #[default]
    None,
    /// Zstandard at `level` (1-22; 3 is a good default).
    Zstd {
        /// Compression level.
        level: i32,
    },
}

/// Everything needed to create the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreTemplate {
    /// HEALPix order of the parent cells (one chunk each).
    pub parent_order: u8,
    /// HEALPix order of the output cells; also the group name.
    pub child_order: u8,
    /// Chunk assignment.
    pub layout: StoreLayout,
    /// Output variables in column order of [`ZarrSink::write_cell`].
    pub variables: Vec<VariableSpec>,
    /// Chunk compression.
    pub codec: Codec,
    /// Extra group attributes (e.g. the pipeline config), next to the DGGS block.
    pub attributes: Map<String, Value>,
}

/// What one [`ZarrSink::write_cell`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CellWriteStats {
    /// Rows given, i.e. children with data.
    pub cells_with_data: u64,
    /// Encoded bytes over all chunks of the cell.
    pub bytes_written: u64,
}

/// The zarr element types the sink writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ZarrType {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

impl ZarrType {
    fn from_arrow(dt: &DataType) -> Option<Self> {
        Some(match dt {
            DataType::Int8 => Self::I8,
            DataType::Int16 => Self::I16,
            DataType::Int32 => Self::I32,
            DataType::Int64 => Self::I64,
            DataType::UInt8 => Self::U8,
            DataType::UInt16 => Self::U16,
            DataType::UInt32 => Self::U32,
            DataType::UInt64 => Self::U64,
            DataType::Float32 => Self::F32,
            DataType::Float64 => Self::F64,
            _ => return None,
        })
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "int8" => Self::I8,
            "int16" => Self::I16,
            "int32" => Self::I32,
            "int64" => Self::I64,
            "uint8" => Self::U8,
            "uint16" => Self::U16,
            "uint32" => Self::U32,
            "uint64" => Self::U64,
            "float32" => Self::F32,
            "float64" => Self::F64,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::I32 => "int32",
            Self::I64 => "int64",
            Self::U8 => "uint8",
            Self::U16 => "uint16",
            Self::U32 => "uint32",
            Self::U64 => "uint64",
            Self::F32 => "float32",
            Self::F64 => "float64",
        }
    }

    fn arrow(self) -> DataType {
        match self {
            Self::I8 => DataType::Int8,
            Self::I16 => DataType::Int16,
            Self::I32 => DataType::Int32,
            Self::I64 => DataType::Int64,
            Self::U8 => DataType::UInt8,
            Self::U16 => DataType::UInt16,
            Self::U32 => DataType::UInt32,
            Self::U64 => DataType::UInt64,
            Self::F32 => DataType::Float32,
            Self::F64 => DataType::Float64,
        }
    }

    pub(crate) fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F64)
    }

    pub(crate) fn is_signed(self) -> bool {
        matches!(self, Self::I8 | Self::I16 | Self::I32 | Self::I64)
    }

    /// Whether `fill` is representable exactly in this type.
    fn accepts_fill(self, fill: f64) -> bool {
        if self.is_float() {
            return self == Self::F64 || fill.is_nan() || fill.is_infinite() || f64::from(fill as f32) == fill;
        }
        if fill.fract() != 0.0 || !fill.is_finite() {
            return false;
        }
        let (lo, hi) = match self {
            Self::I8 => (i8::MIN as f64, i8::MAX as f64),
            Self::I16 => (i16::MIN as f64, i16::MAX as f64),
            Self::I32 => (i32::MIN as f64, i32::MAX as f64),
            Self::I64 => (i64::MIN as f64, i64::MAX as f64),
            Self::U8 => (0.0, u8::MAX as f64),
            Self::U16 => (0.0, u16::MAX as f64),
            Self::U32 => (0.0, u32::MAX as f64),
            Self::U64 => (0.0, u64::MAX as f64),
            Self::F32 | Self::F64 => return true,
        };
        (lo..=hi).contains(&fill)
    }
}

type ZStore = AsyncObjectStore<Arc<dyn ObjectStore>>;

/// One array of the group with its zarrs handle (codec chain, data type, fill value).
struct ArrayInfo {
    name: String,
    ty: ZarrType,
    fill: f64,
    zarray: ZArray<ZStore>,
}

impl std::fmt::Debug for ArrayInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrayInfo")
            .field("name", &self.name)
            .field("ty", &self.ty)
            .field("fill", &self.fill)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Inner {
    /// The store rooted at the zarr root (prefix applied).
    store: Arc<dyn ObjectStore>,
    url: String,
    template: StoreTemplate,
    chunk_len: u64,
    /// Compact layout: parent morton -> chunk index.
    parent_index: HashMap<i64, u64>,
    /// Variables in template order, then `morton`, then `cell_ids` (the completion marker,
    /// written last).
    arrays: Vec<ArrayInfo>,
}

/// Writes parent-cell chunks into a Zarr v3 DGGS store. Cheap to clone; share it between
/// tasks writing different cells.
#[derive(Debug, Clone)]
pub struct ZarrSink {
    inner: Arc<Inner>,
}

fn rooted(store: Arc<dyn ObjectStore>, prefix: &Path) -> Arc<dyn ObjectStore> {
    if prefix.as_ref().is_empty() {
        store
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(store, prefix.clone()))
    }
}

fn checked_template(url: &str, t: &StoreTemplate) -> Result<(u64, Vec<ZarrType>), SinkError> {
    let bad = |message: String| SinkError::InvalidTemplate {
        url: url.to_owned(),
        message,
    };
    if t.child_order > 29 || t.parent_order > t.child_order {
        return Err(bad(format!(
            "got parent order {} and child order {}, expected parent <= child <= 29",
            t.parent_order, t.child_order
        )));
    }
    if t.child_order - t.parent_order > 15 {
        return Err(bad(format!(
            "got {} orders between parent and child, expected at most 15 (a chunk of 4^15 cells)",
            t.child_order - t.parent_order
        )));
    }
    let mut types = Vec::with_capacity(t.variables.len());
    let mut seen = std::collections::HashSet::new();
    for v in &t.variables {
        if v.name.is_empty() || v.name.contains('/') || v.name == CELL_IDS || v.name == MORTON || v.name == "zarr.json" {
            return Err(bad(format!(
                "got variable name {:?}, expected a non-empty name without '/' other than cell_ids and morton",
                v.name
            )));
        }
        if !seen.insert(v.name.as_str()) {
            return Err(bad(format!("variable {} is declared twice", v.name)));
        }
        let ty = ZarrType::from_arrow(&v.data_type).ok_or_else(|| {
            bad(format!(
                "variable {}: got data type {}, expected Int8-64, UInt8-64, Float32 or Float64",
                v.name, v.data_type
            ))
        })?;
        if !ty.accepts_fill(v.fill_value) {
            return Err(bad(format!(
                "variable {}: got fill value {}, expected a value representable as {}",
                v.name,
                v.fill_value,
                ty.name()
            )));
        }
        types.push(ty);
    }
    if let StoreLayout::Compact { parents } = &t.layout {
        let mut seen = std::collections::HashSet::new();
        for &p in parents {
            let order = magg_udfs::morton::order_of(p).map_err(|e| bad(format!("parent {p}: {e}")))?;
            if order != t.parent_order {
                return Err(bad(format!(
                    "parent {p}: got order {order}, expected the parent order {}",
                    t.parent_order
                )));
            }
            if !seen.insert(p) {
                return Err(bad(format!("parent {p} is listed twice")));
            }
        }
    }
    if let Codec::Zstd { level } = t.codec
        && !(-7..=22).contains(&level)
    {
        return Err(bad(format!("got zstd level {level}, expected -7..=22")));
    }
    Ok((1_u64 << (2 * u32::from(t.child_order - t.parent_order)), types))
}

/// Uncompressed bytes of one child over every array of `t` (variables, `morton`, `cell_ids`).
pub fn template_bytes_per_cell(t: &StoreTemplate) -> u64 {
    let vars: u64 = t
        .variables
        .iter()
        .filter_map(|v| ZarrType::from_arrow(&v.data_type))
        .map(|ty| type_size(ty) as u64)
        .sum();
    vars + 16
}

fn type_size(ty: ZarrType) -> usize {
    match ty {
        ZarrType::I8 | ZarrType::U8 => 1,
        ZarrType::I16 | ZarrType::U16 => 2,
        ZarrType::I32 | ZarrType::U32 | ZarrType::F32 => 4,
        ZarrType::I64 | ZarrType::U64 | ZarrType::F64 => 8,
    }
}

/// Remove the empty directories below `dir` (not `dir` itself); true when `dir` is empty.
fn prune_empty_dirs(dir: &std::path::Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    let mut empty = true;
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) && prune_empty_dirs(&p) && std::fs::remove_dir(&p).is_ok() {
            continue;
        }
        empty = false;
    }
    empty
}

fn num_chunks(t: &StoreTemplate) -> u64 {
    match &t.layout {
        StoreLayout::Compact { parents } => parents.len() as u64,
        StoreLayout::FullSphere => 12 << (2 * u32::from(t.parent_order)),
    }
}

impl ZarrSink {
    /// Writes the template (root group, `<child_order>/` group, one array per coordinate
    /// and variable) and returns a sink for it. Refuses to touch an existing store unless
    /// `overwrite`, in which case every object under the prefix is deleted first.
    pub async fn create(
        store: Arc<dyn ObjectStore>,
        prefix: Path,
        url: &str,
        template: &StoreTemplate,
        overwrite: bool,
    ) -> Result<Self, SinkError> {
        let (chunk_len, types) = checked_template(url, template)?;
        let root = rooted(store, &prefix);
        let existing: Vec<Path> = root
            .list(None)
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|source| SinkError::Store {
                url: url.to_owned(),
                key: String::new(),
                source,
            })?;
        if !existing.is_empty() {
            if !overwrite {
                return Err(SinkError::Exists { url: url.to_owned() });
            }
            // --overwrite deletes everything under the prefix; make sure that is a Zarr
            // store and not, say, a bucket root or a home directory given by mistake.
            if !existing.iter().any(|p| p.as_ref() == "zarr.json") {
                return Err(SinkError::NotAStore {
                    url: url.to_owned(),
                    objects: existing.len(),
                });
            }
            let stream = futures::stream::iter(existing.into_iter().map(Ok)).boxed();
            root.delete_stream(stream)
                .try_collect::<Vec<_>>()
                .await
                .map_err(|source| SinkError::Store {
                    url: url.to_owned(),
                    key: "(overwrite)".into(),
                    source,
                })?;
            // Deleting files leaves their directories on a local store; a replaced
            // store should not keep the old group's empty folders.
            if let Some(dir) = crate::store::local_path(url) {
                let _ = tokio::task::spawn_blocking(move || prune_empty_dirs(&dir)).await;
            }
        }

        let shape = num_chunks(template) * chunk_len;
        let group = template.child_order.to_string();
        let mut docs: Vec<(String, Value)> = Vec::new();
        docs.push(("zarr.json".into(), metadata::group_json(Map::new(), None)));
        docs.push((
            format!("{group}/zarr.json"),
            metadata::group_json(metadata::group_attributes(template), None),
        ));
        for (v, ty) in template.variables.iter().zip(&types) {
            docs.push((
                format!("{group}/{}/zarr.json", v.name),
                metadata::array_json(shape, chunk_len, *ty, v.fill_value, template.codec, &v.attributes),
            ));
        }
        for (name, ty) in [(MORTON, ZarrType::I64), (CELL_IDS, ZarrType::U64)] {
            docs.push((
                format!("{group}/{name}/zarr.json"),
                metadata::array_json(shape, chunk_len, ty, 0.0, template.codec, &Map::new()),
            ));
        }
        for (key, doc) in &docs {
            put(&root, url, key, metadata::to_bytes(doc)).await?;
        }
        Self::from_docs(root, url, template.clone(), chunk_len, &docs)
    }

    /// Opens a store created by [`ZarrSink::create`] (Lambda workers, `--resume`).
    pub async fn open(store: Arc<dyn ObjectStore>, prefix: Path, url: &str) -> Result<Self, SinkError> {
        let root = rooted(store, &prefix);
        let missing = || SinkError::TemplateMissing { url: url.to_owned() };
        // The group is the one numeric child of the root; list instead of guessing.
        let listing = root.list_with_delimiter(None).await.map_err(|source| SinkError::Store {
            url: url.to_owned(),
            key: String::new(),
            source,
        })?;
        let group = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .find(|name| name.parse::<u8>().is_ok())
            .ok_or_else(missing)?;
        let group_key = format!("{group}/zarr.json");
        let group_doc = get_json(&root, url, &group_key).await?.ok_or_else(missing)?;
        let meta_err = |key: &str, message: String| SinkError::Metadata {
            url: url.to_owned(),
            key: key.to_owned(),
            message,
        };
        let attrs = group_doc
            .get("attributes")
            .and_then(Value::as_object)
            .ok_or_else(|| meta_err(&group_key, "got no attributes object, expected one".into()))?;
        let magg = attrs.get("magg").and_then(Value::as_object).ok_or_else(missing)?;
        let child_order: u8 = group.parse().map_err(|_| missing())?;
        let parent_order = magg
            .get("parent_order")
            .and_then(Value::as_u64)
            .and_then(|p| u8::try_from(p).ok())
            .ok_or_else(|| meta_err(&group_key, "magg.parent_order: got none, expected an order".into()))?;
        let layout = match magg.get("layout").and_then(Value::as_str) {
            Some("compact") => StoreLayout::Compact {
                parents: magg
                    .get("parents")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
                    .ok_or_else(|| meta_err(&group_key, "magg.parents: got none, expected a list of mortons".into()))?,
            },
            Some("full_sphere") => StoreLayout::FullSphere,
            other => {
                return Err(meta_err(
                    &group_key,
                    format!("magg.layout: got {other:?}, expected \"compact\" or \"full_sphere\""),
                ));
            }
        };
        let names: Vec<String> = magg
            .get("variables")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .ok_or_else(|| meta_err(&group_key, "magg.variables: got none, expected a list of names".into()))?;
        let mut attributes = attrs.clone();
        for k in ["zarr_conventions", "dggs", "magg"] {
            attributes.remove(k);
        }

        let mut docs = vec![("zarr.json".to_owned(), get_json(&root, url, "zarr.json").await?.ok_or_else(missing)?)];
        docs.push((group_key.clone(), group_doc.clone()));
        let mut variables = Vec::with_capacity(names.len());
        let mut codec = Codec::None;
        for name in names.iter().map(String::as_str).chain([MORTON, CELL_IDS]) {
            let key = format!("{group}/{name}/zarr.json");
            let doc = get_json(&root, url, &key).await?.ok_or_else(missing)?;
            let ty = doc
                .get("data_type")
                .and_then(Value::as_str)
                .and_then(ZarrType::from_name)
                .ok_or_else(|| meta_err(&key, format!("got data_type {:?}, expected a numeric type", doc.get("data_type"))))?;
            let fill = doc
                .get("fill_value")
                .and_then(metadata::fill_value_from_json)
                .ok_or_else(|| meta_err(&key, format!("got fill_value {:?}, expected a number", doc.get("fill_value"))))?;
            if let Some(zstd) = doc
                .get("codecs")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c.get("name").and_then(Value::as_str) == Some("zstd")))
            {
                let level = zstd.pointer("/configuration/level").and_then(Value::as_i64).unwrap_or(3);
                codec = Codec::Zstd { level: level as i32 };
            }
            if name != MORTON && name != CELL_IDS {
                variables.push(VariableSpec {
                    name: name.to_owned(),
                    data_type: ty.arrow(),
                    fill_value: fill,
                    attributes: doc.get("attributes").and_then(Value::as_object).cloned().unwrap_or_default(),
                });
            }
            docs.push((key, doc));
        }
        let template = StoreTemplate {
            parent_order,
            child_order,
            layout,
            variables,
            codec,
            attributes,
        };
        let (chunk_len, _) = checked_template(url, &template)?;
        Self::from_docs(root, url, template, chunk_len, &docs)
    }

    fn from_docs(
        root: Arc<dyn ObjectStore>,
        url: &str,
        template: StoreTemplate,
        chunk_len: u64,
        docs: &[(String, Value)],
    ) -> Result<Self, SinkError> {
        let zstore = Arc::new(AsyncObjectStore::new(Arc::clone(&root)));
        let group = template.child_order.to_string();
        let mut arrays = Vec::new();
        let mut names: Vec<(&str, ZarrType, f64)> = Vec::new();
        for v in &template.variables {
            let ty = ZarrType::from_arrow(&v.data_type).ok_or_else(|| SinkError::InvalidTemplate {
                url: url.to_owned(),
                message: format!("variable {}: unsupported data type {}", v.name, v.data_type),
            })?;
            names.push((&v.name, ty, v.fill_value));
        }
        names.push((MORTON, ZarrType::I64, 0.0));
        names.push((CELL_IDS, ZarrType::U64, 0.0));
        for (name, ty, fill) in names {
            let key = format!("{group}/{name}/zarr.json");
            let doc = docs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, d)| d.clone())
                .ok_or_else(|| SinkError::TemplateMissing { url: url.to_owned() })?;
            let meta: ArrayMetadataV3 = serde_json::from_value(doc).map_err(|e| SinkError::Metadata {
                url: url.to_owned(),
                key: key.clone(),
                message: format!("not zarr v3 array metadata: {e}"),
            })?;
            let zarray = ZArray::new_with_metadata(Arc::clone(&zstore), &format!("/{group}/{name}"), ArrayMetadata::V3(meta))
                .map_err(|e| SinkError::Metadata {
                    url: url.to_owned(),
                    key: key.clone(),
                    message: e.to_string(),
                })?;
            arrays.push(ArrayInfo {
                name: name.to_owned(),
                ty,
                fill,
                zarray,
            });
        }
        let parent_index = match &template.layout {
            StoreLayout::Compact { parents } => parents.iter().enumerate().map(|(i, &p)| (p, i as u64)).collect(),
            StoreLayout::FullSphere => HashMap::new(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store: root,
                url: url.to_owned(),
                template,
                chunk_len,
                parent_index,
                arrays,
            }),
        })
    }

    /// The template the store was created with.
    pub fn template(&self) -> &StoreTemplate {
        &self.inner.template
    }

    /// The store url given at create/open (for messages).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Cells per chunk: `4^(child_order - parent_order)`.
    pub fn chunk_len(&self) -> u64 {
        self.inner.chunk_len
    }

    /// The chunk holding a parent: its catalog position (compact) or nested id (full sphere).
    pub fn chunk_index(&self, parent_morton: i64) -> Result<u64, SinkError> {
        let inner = &self.inner;
        match &inner.template.layout {
            StoreLayout::Compact { parents } => {
                inner
                    .parent_index
                    .get(&parent_morton)
                    .copied()
                    .ok_or_else(|| SinkError::UnknownParent {
                        url: inner.url.clone(),
                        parent: parent_morton,
                        count: parents.len(),
                    })
            }
            StoreLayout::FullSphere => Ok(self.parent_nested(parent_morton)?),
        }
    }

    /// The parent's nested id at the parent order, checking the order.
    fn parent_nested(&self, parent_morton: i64) -> Result<u64, SinkError> {
        let inner = &self.inner;
        let (nested, order) = magg_udfs::morton::to_nested(parent_morton).map_err(|e| SinkError::BadParent {
            url: inner.url.clone(),
            parent: parent_morton,
            message: e.to_string(),
        })?;
        if order != inner.template.parent_order {
            return Err(SinkError::BadParent {
                url: inner.url.clone(),
                parent: parent_morton,
                message: format!("got order {order}, expected the parent order {}", inner.template.parent_order),
            });
        }
        Ok(nested)
    }

    fn chunk_key(&self, array: &str, chunk: u64) -> String {
        format!("{}/{array}/c/{chunk}", self.inner.template.child_order)
    }

    /// Writes the parent's chunk of every array: rows scattered to their child position,
    /// every other child at the variable's fill value (count 0, NaN, ...), and the
    /// `cell_ids`/`morton` coordinates in full. `cells` are nested ids at the child order,
    /// unique, inside the parent, in any order; `columns` follow the template's variables
    /// and are cast to each variable's type (nulls become the fill value).
    pub async fn write_cell(
        &self,
        parent_morton: i64,
        cells: &UInt64Array,
        columns: &[ArrayRef],
    ) -> Result<CellWriteStats, SinkError> {
        let chunk = self.chunk_index(parent_morton)?;
        let parent = self.parent_nested(parent_morton)?;
        let sink = self.clone();
        let cells = cells.clone();
        let columns = columns.to_vec();
        // Scatter and compression are CPU work; keep them off the async workers.
        let encoded = tokio::task::spawn_blocking(move || sink.encode_cell(parent_morton, parent, &cells, &columns))
            .await
            .map_err(|e| SinkError::Task {
                url: self.inner.url.clone(),
                message: e.to_string(),
            })??;
        let cells_with_data = encoded.rows;
        let bytes_written: u64 = encoded.chunks.iter().map(|(_, b)| b.len() as u64).sum();
        let (marker, rest) = encoded
            .chunks
            .split_last()
            .ok_or_else(|| SinkError::Task {
                url: self.inner.url.clone(),
                message: "no arrays in the template".into(),
            })?;
        let puts = rest.iter().map(|(name, bytes)| {
            let key = self.chunk_key(name, chunk);
            let store = Arc::clone(&self.inner.store);
            let url = self.inner.url.clone();
            let bytes = bytes.clone();
            async move { put(&store, &url, &key, bytes).await }
        });
        futures::future::try_join_all(puts).await?;
        // The marker goes last: if anything above failed, the cell reads as incomplete.
        put(&self.inner.store, &self.inner.url, &self.chunk_key(&marker.0, chunk), marker.1.clone()).await?;
        Ok(CellWriteStats {
            cells_with_data,
            bytes_written,
        })
    }

    fn encode_cell(
        &self,
        parent_morton: i64,
        parent: u64,
        cells: &UInt64Array,
        columns: &[ArrayRef],
    ) -> Result<Encoded, SinkError> {
        let inner = &self.inner;
        let t = &inner.template;
        let url = &inner.url;
        let bad_rows = |message: String| SinkError::BadRows {
            url: url.clone(),
            parent: parent_morton,
            message,
        };
        if columns.len() != t.variables.len() {
            return Err(bad_rows(format!(
                "got {} columns, expected {} (one per variable: {})",
                columns.len(),
                t.variables.len(),
                t.variables.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        if cells.null_count() > 0 {
            return Err(bad_rows(format!("got {} null cell ids, expected none", cells.null_count())));
        }
        let n = inner.chunk_len;
        let first = parent * n;
        let last = first + n - 1;
        // Position of every row inside the chunk, checked once for all variables.
        let mut seen = vec![false; n as usize];
        let mut positions = Vec::with_capacity(cells.len());
        for &cell in cells.values() {
            if !(first..=last).contains(&cell) {
                return Err(SinkError::CellOutsideParent {
                    url: url.clone(),
                    cell,
                    parent: parent_morton,
                    child_order: t.child_order,
                    first,
                    last,
                });
            }
            let pos = (cell - first) as usize;
            if std::mem::replace(&mut seen[pos], true) {
                return Err(SinkError::DuplicateCell {
                    url: url.clone(),
                    parent: parent_morton,
                    cell,
                });
            }
            positions.push(pos);
        }
        let mut chunks = Vec::with_capacity(inner.arrays.len());
        for (info, column) in inner.arrays.iter().zip(columns) {
            if column.len() != cells.len() {
                return Err(bad_rows(format!(
                    "variable {}: got {} rows, expected {} (one per cell id)",
                    info.name,
                    column.len(),
                    cells.len()
                )));
            }
            let target = info.ty.arrow();
            let cast = cast_with_options(column, &target, &CastOptions { safe: false, ..Default::default() })
                .map_err(|source| SinkError::Cast {
                    url: url.clone(),
                    parent: parent_morton,
                    variable: info.name.clone(),
                    from: column.data_type().clone(),
                    to: target.clone(),
                    source: Box::new(source),
                })?;
            let raw = scatter_any(info.ty, &cast, &positions, n as usize, info.fill);
            chunks.push((info.name.clone(), self.encode(info, raw)?));
        }
        // Coordinates: every child, whether or not it has data.
        let ids: Vec<u64> = (first..=last).collect();
        let mut mortons = Vec::with_capacity(ids.len());
        for &id in &ids {
            mortons.push(magg_udfs::morton::from_nested(id, t.child_order).map_err(|e| SinkError::BadParent {
                url: url.clone(),
                parent: parent_morton,
                message: format!("child {id}: {e}"),
            })?);
        }
        let k = inner.arrays.len();
        chunks.push((MORTON.into(), self.encode(&inner.arrays[k - 2], le_bytes(&mortons))?));
        chunks.push((CELL_IDS.into(), self.encode(&inner.arrays[k - 1], le_bytes(&ids))?));
        Ok(Encoded {
            rows: cells.len() as u64,
            chunks,
        })
    }

    /// Runs the array's codec chain (bytes, then zstd if configured) over a raw chunk.
    fn encode(&self, info: &ArrayInfo, raw: Vec<u8>) -> Result<bytes::Bytes, SinkError> {
        let shape = [NonZeroU64::new(self.inner.chunk_len).unwrap_or(NonZeroU64::MIN)];
        let encoded = info
            .zarray
            .codecs()
            .encode(
                ArrayBytes::from(raw),
                &shape,
                info.zarray.data_type(),
                info.zarray.fill_value(),
                &CodecOptions::default(),
            )
            .map_err(|e| SinkError::Codec {
                url: self.inner.url.clone(),
                variable: info.name.clone(),
                message: e.to_string(),
            })?;
        Ok(bytes::Bytes::from(encoded.into_owned()))
    }

    /// Whether the parent's chunks are all there and whole: `cell_ids` (written last, so
    /// its absence answers quickly for cells never or only partly written) holds exactly
    /// the parent's children, and every other array's chunk decodes to a full chunk. A
    /// truncated, empty or foreign chunk makes the cell incomplete, so `--resume` writes
    /// it again instead of keeping it.
    pub async fn cell_complete(&self, parent_morton: i64) -> Result<bool, SinkError> {
        let chunk = self.chunk_index(parent_morton)?;
        let parent = self.parent_nested(parent_morton)?;
        let inner = &self.inner;
        let Some((marker, rest)) = inner.arrays.split_last() else {
            return Ok(false);
        };
        let Some(ids) = self.read_chunk(marker, chunk).await? else {
            return Ok(false);
        };
        let first = parent * inner.chunk_len;
        let want = le_bytes(&(first..first + inner.chunk_len).collect::<Vec<u64>>());
        if ids != want {
            return Ok(false);
        }
        let reads = rest.iter().map(|a| self.read_chunk(a, chunk));
        Ok(futures::future::try_join_all(reads).await?.iter().all(Option::is_some))
    }

    /// The decoded bytes of one chunk, `None` when it is absent or does not decode to a
    /// full chunk.
    async fn read_chunk(&self, info: &ArrayInfo, chunk: u64) -> Result<Option<Vec<u8>>, SinkError> {
        let inner = &self.inner;
        let key = self.chunk_key(&info.name, chunk);
        let bytes = match inner.store.get(&Path::from(key.as_str())).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(SinkError::Store { url: inner.url.clone(), key, source }),
        };
        let shape = [NonZeroU64::new(inner.chunk_len).unwrap_or(NonZeroU64::MIN)];
        let decoded = info.zarray.codecs().decode(
            std::borrow::Cow::Owned(bytes.to_vec()),
            &shape,
            info.zarray.data_type(),
            info.zarray.fill_value(),
            &CodecOptions::default(),
        );
        let full = inner.chunk_len as usize * type_size(info.ty);
        Ok(match decoded.map(|d| d.into_fixed().map(|f| f.into_owned())) {
            Ok(Ok(raw)) if raw.len() == full => Some(raw),
            _ => None,
        })
    }

    /// Delete the parent's chunk of every array, the completeness marker first, so a
    /// rewrite that fails leaves the cell incomplete (and `--resume` retries it) rather
    /// than holding the previous run's values under a new run's name. Only this cell's
    /// objects are touched: another run writing other cells of the store is unaffected.
    pub async fn clear_cell(&self, parent_morton: i64) -> Result<(), SinkError> {
        let chunk = self.chunk_index(parent_morton)?;
        let inner = &self.inner;
        for a in inner.arrays.iter().rev() {
            let key = self.chunk_key(&a.name, chunk);
            match inner.store.delete(&Path::from(key.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => return Err(SinkError::Store { url: inner.url.clone(), key, source }),
            }
        }
        Ok(())
    }

    /// Bytes of one child over every array (the variables and both coordinates),
    /// uncompressed: the chunk set of one parent is this times [`Self::chunk_len`].
    pub fn bytes_per_cell(&self) -> u64 {
        template_bytes_per_cell(&self.inner.template)
    }

    /// Rewrites the root `zarr.json` with inline consolidated metadata, as zarr-python's
    /// `consolidate_metadata` does: every node below the root, keyed by path, sorted.
    pub async fn consolidate(&self) -> Result<(), SinkError> {
        let inner = &self.inner;
        let group = inner.template.child_order.to_string();
        let mut members: Vec<(String, Value)> = Vec::new();
        let group_key = format!("{group}/zarr.json");
        let mut group_doc = get_json(&inner.store, &inner.url, &group_key)
            .await?
            .ok_or_else(|| SinkError::TemplateMissing { url: inner.url.clone() })?;
        // zarr-python marks child groups as consolidated-and-empty inside the root's map.
        if let Value::Object(m) = &mut group_doc {
            let node_type = m.remove("node_type");
            m.insert(
                "consolidated_metadata".into(),
                serde_json::json!({"kind": "inline", "must_understand": false, "metadata": {}}),
            );
            if let Some(nt) = node_type {
                m.insert("node_type".into(), nt);
            }
        }
        members.push((group.clone(), group_doc));
        for a in &inner.arrays {
            let key = format!("{group}/{}/zarr.json", a.name);
            let doc = get_json(&inner.store, &inner.url, &key)
                .await?
                .ok_or_else(|| SinkError::TemplateMissing { url: inner.url.clone() })?;
            members.push((format!("{group}/{}", a.name), doc));
        }
        members.sort_by(|a, b| a.0.cmp(&b.0));
        let root_doc = get_json(&inner.store, &inner.url, "zarr.json").await?;
        let root_attrs = root_doc
            .as_ref()
            .and_then(|d| d.get("attributes"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let doc = metadata::group_json(root_attrs, Some(members.into_iter().collect()));
        put(&inner.store, &inner.url, "zarr.json", metadata::to_bytes(&doc)).await
    }
}

struct Encoded {
    rows: u64,
    /// (array name, encoded chunk) in `Inner::arrays` order; `cell_ids` last.
    chunks: Vec<(String, bytes::Bytes)>,
}

/// Little-endian bytes of a slice, the `bytes` codec's input.
trait LeBytes: Copy {
    fn extend_le(self, out: &mut Vec<u8>);
}
macro_rules! le_impl {
    ($($t:ty),*) => {$(
        impl LeBytes for $t {
            fn extend_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
le_impl!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

fn le_bytes<T: LeBytes>(v: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(v));
    for &x in v {
        x.extend_le(&mut out);
    }
    out
}

/// Fills a chunk with `fill` and puts each valid row at its position.
fn scatter<T>(col: &ArrayRef, positions: &[usize], n: usize, fill: T::Native) -> Vec<u8>
where
    T: ArrowPrimitiveType,
    T::Native: LeBytes,
{
    let mut out = vec![fill; n];
    if let Some(col) = col.as_any().downcast_ref::<PrimitiveArray<T>>() {
        for (row, &pos) in positions.iter().enumerate() {
            if col.is_valid(row) {
                out[pos] = col.value(row);
            }
        }
    }
    le_bytes(&out)
}

/// [`scatter`] for the column's zarr type (the column was cast to it already).
fn scatter_any(ty: ZarrType, col: &ArrayRef, positions: &[usize], n: usize, fill: f64) -> Vec<u8> {
    match ty {
        ZarrType::I8 => scatter::<Int8Type>(col, positions, n, fill as i8),
        ZarrType::I16 => scatter::<Int16Type>(col, positions, n, fill as i16),
        ZarrType::I32 => scatter::<Int32Type>(col, positions, n, fill as i32),
        ZarrType::I64 => scatter::<Int64Type>(col, positions, n, fill as i64),
        ZarrType::U8 => scatter::<UInt8Type>(col, positions, n, fill as u8),
        ZarrType::U16 => scatter::<UInt16Type>(col, positions, n, fill as u16),
        ZarrType::U32 => scatter::<UInt32Type>(col, positions, n, fill as u32),
        ZarrType::U64 => scatter::<UInt64Type>(col, positions, n, fill as u64),
        ZarrType::F32 => scatter::<Float32Type>(col, positions, n, fill as f32),
        ZarrType::F64 => scatter::<Float64Type>(col, positions, n, fill),
    }
}

async fn put(store: &Arc<dyn ObjectStore>, url: &str, key: &str, bytes: impl Into<PutPayload>) -> Result<(), SinkError> {
    store
        .put(&Path::from(key), bytes.into())
        .await
        .map(|_| ())
        .map_err(|source| SinkError::Store {
            url: url.to_owned(),
            key: key.to_owned(),
            source,
        })
}

async fn get_json(store: &Arc<dyn ObjectStore>, url: &str, key: &str) -> Result<Option<Value>, SinkError> {
    let bytes = match store.get(&Path::from(key)).await {
        Ok(r) => r.bytes().await,
        Err(e) => Err(e),
    };
    match bytes {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| SinkError::Metadata {
            url: url.to_owned(),
            key: key.to_owned(),
            message: format!("not JSON: {e}"),
        }),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(source) => Err(SinkError::Store {
            url: url.to_owned(),
            key: key.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests;
