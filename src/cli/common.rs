//! Pieces several subcommands share: loading a config by path or built-in name, reading
//! a catalog, and choosing cells.

use std::path::Path;

use anyhow::{Context, bail};
use magg::catalog::{Catalog, CatalogCell};
use magg::config::PipelineConfig;

/// `--config`: a YAML path, or the name of a built-in config (`atl06`); default `atl06`.
pub(crate) fn load_config(arg: Option<&str>) -> anyhow::Result<PipelineConfig> {
    match arg {
        None => Ok(PipelineConfig::atl06()),
        Some("atl06") if !Path::new("atl06").exists() => Ok(PipelineConfig::atl06()),
        Some(path) => Ok(PipelineConfig::load(path)?),
    }
}

/// Read a catalog file.
pub(crate) fn load_catalog(path: &Path) -> anyhow::Result<Catalog> {
    Ok(Catalog::read(path)?)
}

/// The catalog cells selected by `--morton-cell` (repeatable) and `--max-cells`.
pub(crate) fn select_cells(catalog: &Catalog, morton: &[i64], max_cells: Option<usize>) -> anyhow::Result<Vec<CatalogCell>> {
    let all = catalog.cells();
    let mut cells: Vec<CatalogCell> = if morton.is_empty() {
        all
    } else {
        let mut out = Vec::new();
        for m in morton {
            match all.iter().find(|c| c.morton == *m) {
                Some(c) => out.push(c.clone()),
                None => bail!(
                    "--morton-cell {m}: not in the catalog (it has {} cells at order {}, e.g. {})",
                    catalog.catalog.len(),
                    catalog.metadata.parent_order,
                    catalog.catalog.keys().take(3).cloned().collect::<Vec<_>>().join(", ")
                ),
            }
        }
        out
    };
    if let Some(n) = max_cells {
        cells.truncate(n);
    }
    Ok(cells)
}

/// A progress bar on stderr, hidden when stderr is not a terminal or under CI.
pub(crate) fn progress(len: u64, template: &str) -> indicatif::ProgressBar {
    let hidden = std::env::var_os("CI").is_some() || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bar = if hidden { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(len) };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Parse `name=/{group}/path` of `--var`.
pub(crate) fn parse_var(s: &str) -> anyhow::Result<magg::table::ColumnSource> {
    let (name, template) = s.split_once('=').with_context(|| format!("--var {s:?}: expected name=/{{group}}/path/to/dataset"))?;
    if name.is_empty() || !template.starts_with('/') {
        bail!("--var {s:?}: expected name=/{{group}}/path/to/dataset");
    }
    Ok(magg::table::ColumnSource { name: name.to_owned(), template: template.to_owned() })
}
