//! Granule catalogs: which granules touch which parent cell.
//!
//! The JSON format is the reference's (REFERENCE.md section 3):
//!
//! ```json
//! {"metadata": {"short_name": "ATL06", "version": "007", "parent_order": 6, ...},
//!  "catalog": {"-4211322": ["s3://.../ATL06_...h5", ...], ...}}
//! ```
//!
//! Key order matters: the position of a cell in `catalog` is its chunk index in a compact
//! output store, so the map keeps insertion order on read and write.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// Errors reading or writing a catalog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The file could not be read or written.
    #[error("catalog {path}: {source}")]
    Io {
        /// The catalog file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a catalog.
    #[error("catalog {path}: not a granule catalog ({source}); expected {{\"metadata\": {{...}}, \"catalog\": {{\"<morton>\": [urls]}}}}")]
    Parse {
        /// The catalog file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A key of `catalog` is not a decimal morton index at the catalog's parent order.
    #[error("catalog {path}: key {key:?} is not a morton index at order {order}")]
    BadKey {
        /// The catalog file.
        path: PathBuf,
        /// The offending key.
        key: String,
        /// The catalog's `metadata.parent_order`.
        order: u8,
    },
}

/// The `metadata` block of a catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogMetadata {
    /// CMR short name, e.g. `ATL06`.
    pub short_name: String,
    /// Product version, e.g. `007`.
    pub version: String,
    /// CMR provider, e.g. `NSIDC_CPRD` (`synthetic` for `magg synth`).
    pub provider: String,
    /// First day, `YYYY-MM-DD`.
    pub start_date: String,
    /// Last day, `YYYY-MM-DD`.
    pub end_date: String,
    /// HEALPix order of the catalog's cells.
    pub parent_order: u8,
    /// Distinct granules over all cells.
    pub total_granules: usize,
    /// Number of cells.
    pub total_cells: usize,
    /// When the catalog was made (ISO 8601).
    pub created: String,
    /// ICESat-2 cycle, when the catalog was built for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle: Option<u32>,
    /// `[lon_min, lat_min, lon_max, lat_max]` of the query, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<Vec<f64>>,
    /// The area of interest as GeoJSON, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polygon: Option<serde_json::Value>,
}

/// A granule catalog: parent cells (decimal morton keys, in chunk order) to granule URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// What the catalog was built from.
    pub metadata: CatalogMetadata,
    /// Parent morton (decimal string) -> granule URLs, in chunk order. A key listed
    /// twice is an error (serde would keep the last list and lose the first).
    #[serde(deserialize_with = "crate::unique_map::deserialize")]
    pub catalog: IndexMap<String, Vec<String>>,
    /// What reading the catalog corrected (a granule listed twice in one cell), for the
    /// front end to print. Not part of the file.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One parent cell of a catalog with its chunk index.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogCell {
    /// Position in the catalog: the chunk index in a compact store.
    pub chunk_idx: usize,
    /// The parent cell as a decimal morton index.
    pub morton: i64,
    /// Granule URLs touching the cell.
    pub granules: Vec<String>,
}

impl Catalog {
    /// Read a catalog file and check that every key is a morton index at the parent order.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, CatalogError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Parse catalog JSON; `path` only names the source in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, CatalogError> {
        let mut catalog: Catalog = serde_json::from_str(text).map_err(|source| CatalogError::Parse {
            path: path.to_owned(),
            source,
        })?;
        catalog.dedupe_granules(path);
        let order = catalog.metadata.parent_order;
        for key in catalog.catalog.keys() {
            let ok = key
                .parse::<i64>()
                .ok()
                .and_then(|m| magg_udfs::morton::order_of(m).ok())
                .is_some_and(|o| o == order);
            if !ok {
                return Err(CatalogError::BadKey {
                    path: path.to_owned(),
                    key: key.clone(),
                    order,
                });
            }
        }
        Ok(catalog)
    }

    /// Keep each granule once per cell. Two spellings of one granule (`./a.h5` and
    /// `a.h5`, or the same URL twice) would be read twice and every observation counted
    /// twice; the first spelling is kept and a warning names the others.
    fn dedupe_granules(&mut self, path: &Path) {
        for (key, urls) in &mut self.catalog {
            let mut seen: IndexMap<String, usize> = IndexMap::new();
            let mut kept = Vec::with_capacity(urls.len());
            for url in urls.drain(..) {
                let canonical = crate::store::normalize_url(&url);
                match seen.get(&canonical) {
                    Some(&first) => self.warnings.push(crate::store::redact(&format!(
                        "catalog {}: cell {key} lists granule {} again as {url}; it is read once",
                        path.display(),
                        kept[first]
                    ))),
                    None => {
                        seen.insert(canonical, kept.len());
                        kept.push(url);
                    }
                }
            }
            *urls = kept;
        }
    }

    /// Write the catalog as pretty JSON.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), CatalogError> {
        let path = path.as_ref();
        let text = serde_json::to_string_pretty(self).map_err(|source| CatalogError::Parse {
            path: path.to_owned(),
            source,
        })?;
        std::fs::write(path, text + "\n").map_err(|source| CatalogError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// The cells in chunk order.
    pub fn cells(&self) -> Vec<CatalogCell> {
        self.catalog
            .iter()
            .enumerate()
            .map(|(chunk_idx, (key, granules))| CatalogCell {
                chunk_idx,
                // Keys were validated on read; a catalog built in code uses valid keys.
                morton: key.parse().unwrap_or_default(),
                granules: granules.clone(),
            })
            .collect()
    }

    /// SHA-256 (hex) of the cells in chunk order and each cell's granules (spelled
    /// canonically, in sorted order): what a store records so that a run over another
    /// catalog does not resume it.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (key, urls) in &self.catalog {
            h.update(key.as_bytes());
            h.update(b"\n");
            let mut canon: Vec<String> = urls.iter().map(|u| crate::store::normalize_url(u)).collect();
            canon.sort();
            canon.dedup();
            for u in canon {
                h.update(b"\t");
                h.update(u.as_bytes());
                h.update(b"\n");
            }
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Distinct granule URLs over all cells, in first-seen order.
    pub fn granules(&self) -> Vec<String> {
        let mut seen = indexmap::IndexSet::new();
        for urls in self.catalog.values() {
            for url in urls {
                seen.insert(url.clone());
            }
        }
        seen.into_iter().collect()
    }
}
