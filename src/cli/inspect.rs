//! `magg inspect`: the tree of an HDF5 granule, or the values of one dataset. The
//! formatting lives in `magg::h5::inspect` so it is tested with the reader.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use magg::h5::{H5File, ReadOptions, RowSelection, inspect};
use magg::store::StoreOptions;

/// Show the groups and datasets of an HDF5 granule (type, shape, chunk shape, layout and
/// chunk index, filters, fill value, attributes), like `h5ls -r -v`, or print the values
/// of one dataset.
///
/// Examples:
///
///   magg inspect ATL06_20190101001723_00550210_006_02.h5
///
///   magg inspect s3://bucket/ATL06.h5 --dataset /gt1l/land_ice_segments/h_li --rows 0:10
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct InspectArgs {
    /// Granule to inspect: a local path, file://, s3://bucket/key or https:// URL.
    pub(crate) url: String,
    /// Print the values of this dataset instead of the tree.
    #[arg(long)]
    pub(crate) dataset: Option<String>,
    /// Rows to print with --dataset, as A:B (end exclusive; either side may be omitted).
    /// Default: the first 20 rows.
    #[arg(long, requires = "dataset")]
    pub(crate) rows: Option<String>,
    /// Allow plain http:// URLs and S3 endpoints.
    #[arg(long)]
    pub(crate) allow_http: bool,
}

/// Parse `A:B`, `A:`, `:B` against a dataset of `n` rows.
fn parse_rows(spec: &str, n: u64) -> anyhow::Result<std::ops::Range<u64>> {
    let (a, b) = spec.split_once(':').with_context(|| format!("--rows {spec:?}: expected A:B"))?;
    let a: u64 = if a.is_empty() { 0 } else { a.parse().with_context(|| format!("--rows {spec:?}: bad start {a:?}"))? };
    let b: u64 = if b.is_empty() { n } else { b.parse().with_context(|| format!("--rows {spec:?}: bad end {b:?}"))? };
    if a > b || b > n {
        bail!("--rows {spec}: got {a}:{b}, expected 0 <= A <= B <= {n} (the dataset has {n} rows)");
    }
    Ok(a..b)
}

pub(crate) async fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let store_opts = StoreOptions { allow_http: args.allow_http, ..StoreOptions::default() };
    let file = H5File::open_url(&args.url, &store_opts, &ReadOptions::default()).await?;
    let text = match &args.dataset {
        None => inspect::format_tree(file.url(), &file.tree().await?),
        Some(ds) => {
            let info = file.dataset_info(ds).await?;
            let n = info.num_rows();
            let rows = match &args.rows {
                Some(spec) => parse_rows(spec, n)?,
                None => 0..n.min(20),
            };
            let values = file.read(ds, RowSelection::Ranges(vec![rows.clone()])).await?;
            format!("{}\n{}", inspect::dataset_line(&info), inspect::format_values(values.as_ref(), rows.start))
        }
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_rows;

    #[test]
    fn rows_spec() {
        assert_eq!(parse_rows("2:5", 10).unwrap(), 2..5);
        assert_eq!(parse_rows(":3", 10).unwrap(), 0..3);
        assert_eq!(parse_rows("7:", 10).unwrap(), 7..10);
        assert!(parse_rows("5:2", 10).unwrap_err().to_string().contains("expected 0 <= A <= B <= 10"));
        assert!(parse_rows("0:11", 10).is_err());
        assert!(parse_rows("x", 10).is_err());
    }
}
