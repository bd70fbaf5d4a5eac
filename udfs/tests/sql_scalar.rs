//! The scalar functions through SQL: SessionContext + SELECT, golden and hand-checked
//! values, NULLs, coercion, constant folding and error messages.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    UInt64Array,
};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Float64Type, Int64Type, Schema, UInt64Type,
};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use magg_udfs::healpix::{self, LatitudeMode};
use magg_udfs::morton;

use crate::golden;

fn context() -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    magg_udfs::register_all(&ctx);
    ctx
}

async fn query(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// First column of the result, concatenated.
async fn column(ctx: &SessionContext, sql: &str) -> ArrayRef {
    let batches = query(ctx, sql).await;
    let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(0).as_ref()).collect();
    arrow::compute::concat(&arrays).unwrap()
}

async fn error(ctx: &SessionContext, sql: &str) -> String {
    let result = match ctx.sql(sql).await {
        Ok(df) => df.collect().await.map(|_| ()),
        Err(e) => Err(e),
    };
    result.expect_err(&format!("{sql} should fail")).to_string()
}

fn assert_names(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "{message:?} should mention {p:?}");
    }
}

/// Golden random points as a table `pts(id, lat, lon, lat32, lon32, ord)` with a NULL
/// latitude every 17th row, in 3 batches.
fn points_table(ctx: &SessionContext) -> Vec<golden::Point> {
    let points: Vec<golden::Point> = golden::points()
        .into_iter()
        .filter(|p| p.is_random())
        .collect();
    let n = points.len();
    let lat: Float64Array = (0..n)
        .map(|i| (i % 17 != 5).then_some(points[i].lat))
        .collect();
    let lon: Float64Array = points.iter().map(|p| Some(p.lon)).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("lat", DataType::Float64, true),
        Field::new("lon", DataType::Float64, true),
        Field::new("lat32", DataType::Float32, true),
        Field::new("lon32", DataType::Float32, true),
        Field::new("ord", DataType::Int32, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            Arc::new(lat.clone()),
            Arc::new(lon.clone()),
            Arc::new(
                lat.iter()
                    .map(|v| v.map(|v| v as f32))
                    .collect::<Float32Array>(),
            ),
            Arc::new(
                lon.iter()
                    .map(|v| v.map(|v| v as f32))
                    .collect::<Float32Array>(),
            ),
            Arc::new(Int32Array::from_iter_values(
                (0..n).map(|i| (i % 30) as i32),
            )),
        ],
    )
    .unwrap();
    let third = n / 3;
    let parts = vec![
        vec![batch.slice(0, third), batch.slice(third, third)],
        vec![batch.slice(2 * third, n - 2 * third)],
    ];
    ctx.register_table("pts", Arc::new(MemTable::try_new(schema, parts).unwrap()))
        .unwrap();
    points
}

/// A context with the table `pts` of [`points_table`], and its points.
fn context_with_points() -> (SessionContext, Vec<golden::Point>) {
    let ctx = context();
    let points = points_table(&ctx);
    (ctx, points)
}

/// Runs `sql` (one column over `pts`, ordered by id) and checks row `i` against
/// `want(i, point)`; rows with a NULL latitude must be NULL.
async fn check_points<T: ArrowPrimitiveType>(
    ctx: &SessionContext,
    sql: &str,
    points: &[golden::Point],
    want: impl Fn(usize, &golden::Point) -> T::Native,
) {
    let got = column(ctx, sql).await;
    let got = got.as_primitive::<T>();
    assert_eq!(got.len(), points.len(), "{sql}");
    for (i, p) in points.iter().enumerate() {
        if i % 17 == 5 {
            assert!(
                got.is_null(i),
                "{sql}: row {i} has a NULL lat, must be NULL"
            );
        } else {
            assert_eq!(got.value(i), want(i, p), "{sql}: row {i}");
        }
    }
}

