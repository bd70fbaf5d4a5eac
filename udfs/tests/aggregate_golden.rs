//! The aggregates through SQL against numpy's results on the golden groups, through both
//! the GroupsAccumulator (GROUP BY) and the Accumulator (no GROUP BY), with partial
//! aggregation over several partitions and merge_batch.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Float64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use magg_udfs::aggregate::{numpy_median, numpy_quantile};

use crate::golden::{self, Group};

fn context(config: SessionConfig) -> SessionContext {
    let ctx = SessionContext::new_with_config(config.with_target_partitions(3));
    magg_udfs::register_all(&ctx);
    ctx
}

/// Registers `t64` (Float64 groups) and `t32` (Float32 groups) as `(g, x, w)`, rows dealt
/// round-robin into 3 partitions, plus two NULL rows per group that must not count.
/// One input row: group name, x, w.
type Row = (String, Option<f64>, Option<f64>);

fn register(ctx: &SessionContext, groups: &[Group]) {
    for (table, float32) in [("t64", false), ("t32", true)] {
        let dt = if float32 {
            DataType::Float32
        } else {
            DataType::Float64
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Utf8, false),
            Field::new("x", dt.clone(), true),
            Field::new("w", dt.clone(), true),
        ]));
        let mut parts: Vec<Vec<Row>> = vec![vec![], vec![], vec![]];
        let mut k = 0;
        for g in groups.iter().filter(|g| g.float32 == float32) {
            for (i, &x) in g.x.iter().enumerate() {
                let w = g.w.as_ref().map_or(1.0, |w| w[i]);
                parts[k % 3].push((g.name.clone(), Some(x), Some(w)));
                k += 1;
            }
            parts[k % 3].push((g.name.clone(), None, Some(5.0)));
            parts[(k + 1) % 3].push((g.name.clone(), None, None));
            k += 1;
        }
        let to_batch = |rows: &[Row]| {
            let col = |f: &dyn Fn(&Row) -> Option<f64>| -> ArrayRef {
                if float32 {
                    Arc::new(
                        rows.iter()
                            .map(|r| f(r).map(|v| v as f32))
                            .collect::<Float32Array>(),
                    )
                } else {
                    Arc::new(rows.iter().map(f).collect::<Float64Array>())
                }
            };
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(
                        rows.iter()
                            .map(|r| Some(r.0.as_str()))
                            .collect::<StringArray>(),
                    ),
                    col(&|r| r.1),
                    col(&|r| r.2),
                ],
            )
            .unwrap()
        };
        let partitions: Vec<Vec<RecordBatch>> = parts
            .iter()
            .map(|p| p.chunks(700).map(to_batch).collect())
            .collect();
        ctx.register_table(
            table,
            Arc::new(MemTable::try_new(schema, partitions).unwrap()),
        )
        .unwrap();
    }
}

