//! `morton(lat, lon, order [, mode])` -> Int64 decimal morton index.

use arrow::datatypes::Int64Type;
use datafusion::logical_expr::{Documentation, ScalarUDF};

use super::{MAX_ORDER, MIN_ORDER, MORTON, encode, mortons};
use crate::healpix::{Hashing, points_udf};
use crate::sql::DOC_SECTION_MORTON;

/// `morton(lat, lon, order [, mode])`: the morton index at `order` (1-18) of each point.
pub(crate) fn udf() -> ScalarUDF {
    let one =
        |hashing: Hashing, lat: f64, lon: f64| Ok(encode(hashing.cell(lat, lon)?, hashing.order));
    points_udf::<Int64Type>(MORTON, (MIN_ORDER, MAX_ORDER), mortons, one, documentation)
}

fn documentation() -> Documentation {
    Documentation::builder(
        DOC_SECTION_MORTON,
        "Decimal morton index (Int64) of a point at the given order: the healpix_cell \
         written as REFERENCE.md section 2 (leading digit and sign = base cell, then one \
         digit 1-4 per order). Equal to mortie 0.6's geo2mort(lat, lon, order) except \
         on cell boundaries, where healpy's assignment is used.",
        "morton(lat, lon, order [, mode])",
    )
    .with_argument("lat", "Latitude in degrees, -90..=90 (any numeric type).")
    .with_argument("lon", "Longitude in degrees, any finite value (wrapped).")
    .with_argument("order", "Order 1..=18.")
    .with_argument("mode", "Optional constant 'sphere' (default) or 'authalic', as for healpix_cell.")
    .with_sql_example(
        "```sql\n> SELECT morton(-75.0, 100.0, 6) AS m;\n+----------+\n| m        |\n+----------+\n| -4131141 |\n+----------+\n```",
    )
    .with_related_udf("healpix_cell")
    .with_related_udf("morton_to_cell")
    .build()
}
