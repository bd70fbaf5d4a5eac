//! `magg export`: the filtered, cell-tagged points of parent cells as Parquet.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use magg::session::{self, SessionOptions};
use magg::table::{CellFilter, GranuleTable, GranuleTableOptions};

/// Export the points of parent cells as Parquet, one file per cell.
///
/// Writes the rows the aggregation would see (quality-filtered, inside the cell) with
/// granule, beam, row, the coordinates, every config variable, and `cell_ids` (nested id)
/// and `morton` at the config's child order, to DIR/parent=<morton>/part-0.parquet
/// (hive-style folders: pyarrow, DuckDB and DataFusion read DIR as one partitioned table).
///
/// Examples:
///   magg export --catalog catalog.json --cell -4211322 --output points/
///   magg export --catalog catalog.json --output points/ --max-cells 3
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct ExportArgs {
    /// Granule catalog JSON.
    #[arg(long)]
    catalog: PathBuf,
    /// Parent cell to export (decimal morton; repeatable). Default: every catalog cell.
    #[arg(long, allow_hyphen_values = true)]
    cell: Vec<i64>,
    /// Export only the first N cells.
    #[arg(long)]
    max_cells: Option<usize>,
    /// Output directory.
    #[arg(long)]
    output: PathBuf,
    /// Pipeline config (default: built-in atl06).
    #[arg(long)]
    config: Option<String>,
    /// Partitions (cores) to use. Default: all cores.
    #[arg(long)]
    max_workers: Option<usize>,
}

pub(crate) async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let config = super::common::load_config(args.config.as_deref()).await?;
    let catalog = super::common::load_catalog(&args.catalog).await?;
    let cells = super::common::select_cells(&catalog, &args.cell, args.max_cells)?;
    let mode = config.latitude_mode()?;
    let compiled = config.compile()?;
    let child = config.output.grid.child_order;
    let mut options = SessionOptions::default();
    if let Some(n) = args.max_workers {
        options.target_partitions = n;
    }
    let bar = super::common::progress(cells.len() as u64, "{elapsed_precise} [{bar:30}] {pos}/{len} cells");
    let mut schema = None;
    let mut total = 0usize;
    for cell in &cells {
        let f = CellFilter::from_morton(cell.morton, mode).map_err(|e| anyhow::anyhow!("cell {}: {e}", cell.morton))?;
        let opts = GranuleTableOptions::new(config.source()?);
        let granules = cell.granules.iter().map(|u| magg::table::GranuleRef { url: u.clone(), cells: None }).collect();
        let table = match &schema {
            Some(s) => GranuleTable::with_schema(opts, granules, Arc::clone(s)),
            None => {
                let t = GranuleTable::try_new(opts, granules).await?;
                schema = Some(t.schema_ref());
                t
            }
        };
        let ctx = session::context(options);
        session::register_table(&ctx, Arc::new(table))?;
        let mut cols = vec!["granule".to_owned(), "beam".to_owned(), "row".to_owned(), "latitude".to_owned(), "longitude".to_owned()];
        cols.extend(config.data_source.variables.keys().map(|k| format!("\"{k}\"")));
        let mut conditions = Vec::new();
        if let Some(q) = &compiled.quality_predicate {
            conditions.push(q.clone());
        }
        conditions.push(format!("{} = {}", compiled.cell_expr(f.parent_order), f.parent));
        let cell_expr = compiled.cell_expr(child);
        let sql = format!(
            "SELECT {}, {cell_expr} AS cell_ids, cell_to_morton({cell_expr}, {child}) AS morton FROM {} WHERE {} ORDER BY granule, beam, row",
            cols.join(", "),
            compiled.table,
            conditions.join(" AND ")
        );
        let df = ctx.sql(&sql).await.with_context(|| format!("cell {}", cell.morton))?;
        let out_schema = Arc::new(df.schema().as_arrow().clone());
        let dir = args.output.join(format!("parent={}", cell.morton));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("part-0.parquet");
        let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = parquet::arrow::ArrowWriter::try_new(file, out_schema, None)?;
        let mut stream = df.execute_stream().await?;
        let mut rows = 0;
        while let Some(b) = stream.next().await {
            let b = b.with_context(|| format!("cell {}", cell.morton))?;
            rows += b.num_rows();
            w.write(&b)?;
        }
        w.close()?;
        total += rows;
        bar.inc(1);
        bar.suspend(|| println!("{}: {rows} rows", path.display()));
    }
    bar.finish_and_clear();
    println!("{total} rows in {} cells written under {}", cells.len(), args.output.display());
    Ok(ExitCode::SUCCESS)
}