/// `quantile(x, q)` for every q, then the same quantiles as elements of one
/// `quantiles(x, q1, q2, ...)` state: `2 * qs.len()` columns.
fn quantile_columns(qs: &[f64]) -> String {
    let list = qs.iter().map(|q| format!("{q:?}")).collect::<Vec<_>>().join(", ");
    qs.iter()
        .map(|q| format!("quantile(x, {q:?})"))
        .chain((1..=qs.len()).map(|j| format!("quantiles(x, {list})[{j}]")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn f64_at(b: &RecordBatch, col: usize, row: usize) -> f64 {
    let c = b.column(col);
    assert!(c.is_valid(row), "column {col} is NULL");
    c.as_primitive::<Float64Type>().value(row)
}

/// Relative difference; 0 for equal values and for two NaNs.
fn rel(a: f64, b: f64) -> f64 {
    if a == b || (a.is_nan() && b.is_nan()) {
        0.0
    } else {
        ((a - b) / b).abs()
    }
}

/// Largest relative differences from numpy seen by `check`.
#[derive(Debug, Default)]
struct Worst {
    weighted_mean: f64,
    np_var: f64,
    np_std: f64,
    np_var_ddof1: f64,
    np_std_ddof1: f64,
    var_pop: f64,
    stddev_pop: f64,
}

/// Checks one result row against numpy.
fn check(g: &Group, b: &RecordBatch, row: usize, qs: &[f64], worst: &mut Worst) {
    let n = 2 * qs.len();
    for (j, q) in qs.iter().chain(qs).enumerate() {
        let want = g.quantile.iter().find(|(gq, _)| gq == q).unwrap().1;
        let got = f64_at(b, j, row);
        let function = if j < qs.len() { "quantile" } else { "quantiles" };
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{} {function} {q}: {got:?} vs numpy {want:?}",
            g.name
        );
    }
    let np_median = f64_at(b, n, row);
    assert_eq!(
        np_median.to_bits(),
        g.median.to_bits(),
        "{} np_median",
        g.name
    );
    // DataFusion's median on Float64 input (widened for float32 groups) equals numpy's.
    let df_median = f64_at(b, n + 1, row);
    assert_eq!(
        df_median.to_bits(),
        g.median.to_bits(),
        "{} median {df_median:?} vs {:?}",
        g.name,
        g.median
    );
    // DataFusion's var_pop / stddev_pop: close, but not within 1e-12 on every group
    // (offset_var: mean 3000, spread 0.01), which is why np_var / np_std exist.
    let var_pop = rel(f64_at(b, n + 2, row), g.var);
    let stddev_pop = rel(f64_at(b, n + 3, row), g.std);
    assert!(
        var_pop <= 1e-10 && stddev_pop <= 1e-10,
        "{} var_pop {var_pop:e} stddev_pop {stddev_pop:e}",
        g.name
    );
    worst.var_pop = worst.var_pop.max(var_pop);
    worst.stddev_pop = worst.stddev_pop.max(stddev_pop);
    let wm = f64_at(b, n + 4, row);
    let want = g.weighted_mean.unwrap();
    let err = rel(wm, want);
    assert!(
        err <= 1e-15,
        "{} weighted_mean {wm:?} vs numpy {want:?} (rel {err:e})",
        g.name
    );
    worst.weighted_mean = worst.weighted_mean.max(err);
    // np_var, np_std, np_var(x, 1), np_std(x, 1), in select_list's order.
    let moments = [
        ("np_var", 0, g.var, &mut worst.np_var),
        ("np_std", 0, g.std, &mut worst.np_std),
        ("np_var", 1, g.var_ddof1, &mut worst.np_var_ddof1),
        ("np_std", 1, g.std_ddof1, &mut worst.np_std_ddof1),
    ];
    for (k, (name, ddof, want, worst)) in moments.into_iter().enumerate() {
        let got = f64_at(b, n + 5 + k, row);
        let err = rel(got, want);
        assert!(
            err <= 2e-15,
            "{} {name} ddof {ddof}: {got:?} vs numpy {want:?} (rel {err:e})",
            g.name
        );
        *worst = worst.max(err);
    }
}

fn select_list(qs: &[f64]) -> String {
    format!(
        "{}, np_median(x), median(CAST(x AS DOUBLE)), var_pop(x), stddev_pop(x), weighted_mean(x, w), \
         np_var(x), np_std(x), np_var(x, 1), np_std(x, 1)",
        quantile_columns(qs)
    )
}

async fn check_all(ctx: &SessionContext, groups: &[Group], qs: &[f64]) {
    let mut worst = Worst::default();
    let mut seen = 0;
    for table in ["t64", "t32"] {
        let sql = format!("SELECT {}, g FROM {table} GROUP BY g", select_list(qs));
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let g_col = 2 * qs.len() + 9;
        for b in &batches {
            let names = b.column(g_col).as_string::<i32>();
            for row in 0..b.num_rows() {
                let g = groups.iter().find(|g| g.name == names.value(row)).unwrap();
                check(g, b, row, qs, &mut worst);
                seen += 1;
            }
        }
    }
    assert_eq!(seen, groups.len());
    eprintln!("largest relative differences from numpy: {worst:?}");
}

/// A context with the golden groups registered, the groups and their quantiles `q`.
fn golden_context(config: SessionConfig) -> (SessionContext, Vec<Group>, Vec<f64>) {
    let groups = golden::groups();
    let qs = groups[0].quantile.iter().map(|(q, _)| *q).collect();
    let ctx = context(config);
    register(&ctx, &groups);
    (ctx, groups, qs)
}

#[tokio::test]
async fn grouped_aggregates_equal_numpy() {
    let (ctx, groups, qs) = golden_context(SessionConfig::new());
    check_all(&ctx, &groups, &qs).await;
}

/// With partial aggregation skipped from the first batch on, DataFusion feeds the final
/// stage through `convert_to_state`.
#[tokio::test]
async fn grouped_aggregates_equal_numpy_when_partial_aggregation_is_skipped() {
    let mut config = SessionConfig::new();
    let options = config.options_mut();
    options
        .execution
        .skip_partial_aggregation_probe_rows_threshold = 1;
    options
        .execution
        .skip_partial_aggregation_probe_ratio_threshold = 0.0;
    let (ctx, groups, qs) = golden_context(config);
    check_all(&ctx, &groups, &qs).await;
}

#[tokio::test]
async fn ungrouped_aggregates_equal_numpy() {
    let (ctx, groups, qs) = golden_context(SessionConfig::new());
    for g in &groups {
        let table = if g.float32 { "t32" } else { "t64" };
        let sql = format!(
            "SELECT {} FROM {table} WHERE g = '{}'",
            select_list(&qs),
            g.name
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
        let b = batches.iter().find(|b| b.num_rows() == 1).unwrap();
        check(g, b, 0, &qs, &mut Worst::default());
    }
}

#[test]
fn kernels_equal_numpy() {
    for g in golden::groups() {
        for (q, want) in &g.quantile {
            let got = numpy_quantile(&mut g.x.clone(), *q);
            assert_eq!(got.to_bits(), want.to_bits(), "{} q {q}", g.name);
        }
        assert_eq!(
            numpy_median(&mut g.x.clone()).to_bits(),
            g.median.to_bits(),
            "{}",
            g.name
        );
    }
}

#[tokio::test]
async fn empty_groups_nulls_nans_and_bad_q() {
    let ctx = context(SessionConfig::new());
    let one = async |sql: &str| {
        let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let arrays: Vec<&dyn Array> = b.iter().map(|b| b.column(0).as_ref()).collect();
        arrow::compute::concat(&arrays).unwrap()
    };
    let values = "(VALUES (1.0, 1.0), (CAST('NaN' AS DOUBLE), 1.0), (3.0, 1.0)) t(x, w)";
    // Empty input: NULL, not NaN. (Arrow orders NaN above every number, so `x > 100`
    // would keep the NaN row.)
    for f in [
        "quantile(x, 0.5)",
        "quantiles(x, 0.5, 0.9)",
        "quantiles(x, 0.5, 0.9)[2]",
        "np_median(x)",
        "weighted_mean(x, w)",
        "np_var(x)",
        "np_std(x)",
    ] {
        let sql = format!("SELECT {f} FROM {values} WHERE x < -100");
        let c = one(&sql).await;
        assert_eq!((c.len(), c.null_count()), (1, 1), "{sql}");
    }
    // NaN: numpy gives NaN; DataFusion's median sorts NaN last and gives 3.
    let sql = format!(
        "SELECT quantile(x, 0.5), np_median(x), weighted_mean(x, w), np_var(x), np_std(x), median(x), \
         quantiles(x, 0.1, 0.5)[2] FROM {values}"
    );
    let b = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    let b = &b[0];
    for col in [0, 1, 2, 3, 4, 6] {
        assert!(
            b.column(col)
                .as_primitive::<Float64Type>()
                .value(0)
                .is_nan(),
            "column {col}"
        );
    }
    assert_eq!(b.column(5).as_primitive::<Float64Type>().value(0), 3.0);
    // Integer input is widened; NULL rows are skipped.
    let c = one("SELECT quantile(x, 0.25) FROM (VALUES (1), (2), (NULL), (4), (8)) t(x)").await;
    assert_eq!(c.as_primitive::<Float64Type>().value(0), 1.75);
    let c = one(
        "SELECT weighted_mean(x, w) FROM (VALUES (1, 1), (4, 2), (100, NULL), (NULL, 7)) t(x, w)",
    )
    .await;
    assert_eq!(c.as_primitive::<Float64Type>().value(0), 3.0);
    // An infinite value gives NaN wherever it is (numpy: inf - inf in x - mean).
    let c =
        one("SELECT np_var(x) FROM (VALUES (1.0), (CAST('Infinity' AS DOUBLE)), (2.0)) t(x)").await;
    assert!(c.as_primitive::<Float64Type>().value(0).is_nan());
    // q must be a constant in [0, 1], ddof a constant >= 0.
    let q = ("quantile", "argument q", "a constant in [0, 1]");
    let ddof = ("argument ddof", "a constant >= 0");
    for (call, value, (function, argument, expected)) in [
        ("quantile(x, 1.5)", "1.5", q),
        ("quantile(x, -0.1)", "-0.1", q),
        ("quantile(x, x)", "x", q),
        ("quantile(x, CAST(NULL AS DOUBLE))", "NULL", q),
        ("quantiles(x, 0.5, 1.5)", "1.5", ("quantiles", q.1, q.2)),
        ("quantiles(x, x)", "x", ("quantiles", q.1, q.2)),
        ("quantiles(x)", "got 1 argument", ("quantiles", "a column and 1 to 32", "[0, 1]")),
        ("quantiles(x, 'a')", "Utf8", ("quantiles", "argument 2", "expected a number")),
        ("np_var(x, -1)", "-1", ("np_var", ddof.0, ddof.1)),
        ("np_std(x, x)", "x", ("np_std", ddof.0, ddof.1)),
        (
            "np_var(x, CAST(NULL AS DOUBLE))",
            "NULL",
            ("np_var", ddof.0, ddof.1),
        ),
    ] {
        let sql = format!("SELECT {call} FROM (VALUES (1.0)) t(x)");
        let e = match ctx.sql(&sql).await {
            Ok(df) => df.collect().await.unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        for part in [function, argument, value, expected] {
            assert!(e.contains(part), "{sql}: {e:?} should mention {part:?}");
        }
    }
}
