//! Pieces several subcommands share: loading a config by path or built-in name, reading
//! a catalog, and choosing cells.

use std::path::Path;

use anyhow::{Context, bail};
use magg::catalog::{Catalog, CatalogCell};
use magg::config::PipelineConfig;

/// `--config`: a YAML path or URL, or the name of a built-in config (`atl06`); default `atl06`.
pub(crate) async fn load_config(arg: Option<&str>) -> anyhow::Result<PipelineConfig> {
    Ok(magg::run::load_pipeline(arg, &magg::store::StoreOptions::default()).await?)
}

/// Read a catalog (a path or a URL), printing what reading it corrected.
pub(crate) async fn load_catalog(path: &Path) -> anyhow::Result<Catalog> {
    let url = path.to_string_lossy();
    let catalog = magg::run::load_catalog(&url, &magg::store::StoreOptions::default()).await?;
    for w in &catalog.warnings {
        eprintln!("magg: warning: {w}");
    }
    Ok(catalog)
}

/// The catalog cells selected by `--morton-cell` (repeatable) and `--max-cells`.
pub(crate) fn select_cells(catalog: &Catalog, morton: &[i64], max_cells: Option<usize>) -> anyhow::Result<Vec<CatalogCell>> {
    Ok(magg::run::select_cells(catalog, morton, max_cells)?)
}

/// `--connect-timeout` and `--request-timeout` (seconds) as store time limits.
pub(crate) fn timeouts(connect: f64, request: f64) -> anyhow::Result<magg::store::Timeouts> {
    let secs = |flag: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(std::time::Duration::from_secs_f64(v))
        } else {
            bail!("{flag} {v}: expected a positive number of seconds")
        }
    };
    let request = secs("--request-timeout", request)?;
    Ok(magg::store::Timeouts { connect: secs("--connect-timeout", connect)?, request, retry_for: request, ..Default::default() })
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
