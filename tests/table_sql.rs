//! The granule table through SQL, on synthetic granules: counts against h5py, the cell
//! pushdown against brute force, projection against a counting store, EXPLAIN.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type, UInt64Type};
use magg::config::PipelineConfig;
use magg::session::{self, SessionOptions};
use magg::store::CountingStore;
use magg::table::{GranuleRef, GranuleTable, GranuleTableOptions, granules_from_patterns};

async fn table(urls: Vec<String>, options: impl FnOnce(&mut GranuleTableOptions)) -> Arc<GranuleTable> {
    let mut o = GranuleTableOptions::new(PipelineConfig::atl06().source().unwrap());
    options(&mut o);
    let granules = urls.into_iter().map(|url| GranuleRef { url, cells: None }).collect();
    Arc::new(GranuleTable::try_new(o, granules).await.expect("table"))
}

fn ctx(t: Arc<GranuleTable>, partitions: usize) -> datafusion::prelude::SessionContext {
    let ctx = session::context(SessionOptions { target_partitions: partitions, batch_size: 8192 });
    session::register_table(&ctx, t).unwrap();
    ctx
}

fn paths(out: &magg::synth::SynthOutput) -> Vec<String> {
    out.granules.iter().map(|p| p.to_string_lossy().into_owned()).collect()
}

/// A session over `granules` synthetic granules of `rows` rows per beam written to `dir`.
async fn synth_ctx(dir: &std::path::Path, granules: usize, rows: usize, seed: u64) -> datafusion::prelude::SessionContext {
    let out = common::synth(dir, granules, rows, seed);
    ctx(table(paths(&out), |_| {}).await, 2)
}

async fn rows(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Vec<arrow::array::RecordBatch> {
    ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_per_beam_match_h5py() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::synth(dir.path(), 3, 2500, 1);
    let paths = paths(&out);
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let truth: BTreeMap<String, BTreeMap<String, (u64, u64)>> =
        serde_json::from_str(&common::run_python("beam_counts.py", &args)).unwrap();

    let ctx = ctx(table(paths.clone(), |_| {}).await, 2);
    let batches = rows(
        &ctx,
        "SELECT granule, beam, count(*) AS n, sum(CASE WHEN atl06_quality_summary = 0 THEN 1 ELSE 0 END) AS good \
         FROM atl06 GROUP BY granule, beam ORDER BY granule, beam",
    )
    .await;
    let mut got: BTreeMap<String, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            let g = b.column(0).as_string::<i32>().value(i).to_owned();
            let beam = b.column(1).as_string::<i32>().value(i).to_owned();
            let n = b.column(2).as_primitive::<Int64Type>().value(i) as u64;
            let good = b.column(3).as_primitive::<Int64Type>().value(i) as u64;
            got.entry(g).or_default().insert(beam, (n, good));
        }
    }
    assert_eq!(got, truth);
    // The pushed-down quality filter returns exactly the good rows.
    let b = rows(&ctx, "SELECT count(*) FROM atl06 WHERE atl06_quality_summary = 0").await;
    let good: u64 = truth.values().flat_map(|m| m.values()).map(|(_, g)| g).sum();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0) as u64, good);
    assert!(good > 0 && good < 3 * 6 * 2500, "the generator flags some rows: {good}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cell_pushdown_returns_exactly_the_brute_force_rows() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = synth_ctx(dir.path(), 3, 4000, 2).await;

    // Brute force: every row's coordinates, hashed here.
    let all = rows(&ctx, "SELECT granule, beam, row, latitude, longitude FROM atl06").await;
    let (c18, _) = (magg_udfs::healpix::cell(common::THROUGH.0, common::THROUGH.1, 18, Default::default()).unwrap(), ());
    let parent = c18 >> 24;
    let mut expected = BTreeSet::new();
    let mut total = 0;
    for b in &all {
        let lat = b.column(3).as_primitive::<Float64Type>();
        let lon = b.column(4).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            total += 1;
            if lat.is_null(i) || lon.is_null(i) {
                continue;
            }
            let c = magg_udfs::healpix::cell(lat.value(i), lon.value(i), 18, Default::default()).unwrap();
            if c >> 24 == parent {
                expected.insert((
                    b.column(0).as_string::<i32>().value(i).to_owned(),
                    b.column(1).as_string::<i32>().value(i).to_owned(),
                    b.column(2).as_primitive::<UInt64Type>().value(i),
                ));
            }
        }
    }
    assert!(!expected.is_empty() && expected.len() < total, "{} of {total} rows in the cell", expected.len());

    let sql = format!(
        "SELECT granule, beam, row FROM atl06 WHERE healpix_parent(healpix_cell(latitude, longitude, 18), 18, 6) = {parent}"
    );
    let mut got = BTreeSet::new();
    for b in rows(&ctx, &sql).await {
        for i in 0..b.num_rows() {
            got.insert((
                b.column(0).as_string::<i32>().value(i).to_owned(),
                b.column(1).as_string::<i32>().value(i).to_owned(),
                b.column(2).as_primitive::<UInt64Type>().value(i),
            ));
        }
    }
    assert_eq!(got, expected);

    // The morton spelling selects the same rows.
    let m = magg_udfs::morton::from_nested(parent, 6).unwrap();
    let sql_m = format!("SELECT count(*) FROM atl06 WHERE morton_parent(morton(latitude, longitude, 18), 6) = {m}");
    let b = rows(&ctx, &sql_m).await;
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0) as usize, expected.len());

    // EXPLAIN shows the predicate inside the scan and no FilterExec above it.
    let plan = rows(&ctx, &format!("EXPLAIN {sql}")).await;
    let text = arrow::util::pretty::pretty_format_batches(&plan).unwrap().to_string();
    assert!(text.contains(&format!("cell=order 6 nested {parent}")), "{text}");
    assert!(!text.contains("FilterExec"), "{text}");
}

