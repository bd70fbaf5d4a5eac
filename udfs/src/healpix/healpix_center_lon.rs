//! `healpix_center_lon(cell, order)` -> Float64 longitude of the cell centre.

use arrow::datatypes::{Float64Type, Int64Type, UInt64Type};
use datafusion::logical_expr::{Documentation, ScalarUDF};

use super::{CENTER_LON, LatitudeMode, center_in};
use crate::UdfError;
use crate::sql::{DOC_SECTION_HEALPIX, udf2};

/// `healpix_center_lon(cell, order)`: longitude in degrees, `[-180, 180)`, of the centre.
pub(crate) fn udf() -> ScalarUDF {
    udf2::<UInt64Type, Int64Type, Float64Type>(CENTER_LON, center_lon, documentation)
}

/// The centre's longitude, the same in both latitude modes.
fn center_lon(function: &'static str, cell: u64, order: i64) -> Result<f64, UdfError> {
    center_in(function, cell, order, LatitudeMode::Sphere).map(|(_, lon)| lon)
}

fn documentation() -> Documentation {
    Documentation::builder(
        DOC_SECTION_HEALPIX,
        "Longitude in degrees, in [-180, 180), of the centre of a NESTED cell: healpy's \
         pix2ang(2**order, cell, nest=True, lonlat=True) longitude, minus 360 where \
         healpy gives 180 or more. The same in both latitude modes.",
        "healpix_center_lon(cell, order)",
    )
    .with_argument("cell", "NESTED cell id at order (any integer type).")
    .with_argument("order", "HEALPix order 0..=29.")
    .with_sql_example(
        "```sql\n> SELECT healpix_center_lon(3, 0) AS lon;\n+--------+\n| lon    |\n+--------+\n| -45.0  |\n+--------+\n```",
    )
    .with_related_udf("healpix_center_lat")
    .build()
}
