//! From raw inputs to a resolved [`RunConfig`]: the one place every front end (`magg
//! run`, `magg demo`, `magg export`, the Lambda handler, `magg invoke`) turns a config
//! name or path, a catalog, a cell selection, a store and worker counts into a run.

use std::path::{Path, PathBuf};

use super::{RunConfig, RunError};
use crate::catalog::{Catalog, CatalogCell};
use crate::config::PipelineConfig;
use crate::h5::ReadOptions;
use crate::store::StoreOptions;

/// Where the coordinate index file is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IndexLocation {
    /// Next to a local catalog (`catalog.json` -> `catalog.index.json`); none for a
    /// remote catalog.
    #[default]
    NextToCatalog,
    /// This file.
    At(PathBuf),
    /// Neither read nor write an index file.
    Off,
}

/// A run as a front end has it: names, paths and flags, nothing resolved yet.
#[derive(Debug, Clone, Default)]
pub struct RunInputs {
    /// Pipeline config: a YAML path or `s3://` URL, or a built-in name (`atl06`).
    /// `None`: the built-in `atl06`.
    pub config: Option<String>,
    /// Catalog JSON: a local path or an `s3://`/`https://` URL.
    pub catalog: String,
    /// Only these parent cells (decimal morton), in this order.
    pub morton_cells: Vec<i64>,
    /// Only the first N selected cells.
    pub max_cells: Option<usize>,
    /// Output store; `None`: `output.store` of the config.
    pub store: Option<String>,
    /// Cores to use; `None`: all.
    pub workers: Option<usize>,
    /// The coordinate index file.
    pub index: IndexLocation,
    /// [`RunConfig::overwrite`].
    pub overwrite: bool,
    /// [`RunConfig::resume`].
    pub resume: bool,
    /// [`RunConfig::yes`].
    pub yes: bool,
    /// Only planning: a missing store is not an error.
    pub dry_run: bool,
    /// Credentials and endpoint for granules (and for a remote config or catalog).
    pub read_store: StoreOptions,
    /// Credentials and endpoint for the output store.
    pub write_store: StoreOptions,
}

/// A resolved run, with the catalog it came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The run.
    pub config: RunConfig,
    /// The whole catalog (the run's cells are a selection of it).
    pub catalog: Catalog,
    /// What resolving corrected or noticed (a granule listed twice in a cell).
    pub warnings: Vec<String>,
}

/// Built-in pipeline configs by name.
pub const BUILT_IN_CONFIGS: [&str; 1] = ["atl06"];

impl RunInputs {
    /// Inputs for every cell of `catalog` with the built-in config.
    pub fn new(catalog: impl Into<String>) -> Self {
        Self { catalog: catalog.into(), ..Self::default() }
    }

    /// Read the config and the catalog, select the cells, choose the store, the index
    /// file and the worker counts.
    pub async fn resolve(&self) -> Result<Resolved, RunError> {
        let pipeline = load_pipeline(self.config.as_deref(), &self.read_store).await?;
        let catalog = load_catalog(&self.catalog, &self.read_store).await?;
        let cells = select_cells(&catalog, &self.morton_cells, self.max_cells)?;
        let store_url = match self.store.clone().or_else(|| pipeline.output.store.clone()) {
            Some(s) => s,
            None if self.dry_run => String::new(),
            None => {
                return Err(RunError::Input(
                    "no output store: give --store, or set output.store in the config".into(),
                ));
            }
        };
        let workers = self.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
        let index = match &self.index {
            IndexLocation::Off => None,
            IndexLocation::At(p) => Some(p.clone()),
            IndexLocation::NextToCatalog => crate::store::local_path(&self.catalog).map(|p| crate::table::index::default_path(&p)),
        };
        let mut config = RunConfig::new(pipeline, &catalog, store_url);
        config.cells = cells;
        config.read_store = self.read_store.clone();
        config.write_store = self.write_store.clone();
        // Workers bound the decode threads too, so 1 worker means one core.
        config.read = ReadOptions::default().with_decode_threads(workers);
        config.workers = workers;
        config.overwrite = self.overwrite;
        config.resume = self.resume;
        config.yes = self.yes;
        config.index = index;
        let warnings = catalog.warnings.clone();
        Ok(Resolved { config, catalog, warnings })
    }
}

/// A pipeline config by built-in name, local path or remote URL.
pub async fn load_pipeline(arg: Option<&str>, store: &StoreOptions) -> Result<PipelineConfig, RunError> {
    match arg {
        None => Ok(PipelineConfig::atl06()),
        Some(name) if BUILT_IN_CONFIGS.contains(&name) && !Path::new(name).exists() => Ok(PipelineConfig::atl06()),
        Some(url) if is_remote(url) => {
            let text = read_text(url, store).await?;
            let stem = url.rsplit('/').next().unwrap_or(url);
            let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
            Ok(PipelineConfig::from_yaml(&text, stem, Path::new(url))?)
        }
        Some(path) => Ok(PipelineConfig::load(path)?),
    }
}

/// A catalog from a local path or a remote URL.
pub async fn load_catalog(url: &str, store: &StoreOptions) -> Result<Catalog, RunError> {
    let result = if is_remote(url) {
        Catalog::from_json(&read_text(url, store).await?, Path::new(url))
    } else {
        Catalog::read(url)
    };
    result.map_err(|e| RunError::Input(crate::errors::message(&e)))
}

/// The catalog cells selected by `morton` (in that order; each must be in the catalog)
/// and then the first `max_cells` of them.
pub fn select_cells(catalog: &Catalog, morton: &[i64], max_cells: Option<usize>) -> Result<Vec<CatalogCell>, RunError> {
    let all = catalog.cells();
    let mut cells: Vec<CatalogCell> = if morton.is_empty() {
        all
    } else {
        let mut out: Vec<CatalogCell> = Vec::new();
        for m in morton {
            if out.iter().any(|c| c.morton == *m) {
                continue;
            }
            match all.iter().find(|c| c.morton == *m) {
                Some(c) => out.push(c.clone()),
                None => {
                    return Err(RunError::Input(format!(
                        "--morton-cell {m}: not in the catalog (it has {} cells at order {}, e.g. {})",
                        catalog.catalog.len(),
                        catalog.metadata.parent_order,
                        catalog.catalog.keys().take(3).cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
            }
        }
        out
    };
    if let Some(n) = max_cells {
        cells.truncate(n);
    }
    Ok(cells)
}

fn is_remote(url: &str) -> bool {
    url.split_once("://").is_some_and(|(scheme, _)| !scheme.eq_ignore_ascii_case("file"))
}

async fn read_text(url: &str, opts: &StoreOptions) -> Result<String, RunError> {
    use object_store::ObjectStoreExt;
    let (store, path) = crate::store::resolve(url, opts)?;
    let bytes = match store.get(&path).await {
        Ok(r) => r.bytes().await,
        Err(e) => Err(e),
    }
    .map_err(|e| RunError::Input(format!("{}: {}", crate::store::redact(url), crate::errors::message(&e))))?;
    String::from_utf8(bytes.to_vec()).map_err(|e| RunError::Input(format!("{}: not UTF-8 text: {e}", crate::store::redact(url))))
}
