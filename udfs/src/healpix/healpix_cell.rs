//! `healpix_cell(lat, lon, order [, mode])` -> UInt64 NESTED cell id.

use arrow::datatypes::UInt64Type;
use datafusion::logical_expr::{Documentation, ScalarUDF};

use super::{CELL, Hashing, MAX_ORDER, points_udf};
use crate::sql::DOC_SECTION_HEALPIX;

/// `healpix_cell(lat, lon, order [, mode])`: the NESTED id at `order` (0-29) of each point.
pub(crate) fn udf() -> ScalarUDF {
    let orders = (0, MAX_ORDER);
    points_udf::<UInt64Type>(CELL, orders, Hashing::cells, Hashing::cell, documentation)
}

fn documentation() -> Documentation {
    Documentation::builder(
        DOC_SECTION_HEALPIX,
        "HEALPix NESTED cell id (UInt64) of a point at the given order, bit-for-bit \
         healpy's ang2pix(2**order, lon, lat, nest=True, lonlat=True) in the default \
         'sphere' mode. NULL in any argument gives NULL; a latitude outside -90..90, \
         a non-finite longitude or an order outside 0..29 is an error.",
        "healpix_cell(lat, lon, order [, mode])",
    )
    .with_argument("lat", "Latitude in degrees, -90..=90 (any numeric type).")
    .with_argument("lon", "Longitude in degrees, any finite value (wrapped).")
    .with_argument("order", "HEALPix order 0..=29 (nside = 2^order).")
    .with_argument(
        "mode",
        "Optional constant: 'sphere' (default; geodetic latitude hashed on the sphere, \
         as the reference does) or 'authalic' (WGS84 authalic latitude first; up to \
         0.128 degrees = 14.3 km different at 45 degrees latitude).",
    )
    .with_sql_example(
        "```sql\n> SELECT healpix_cell(-75.0, 100.0, 6) AS cell;\n+-------+\n| cell  |\n+-------+\n| 37388 |\n+-------+\n```",
    )
    .with_related_udf("morton")
    .with_related_udf("healpix_parent")
    .build()
}