/// `cell18` is `healpix_cell(latitude, longitude, 18)` whichever way the scan computes it:
/// from the coordinates (no cell filter), handed on from the cell filter's own hashes, or
/// rehashed when the filter hashed at another order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cell18_equals_the_sql_hash_in_every_scan_path() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = synth_ctx(dir.path(), 2, 4000, 2).await;
    let c18 = magg_udfs::healpix::cell(common::THROUGH.0, common::THROUGH.1, 18, Default::default()).unwrap();
    let (parent, parent29) = (c18 >> 24, magg_udfs::healpix::cell(common::THROUGH.0, common::THROUGH.1, 29, Default::default()).unwrap() >> 46);
    let cases = [
        ("no cell filter", String::new()),
        ("cell filter on cell18", format!("AND healpix_parent(cell18, 18, 6) = {parent}")),
        ("cell filter at order 18", format!("AND healpix_parent(healpix_cell(latitude, longitude, 18), 18, 6) = {parent}")),
        ("cell filter at order 29", format!("AND healpix_parent(healpix_cell(latitude, longitude, 29), 29, 6) = {parent29}")),
    ];
    let mut counts = Vec::new();
    for (what, filter) in &cases {
        let sql = format!(
            "SELECT count(*), sum(CASE WHEN cell18 = healpix_cell(latitude, longitude, 18) THEN 1 ELSE 0 END), \
             count(cell18) FROM atl06 WHERE atl06_quality_summary = 0 {filter}"
        );
        let b = rows(&ctx, &sql).await;
        let n = b[0].column(0).as_primitive::<Int64Type>().value(0);
        let same = b[0].column(1).as_primitive::<Int64Type>().value(0);
        let non_null = b[0].column(2).as_primitive::<Int64Type>().value(0);
        assert!(n > 0, "{what}: no rows");
        assert_eq!((same, non_null), (n, n), "{what}: cell18 differs from healpix_cell on {} of {n} rows", n - same);
        counts.push(n);
    }
    assert!(counts[1] < counts[0], "the cell holds fewer rows than the granules: {counts:?}");
    assert_eq!((counts[1], counts[1]), (counts[2], counts[3]), "every spelling of the cell selects the same rows");
    // With the filter on cell18 the scan applies it: no FilterExec, the cell in the scan.
    let plan = rows(&ctx, &format!("EXPLAIN SELECT count(*) FROM atl06 WHERE healpix_parent(cell18, 18, 6) = {parent}")).await;
    let text = arrow::util::pretty::pretty_format_batches(&plan).unwrap().to_string();
    assert!(text.contains(&format!("cell=order 6 nested {parent}")) && !text.contains("FilterExec"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_reads_only_the_selected_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::synth(dir.path(), 1, 30_000, 3);
    let url = out.granules[0].to_string_lossy().into_owned();
    let counting = Arc::new(CountingStore::new(Arc::new(object_store::local::LocalFileSystem::new()), None));
    let t = table(vec![url], |o| {
        o.object_store = Some(Arc::clone(&counting) as Arc<dyn object_store::ObjectStore>);
    })
    .await;
    let ctx = ctx(t, 1);
    let mut bytes = BTreeMap::new();
    for (name, sql) in [
        ("beam", "SELECT count(beam) FROM atl06"),
        ("h_li", "SELECT avg(h_li) FROM atl06"),
        ("all", "SELECT avg(h_li), avg(s_li), avg(latitude), avg(longitude), max(atl06_quality_summary) FROM atl06"),
    ] {
        counting.reset();
        rows(&ctx, sql).await;
        bytes.insert(name, counting.stats().bytes);
    }
    let file_size = std::fs::metadata(&out.granules[0]).unwrap().len();
    // Reading one float32 column fetches far less than reading five, and far less than the
    // file (which also holds the sub-group datasets).
    assert!(bytes["h_li"] * 3 < bytes["all"], "{bytes:?}");
    assert!(bytes["all"] < file_size, "{bytes:?} vs file {file_size}");
    // Counting beams needs only the latitude dataset's length (metadata).
    assert!(bytes["beam"] < bytes["h_li"], "{bytes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_values_become_null_or_drop_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::synth(dir.path(), 2, 3000, 4);
    let paths = paths(&out);
    let ctx_null = ctx(table(paths.clone(), |_| {}).await, 2);
    let b = rows(&ctx_null, "SELECT count(*), count(h_li), max(h_li) FROM atl06").await;
    let (n, non_null, max) = (
        b[0].column(0).as_primitive::<Int64Type>().value(0),
        b[0].column(1).as_primitive::<Int64Type>().value(0),
        b[0].column(2).as_primitive::<arrow::datatypes::Float32Type>().value(0),
    );
    assert!(non_null < n, "the generator writes some fill values: {non_null} of {n}");
    assert!(max < 10_000.0, "a fill value reached an aggregate: {max}");
    let ctx_drop = ctx(table(paths, |o| o.fill = magg::table::FillHandling::Drop).await, 2);
    // Rows whose selected columns hold a fill value are gone, not NULL.
    let b = rows(&ctx_drop, "SELECT count(*), count(h_li) FROM atl06").await;
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), non_null);
    assert_eq!(b[0].column(1).as_primitive::<Int64Type>().value(0), non_null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_granule_fails_the_query_or_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::synth(dir.path(), 2, 2000, 5);
    let good = out.granules[0].to_string_lossy().into_owned();
    let bad = dir.path().join("ATL06_20200101000000_00010101_007_01.h5");
    let bytes = std::fs::read(&out.granules[1]).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    let bad = bad.to_string_lossy().into_owned();

    let ctx_strict = ctx(table(vec![good.clone(), bad.clone()], |_| {}).await, 2);
    let err = ctx_strict.sql("SELECT avg(h_li) FROM atl06").await.unwrap().collect().await.unwrap_err();
    assert!(err.to_string().contains(&bad), "error names the granule: {err}");

    let t = table(vec![good.clone(), bad.clone()], |o| o.skip_bad_granules = true).await;
    let metrics = t.metrics();
    let ctx_skip = ctx(t, 2);
    // The truncated granule's metadata is intact (lengths are known), its data is not:
    // reading h_li fails in some beam, and then none of its beams count.
    let b = rows(&ctx_skip, "SELECT count(h_li) FROM atl06").await;
    let only_good = ctx(table(vec![good], |_| {}).await, 2);
    let b2 = rows(&only_good, "SELECT count(h_li) FROM atl06").await;
    assert_eq!(
        b[0].column(0).as_primitive::<Int64Type>().value(0),
        b2[0].column(0).as_primitive::<Int64Type>().value(0)
    );
    let bad_list = metrics.bad_granules.lock().clone();
    assert_eq!(bad_list.len(), 1);
    assert_eq!(bad_list[0].0, bad);
}

#[test]
fn glob_patterns_find_synthetic_granules() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::synth(dir.path(), 2, 500, 6);
    let got = granules_from_patterns(&[format!("{}/ATL06_*.h5", dir.path().display())]).unwrap();
    let mut want = paths(&out);
    want.sort();
    assert_eq!(got.into_iter().map(|g| g.url).collect::<Vec<_>>(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_examples_run_and_agree() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = synth_ctx(dir.path(), 2, 2000, 7).await;
    let sql_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    let beams = rows(&ctx, &std::fs::read_to_string(sql_dir.join("beam_counts.sql")).unwrap()).await;
    let quality = rows(&ctx, &std::fs::read_to_string(sql_dir.join("quality_report.sql")).unwrap()).await;
    let sum_col = |batches: &[arrow::array::RecordBatch], i: usize| -> i64 {
        batches.iter().map(|b| arrow::compute::sum(b.column(i).as_primitive::<Int64Type>()).unwrap_or(0)).sum()
    };
    let n_beams: usize = beams.iter().map(|b| b.num_rows()).sum();
    assert_eq!(n_beams, 6);
    assert_eq!(sum_col(&beams, 1), 2 * 6 * 2000);
    assert_eq!(sum_col(&quality, 1), 2 * 6 * 2000);
    let n_granules: usize = quality.iter().map(|b| b.num_rows()).sum();
    assert_eq!(n_granules, 2);
    // The template compiles for this table and runs.
    let sql = PipelineConfig::atl06().compile().unwrap().cell_sql(None);
    let agg = rows(&ctx, &sql).await;
    let cells: usize = agg.iter().map(|b| b.num_rows()).sum();
    assert!(cells > 100, "{cells} order-12 cells");
}

/// The default config's three quantiles of `h_li` compile to elements of one `quantiles`
/// call that DataFusion plans as one aggregate, and give, cell for cell, bit for bit what
/// three `quantile` calls give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_quantiles_plan_one_state_and_equal_separate_quantiles() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = synth_ctx(dir.path(), 2, 4000, 5).await;
    let compiled = PipelineConfig::atl06().compile().unwrap();
    let sql = compiled.cell_sql(None);
    assert!(sql.contains("quantiles(\"h_li\", 0.25, 0.5, 0.75)[2] AS \"h_q50\""), "{sql}");
    let plan = rows(&ctx, &format!("EXPLAIN {sql}")).await;
    let text = arrow::util::pretty::pretty_format_batches(&plan).unwrap().to_string();
    let aggregates: Vec<&str> = text.lines().filter(|l| l.contains("AggregateExec") && l.contains("mode=Partial")).collect();
    assert_eq!(aggregates.len(), 1, "{text}");
    assert_eq!(aggregates[0].matches("quantiles(").count(), 1, "one quantiles state: {}", aggregates[0]);

    let q = |col: &str| {
        format!(
            "SELECT {cell} AS cell, {col} FROM atl06 WHERE atl06_quality_summary = 0 GROUP BY 1 ORDER BY 1",
            cell = compiled.cell_expr(compiled.child_order)
        )
    };
    let shared = rows(&ctx, &q("quantiles(h_li, 0.25, 0.5, 0.75)[1], quantiles(h_li, 0.25, 0.5, 0.75)[2], quantiles(h_li, 0.25, 0.5, 0.75)[3]")).await;
    let separate = rows(&ctx, &q("quantile(h_li, 0.25), quantile(h_li, 0.5), quantile(h_li, 0.75)")).await;
    let bits = |batches: &[arrow::array::RecordBatch]| -> Vec<(u64, [u64; 3])> {
        let mut out = Vec::new();
        for b in batches {
            for i in 0..b.num_rows() {
                let v = |c: usize| b.column(c).as_primitive::<Float64Type>().value(i).to_bits();
                out.push((b.column(0).as_primitive::<UInt64Type>().value(i), [v(1), v(2), v(3)]));
            }
        }
        out
    };
    let (shared, separate) = (bits(&shared), bits(&separate));
    assert!(shared.len() > 100, "{} cells", shared.len());
    assert_eq!(shared, separate);
}