#[tokio::test]
async fn healpix_cell_over_a_table_equals_healpy() {
    let (ctx, points) = context_with_points();
    for order in [0_u8, 6, 12, 29] {
        let sql = format!("SELECT healpix_cell(lat, lon, {order}) FROM pts ORDER BY id");
        check_points::<UInt64Type>(&ctx, &sql, &points, |_, p| p.cell(order)).await;
    }
    // A per-row order (Int32 column, coerced) takes the row-by-row path.
    let sql = "SELECT healpix_cell(lat, lon, ord) FROM pts ORDER BY id";
    check_points::<UInt64Type>(&ctx, sql, &points, |i, p| p.cell((i % 30) as u8)).await;
    // Float32 columns are widened to Float64 (exactly), then hashed.
    let sql = "SELECT healpix_cell(lat32, lon32, 12) FROM pts ORDER BY id";
    check_points::<UInt64Type>(&ctx, sql, &points, |_, p| {
        let (lat, lon) = (f64::from(p.lat as f32), f64::from(p.lon as f32));
        healpix::cell(lat, lon, 12, LatitudeMode::Sphere).unwrap()
    })
    .await;
    // 'authalic' mode, explicitly and in capitals.
    let authalic = |p: &golden::Point| healpix::cell(p.lat, p.lon, 12, LatitudeMode::Authalic);
    let sql = "SELECT healpix_cell(lat, lon, 12, 'AUTHALIC') FROM pts ORDER BY id";
    check_points::<UInt64Type>(&ctx, sql, &points, |_, p| authalic(p).unwrap()).await;
    // docs/udfs.md: 97 % of these points get another order-12 cell in authalic mode.
    let rows = points.len();
    let moved = points
        .iter()
        .filter(|p| authalic(p).unwrap() != p.cell(12))
        .count();
    assert!(
        moved * 100 >= 96 * rows && moved * 100 <= 98 * rows,
        "{moved} of {rows} moved"
    );
}

#[tokio::test]
async fn morton_over_a_table_equals_mortie_off_boundaries() {
    let (ctx, points) = context_with_points();
    // 'authalic' mode: the morton index of the authalic cell.
    let sql = "SELECT morton(lat, lon, 12, 'authalic') FROM pts ORDER BY id";
    check_points::<Int64Type>(&ctx, sql, &points, |_, p| {
        morton::from_lat_lon(p.lat, p.lon, 12, LatitudeMode::Authalic).unwrap()
    })
    .await;
    // 'sphere' mode: mortie's value (the golden random points are off cell boundaries).
    for order in [1_u8, 6, 12, 18] {
        let sql = format!("SELECT morton(lat, lon, {order}, 'sphere') FROM pts ORDER BY id");
        check_points::<Int64Type>(&ctx, &sql, &points, |_, p| p.mortie(order)).await;
    }
}

#[tokio::test]
async fn literals_hand_checked() {
    let ctx = context();
    let batches = query(
        &ctx,
        "SELECT healpix_cell(-75.0, 100.0, 6) AS c, morton(-75.0, 100.0, 6) AS m, \
         healpix_cell(-75, 100, 6) AS c_int, morton_to_cell(-4211322) AS cell, \
         cell_to_morton(37925, 6) AS back, morton_order(-4211322) AS k, \
         morton_parent(-4211322, 3) AS p, healpix_parent(153150234, 12, 6) AS hp, \
         healpix_children_first(149, 3, 4) AS first, healpix_children_last(149, 3, 4) AS last, \
         healpix_center_lat(0, 0) AS clat, healpix_center_lon(3, 0) AS clon, \
         morton_to_cell(-4211322, 6) AS cell6",
    )
    .await;
    let expected = [
        "+-------+----------+-------+-------+----------+---+-------+-------+-------+------+-------------------+-------+-------+",
        "| c     | m        | c_int | cell  | back     | k | p     | hp    | first | last | clat              | clon  | cell6 |",
        "+-------+----------+-------+-------+----------+---+-------+-------+-------+------+-------------------+-------+-------+",
        "| 37388 | -4131141 | 37388 | 37925 | -4211322 | 6 | -4211 | 37390 | 596   | 599  | 41.81031489577859 | -45.0 | 37925 |",
        "+-------+----------+-------+-------+----------+---+-------+-------+-------+------+-------------------+-------+-------+",
    ];
    datafusion::assert_batches_eq!(expected, &batches);
    // Literal arguments are folded to a scalar, not an array.
    let plan = query(&ctx, "EXPLAIN SELECT healpix_cell(-75.0, 100.0, 6)").await;
    let text = arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert!(text.contains("37388"), "constant folding: {text}");
}

