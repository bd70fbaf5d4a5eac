//! Typed errors of the HDF5 layer. Every variant names the object URL, and the dataset or
//! group path when one is involved, so a failure in a run over thousands of granules says
//! which granule and which variable to look at.

/// Errors opening or reading an HDF5 granule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum H5Error {
    /// The object, group or dataset does not exist (`path` is `/` for a missing object).
    #[error("{}", not_found_message(url, path))]
    NotFound { url: String, path: String },
    /// The path names a group where a dataset was expected.
    #[error("{path} in {url} is a group, not a dataset")]
    NotADataset { url: String, path: String },
    /// The object has no bytes at all.
    #[error("granule {url} is an empty file (0 bytes), expected an HDF5 file")]
    Empty { url: String },
    /// The bytes do not form a valid HDF5 structure (truncated file, bad checksum, bad
    /// signature, a chunk that does not decode to its declared size, a parser panic).
    #[error("corrupt hdf5 {url} at {path}: {detail}")]
    Corrupt { url: String, path: String, detail: String },
    /// Valid HDF5 that this reader does not handle (e.g. szip, 2-D reads, compound types).
    #[error("unsupported hdf5 feature in {url} at {path}: {feature}")]
    Unsupported { url: String, path: String, feature: String },
    /// The object store failed.
    #[error("i/o error reading {url}: {source}")]
    Io {
        url: String,
        #[source]
        source: object_store::Error,
    },
    /// The URL could not be resolved to a store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The requested rows are not a valid selection of the dataset.
    #[error("invalid row selection for {path} in {url}: {detail}")]
    InvalidSelection { url: String, path: String, detail: String },
}

fn not_found_message(url: &str, path: &str) -> String {
    if path == "/" { format!("granule not found: {url}") } else { format!("{path} not found in {url}") }
}

impl H5Error {
    pub(crate) fn corrupt(url: &str, path: &str, detail: impl Into<String>) -> Self {
        Self::Corrupt { url: url.to_string(), path: path.to_string(), detail: detail.into() }
    }

    pub(crate) fn unsupported(url: &str, path: &str, feature: impl Into<String>) -> Self {
        Self::Unsupported { url: url.to_string(), path: path.to_string(), feature: feature.into() }
    }

    pub(crate) fn not_found(url: &str, path: &str) -> Self {
        Self::NotFound { url: url.to_string(), path: path.to_string() }
    }

    pub(crate) fn io(url: &str, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Self::not_found(url, "/"),
            source => Self::Io { url: url.to_string(), source },
        }
    }

    /// Classify an `hdf5-reader` error. `io` is the object-store error the metadata cache
    /// recorded, if the parser failed because a fetch failed.
    pub(crate) fn from_parser(
        url: &str,
        path: &str,
        err: hdf5_reader::error::Error,
        io: Option<object_store::Error>,
    ) -> Self {
        use hdf5_reader::error::Error as E;
        if let Some(source) = io {
            return Self::io(url, source);
        }
        match err {
            E::Context { source, .. } => Self::from_parser(url, path, *source, None),
            E::GroupNotFound(_) | E::DatasetNotFound(_) | E::AttributeNotFound(_) => {
                Self::not_found(url, path)
            }
            e @ (E::UnsupportedSuperblockVersion(_)
            | E::UnsupportedObjectHeaderVersion(_)
            | E::UnsupportedBTreeVersion(_)
            | E::UnsupportedSymbolTableNodeVersion(_)
            | E::UnsupportedLocalHeapVersion(_)
            | E::UnsupportedGlobalHeapVersion(_)
            | E::UnsupportedFractalHeapVersion(_)
            | E::UnsupportedDataspaceVersion(_)
            | E::UnsupportedDatatypeClass(_)
            | E::UnsupportedLayoutClass(_)
            | E::UnsupportedLayoutVersion(_)
            | E::UnsupportedFilterPipelineVersion(_)
            | E::UnsupportedFillValueVersion(_)
            | E::UnsupportedLinkVersion(_)
            | E::UnsupportedLinkType(_)
            | E::UnsupportedAttributeVersion(_)
            | E::UnsupportedBTreeV2RecordType(_)
            | E::UnsupportedChunkIndexType(_)
            | E::UnsupportedOffsetSize(_)
            | E::UnsupportedLengthSize(_)
            | E::UnsupportedFilter(_)
            | E::UnsupportedEncoding(_)) => Self::unsupported(url, path, e.to_string()),
            e => Self::corrupt(url, path, e.to_string()),
        }
    }
}
