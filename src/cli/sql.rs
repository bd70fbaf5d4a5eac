//! `magg sql`: ad-hoc SQL over granules with every magg function registered.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use magg::session::{self, SessionOptions};
use magg::table::{FillHandling, GranuleTable, GranuleTableOptions};

/// Output formats of `magg sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header.
    Csv,
    /// Newline-delimited JSON objects.
    Json,
    /// Apache Parquet (needs --output).
    Parquet,
}

/// Run SQL over granules: one row per segment of every beam.
///
/// The table is named after the config (`atl06` for the default) and has the columns
/// granule, beam, row, latitude, longitude, h_li, s_li, atl06_quality_summary, plus any
/// `--var`. Every magg function is available (healpix_cell, morton, morton_parent,
/// weighted_mean, quantile, ...). Queries that need no table run without
/// --catalog/--files. Without a query, an interactive prompt opens (end statements with `;`,
/// quit with \q or Ctrl-D).
///
/// What makes a query fast: select only the columns you need; `atl06_quality_summary = 0`
/// and a parent-cell predicate such as
/// `morton_parent(morton(latitude, longitude, 18), 6) = -4211322` are applied while
/// reading (see EXPLAIN).
///
/// Examples:
///   magg sql "SELECT healpix_cell(-75.5, 123.25, 12)"
///   magg sql --files 'data/*.h5' "SELECT beam, count(*) FROM atl06 GROUP BY beam ORDER BY beam"
///   magg sql --catalog catalog.json --format csv --output q.csv \
///       "SELECT granule, avg(h_li) FROM atl06 WHERE atl06_quality_summary = 0 GROUP BY granule"
///   magg sql --files g.h5 --var dem_h=/{group}/land_ice_segments/dem/dem_h "SELECT avg(h_li - dem_h) FROM atl06"
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct SqlArgs {
    /// The SQL query. Without it, an interactive prompt opens.
    query: Option<String>,
    /// Granule catalog JSON: its granules form the table.
    #[arg(long, conflicts_with = "files")]
    catalog: Option<PathBuf>,
    /// Granule paths, URLs (s3://, https://) or local glob patterns ('data/*.h5').
    #[arg(long, num_args = 1..)]
    files: Vec<String>,
    /// Pipeline config whose data_source defines the columns (default: built-in atl06).
    #[arg(long)]
    config: Option<String>,
    /// Expose another dataset as a column: name=/{group}/path (repeatable).
    #[arg(long = "var")]
    vars: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write the result to this file instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Report and skip granules that cannot be read instead of failing the query.
    #[arg(long)]
    skip_bad_granules: bool,
    /// Drop rows holding a fill value instead of returning NULL there.
    #[arg(long)]
    drop_fill: bool,
    /// Partitions (cores) to use. Default: all cores.
    #[arg(long)]
    max_workers: Option<usize>,
}

pub(crate) async fn run(args: SqlArgs) -> anyhow::Result<ExitCode> {
    let mut options = SessionOptions::default();
    if let Some(n) = args.max_workers {
        options.target_partitions = n;
    }
    let ctx = session::context(options);
    if args.catalog.is_some() || !args.files.is_empty() {
        let config = super::common::load_config(args.config.as_deref()).await?;
        let mut source = config.source()?;
        for v in &args.vars {
            source.set(format!("--var {v}"), super::common::parse_var(v)?)?;
        }
        let mut opts = GranuleTableOptions::new(source);
        opts.skip_bad_granules = args.skip_bad_granules;
        if args.drop_fill {
            opts.fill = FillHandling::Drop;
        }
        let granules = match &args.catalog {
            Some(path) => magg::table::granules_from_catalog(&super::common::load_catalog(path).await?),
            None => magg::table::granules_from_patterns(&args.files)?,
        };
        let table = GranuleTable::try_new(opts, granules).await?;
        session::register_table(&ctx, Arc::new(table))?;
    } else if !args.vars.is_empty() {
        bail!("--var needs --catalog or --files");
    }
    match &args.query {
        Some(q) => {
            execute(&ctx, q, args.format, args.output.as_deref()).await?;
        }
        None => repl(&ctx, args.format).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Run one query and write its result.
pub(crate) async fn execute(ctx: &SessionContext, query: &str, format: Format, output: Option<&std::path::Path>) -> anyhow::Result<()> {
    let df = ctx.sql(query).await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await?;
    let sink: Box<dyn std::io::Write + Send> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None if format == Format::Parquet => bail!("--format parquet needs --output FILE"),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    match format {
        Format::Table => {
            let mut batches: Vec<RecordBatch> = Vec::new();
            while let Some(b) = stream.next().await {
                batches.push(b?);
            }
            let mut sink = sink;
            if batches.iter().all(|b| b.num_rows() == 0) {
                let fields: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                writeln!(sink, "(0 rows; columns: {})", fields.join(", "))?;
            } else {
                writeln!(sink, "{}", arrow::util::pretty::pretty_format_batches(&batches)?)?;
            }
            sink.flush()?;
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(sink);
            while let Some(b) = stream.next().await {
                w.write(&b?)?;
            }
            w.into_inner().flush()?;
        }
        Format::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(sink);
            while let Some(b) = stream.next().await {
                w.write(&b?)?;
            }
            w.finish()?;
            w.into_inner().flush()?;
        }
        Format::Parquet => {
            let mut w = parquet::arrow::ArrowWriter::try_new(sink, schema, None)?;
            while let Some(b) = stream.next().await {
                w.write(&b?)?;
            }
            w.close()?;
        }
    }
    Ok(())
}

/// A minimal prompt: statements end with `;`, `\q` or end of input quits. Lines are read
/// on a blocking thread so the runtime keeps serving the query.
async fn repl(ctx: &SessionContext, format: Format) -> anyhow::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.blocking_send(line.clone()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let tables: Vec<String> = ctx.catalog("datafusion").and_then(|c| c.schema("public")).map(|s| s.table_names()).unwrap_or_default();
    eprintln!("magg sql: tables: {}. End statements with ';', \\q to quit.", if tables.is_empty() { "(none)".into() } else { tables.join(", ") });
    let mut statement = String::new();
    loop {
        eprint!("{}", if statement.is_empty() { "magg> " } else { "  ... " });
        let Some(line) = rx.recv().await else { break };
        let trimmed = line.trim();
        if statement.is_empty() && (trimmed == "\\q" || trimmed == "quit" || trimmed == "exit") {
            break;
        }
        statement.push_str(&line);
        if trimmed.ends_with(';') {
            let q = statement.trim().trim_end_matches(';').to_owned();
            statement.clear();
            if let Err(e) = execute(ctx, &q, format, None).await {
                eprintln!("error: {e:#}");
            }
        }
    }
    Ok(())
}