#[tokio::test]
async fn nulls_propagate_from_every_argument() {
    let ctx = context();
    let sqls = [
        "SELECT healpix_cell(NULL, 1.0, 6)",
        "SELECT healpix_cell(1.0, NULL, 6)",
        "SELECT healpix_cell(1.0, 1.0, NULL)",
        "SELECT morton(1.0, 1.0, CAST(NULL AS BIGINT))",
        "SELECT healpix_parent(NULL, 6, 3)",
        "SELECT healpix_parent(5, NULL, 3)",
        "SELECT healpix_children_first(5, 3, NULL)",
        "SELECT healpix_children_last(NULL, 3, 4)",
        "SELECT healpix_center_lat(NULL, 3)",
        "SELECT healpix_center_lon(5, NULL)",
        "SELECT morton_parent(NULL, 3)",
        "SELECT morton_order(NULL)",
        "SELECT morton_to_cell(NULL)",
        "SELECT cell_to_morton(5, NULL)",
    ];
    for sql in sqls {
        let c = column(&ctx, sql).await;
        assert_eq!((c.len(), c.null_count()), (1, 1), "{sql}");
    }
    // A NULL order with column lat/lon gives a column of NULLs.
    points_table(&ctx);
    let c = column(
        &ctx,
        "SELECT healpix_cell(lat, lon, CAST(NULL AS INT)) FROM pts",
    )
    .await;
    assert_eq!(c.null_count(), c.len());
}

#[tokio::test]
async fn cell_functions_over_columns() {
    let (ctx, points) = context_with_points();
    let batches = query(
        &ctx,
        "WITH c AS (SELECT id, healpix_cell(lat, lon, 12) AS c12, morton(lat, lon, 12) AS m12 \
                    FROM pts WHERE lat IS NOT NULL) \
         SELECT id, healpix_parent(c12, 12, 6), healpix_children_first(c12, 12, 14), \
                healpix_children_last(c12, 12, 14), healpix_center_lat(c12, 12), \
                healpix_center_lon(c12, 12), morton_to_cell(m12), cell_to_morton(c12, 12), \
                morton_parent(m12, 6), morton_order(m12), healpix_center_lat(c12, 12, 'authalic') \
         FROM c ORDER BY id",
    )
    .await;
    let mut rows = 0;
    for b in &batches {
        let id = b.column(0).as_primitive::<Int64Type>();
        let u = |j: usize| b.column(j).as_primitive::<UInt64Type>().clone();
        let f = |j: usize| b.column(j).as_primitive::<Float64Type>().clone();
        let i64c = |j: usize| b.column(j).as_primitive::<Int64Type>().clone();
        for r in 0..b.num_rows() {
            let p = &points[id.value(r) as usize];
            let c12 = p.cell(12);
            assert_eq!(u(1).value(r), p.cell(6));
            assert_eq!(u(2).value(r), c12 << 4);
            assert_eq!(u(3).value(r), ((c12 + 1) << 4) - 1);
            let (lat, lon) = healpix::center(c12, 12).unwrap();
            assert_eq!(f(4).value(r).to_bits(), lat.to_bits());
            assert_eq!(f(5).value(r).to_bits(), lon.to_bits());
            assert_eq!(u(6).value(r), c12);
            assert_eq!(i64c(7).value(r), p.mortie(12));
            assert_eq!(i64c(8).value(r), p.mortie(6));
            assert_eq!(i64c(9).value(r), 12);
            let (alat, _) = healpix::center_with_mode(c12, 12, LatitudeMode::Authalic).unwrap();
            assert_eq!(f(10).value(r), alat);
            rows += 1;
        }
    }
    assert_eq!(rows, points.len() - points.len().div_ceil(17));
}

#[tokio::test]
async fn errors_name_function_argument_and_value() {
    let ctx = context();
    // `call | argument | more`: the error of `SELECT call` names the function, the
    // argument (`argument <name>`) and contains every `;`-separated part of `more`.
    let cases = "
healpix_cell(91.0, 0.0, 6)          | lat        | 91; -90..=90
healpix_cell(-90.5, 0.0, 6)         | lat        | -90.5
healpix_cell(0.0, 'inf'::double, 6) | lon        | inf
healpix_cell(0.0, 0.0, 30)          | order      | 30; 0..=29
healpix_cell(0.0, 0.0, -1)          | order      | -1
healpix_cell(0.0, 0.0, 6, 'wgs84')  | mode       | 'wgs84'; 'authalic'
morton(0.0, 0.0, 19)                | order      | 19; 1..=18
morton(0.0, 0.0, 0)                 | order      | = 0; 1..=18
morton(95.0, 0.0, 6)                | lat        | 95
morton_to_cell(-4211022)            | m          | -4211022; digit 0
morton_to_cell(15)                  | m          | 15; digit 5
morton_to_cell(7111)                | m          | 7111; leading digit 7
morton_to_cell(0)                   | m          | = 0
morton_to_cell(-4211322, 7)         | m          | -4211322; order 7; it is order 6
morton_order(1254)                  | m          | 1254; digit 5
morton_parent(-4211322, 7)          | order      | 7; -4211322
morton_parent(-4211352, 3)          | m          | -4211352; digit 5
cell_to_morton(1, 0)                | order      | = 0; 1..=18
cell_to_morton(49152, 6)            | cell       | 49152; order 6
healpix_parent(48, 1, 0)            | cell       | 48; order 1
healpix_parent(5, 1, 2)             | to_order   | 2
healpix_parent(5, 31, 2)            | from_order | 31
healpix_children_first(5, 2, 1)     | to_order   | 1
healpix_children_last(5, 2, 30)     | to_order   | 30
healpix_center_lat(12, 0)           | cell       | 12
healpix_center_lon(5, 40)           | order      | 40
healpix_center_lat(5, 1, 'round')   | mode       | 'round'
";
    for case in cases.trim().lines() {
        let [call, argument, more] = case.split('|').map(str::trim).collect::<Vec<_>>()[..] else {
            panic!("malformed case {case:?}")
        };
        let function = &call[..call.find('(').unwrap()];
        let argument = format!("argument {argument}");
        let mut parts = vec![function, &argument];
        parts.extend(more.split(';').map(str::trim));
        let e = error(&ctx, &format!("SELECT {call}")).await;
        assert_names(&e, &parts);
    }
    // The same checks on the vectorised paths (columns, constant order).
    points_table(&ctx);
    let e = error(&ctx, "SELECT healpix_cell(lat * 2, lon, 12) FROM pts").await;
    assert_names(&e, &["healpix_cell", "argument lat", "is not a latitude"]);
    let e = error(&ctx, "SELECT morton(lat, lon + 'inf'::double, 12) FROM pts").await;
    assert_names(&e, &["morton", "argument lon", "inf"]);
    let e = error(&ctx, "SELECT healpix_cell(lat, lon, 12, CASE WHEN id > 3 THEN 'sphere' ELSE 'authalic' END) FROM pts").await;
    assert_names(&e, &["healpix_cell", "argument mode", "column"]);
    // One order required: a column mixing orders.
    let e = error(
        &ctx,
        "SELECT morton_to_cell(m) FROM (VALUES (-4211322), (-4211321), (42113)) t(m)",
    )
    .await;
    assert_names(
        &e,
        &[
            "morton_to_cell",
            "argument m",
            "mixes orders",
            "-4211322",
            "42113 is order 4",
        ],
    );
    let c = column(
        &ctx,
        "SELECT morton_to_cell(m) FROM (VALUES (-4211322), (NULL), (-4211321)) t(m)",
    )
    .await;
    let c = c.as_primitive::<UInt64Type>();
    assert_eq!(c, &UInt64Array::from(vec![Some(37925), None, Some(37924)]));
}

/// A column of cells with constant orders (the main job's
/// `healpix_parent(healpix_cell(lat, lon, 18), 18, 12)`) takes a vectorised path; a bad
/// cell there gives the message the row loop gives, for the first bad non-NULL cell.
#[tokio::test]
async fn constant_order_calls_report_bad_cells_like_the_row_loop() {
    let ctx = context();
    let table = "(VALUES (5, 1, 0), (NULL, 1, 0), (48, 1, 0), (49, 1, 0)) t(c, f, k)";
    let constant = error(
        &ctx,
        &format!("SELECT healpix_parent(c, 1, 0) FROM {table}"),
    )
    .await;
    let per_row = error(
        &ctx,
        &format!("SELECT healpix_parent(c, f, k) FROM {table}"),
    )
    .await;
    assert_eq!(constant, per_row);
    assert_names(
        &constant,
        &["healpix_parent: argument cell = 48 is not a cell at order 1, expected 0..48"],
    );
    for call in [
        "healpix_children_first(c, 1, 3)",
        "healpix_children_last(c, 1, 3)",
    ] {
        let e = error(&ctx, &format!("SELECT {call} FROM {table}")).await;
        assert_names(&e, &["argument cell = 48 is not a cell at order 1"]);
    }
    // Good cells through the same path.
    let c = column(
        &ctx,
        "SELECT healpix_parent(c, 1, 0) FROM (VALUES (5), (NULL), (47)) t(c)",
    )
    .await;
    assert_eq!(
        c.as_primitive::<UInt64Type>(),
        &UInt64Array::from(vec![Some(1), None, Some(11)])
    );
}

#[tokio::test]
async fn every_function_is_registered_and_documented() {
    let ctx = context();
    let state = ctx.state();
    let scalars = [
        "healpix_cell",
        "healpix_parent",
        "healpix_children_first",
        "healpix_children_last",
        "healpix_center_lat",
        "healpix_center_lon",
        "morton",
        "morton_parent",
        "morton_order",
        "morton_to_cell",
        "cell_to_morton",
    ];
    let aggregates = ["weighted_mean", "quantile", "np_median", "np_var", "np_std"];
    let scalar_docs = scalars.map(|name| {
        let udf = state.scalar_functions().get(name);
        (name, udf.map(|f| f.documentation()))
    });
    let aggregate_docs = aggregates.map(|name| {
        let udaf = state.aggregate_functions().get(name);
        (name, udaf.map(|f| f.documentation()))
    });
    for (name, doc) in scalar_docs.into_iter().chain(aggregate_docs) {
        let doc = doc
            .unwrap_or_else(|| panic!("{name} not registered"))
            .unwrap_or_else(|| panic!("{name} has no documentation"));
        assert!(
            doc.syntax_example.starts_with(name),
            "{name}: {}",
            doc.syntax_example
        );
        assert!(
            doc.description.len() > 40 && doc.sql_example.is_some(),
            "{name}"
        );
        let example = doc.sql_example.as_ref().unwrap();
        assert!(example.contains(name), "{name}");
    }
}

/// The SQL examples in the documentation give the results they show.
#[tokio::test]
async fn documented_examples_run() {
    let ctx = context();
    let state = ctx.state();
    let mut udfs: Vec<_> = state.scalar_functions().values().cloned().collect();
    udfs.retain(|u| u.name().starts_with("healpix_") || u.name().contains("morton"));
    assert_eq!(udfs.len(), 11);
    let mut docs: Vec<String> = udfs
        .iter()
        .map(|u| u.documentation().unwrap().sql_example.clone().unwrap())
        .collect();
    for name in ["weighted_mean", "quantile", "np_median", "np_var", "np_std"] {
        docs.push(
            state.aggregate_functions()[name]
                .documentation()
                .unwrap()
                .sql_example
                .clone()
                .unwrap(),
        );
    }
    for example in docs {
        let body = example
            .trim_start_matches("```sql\n")
            .trim_end_matches("\n```");
        let (sql, table) = body.split_once('\n').unwrap();
        let sql = sql.trim_start_matches("> ");
        let batches = query(&ctx, sql).await;
        let got = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        // Compare the cells, not the exact padding.
        let cells = |s: &str| {
            s.lines()
                .filter(|l| !l.trim_start().starts_with('+'))
                .flat_map(|l| {
                    l.split('|')
                        .map(|c| c.trim().to_string())
                        .collect::<Vec<_>>()
                })
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        };
        assert_eq!(cells(&got), cells(table), "{sql}\n{got}");
    }
}
