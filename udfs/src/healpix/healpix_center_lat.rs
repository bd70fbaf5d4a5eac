//! `healpix_center_lat(cell, order [, mode])` -> Float64 latitude of the cell centre.

use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use datafusion::logical_expr::{Documentation, ScalarUDF, Signature, TypeSignature, Volatility};

use super::{CENTER_LAT, center_in};
use crate::sql::{
    DOC_SECTION_HEALPIX, Definition, ScalarFunction, int64, map2, mode_arg, string, uint64,
};

/// `healpix_center_lat(cell, order [, mode])`: latitude in degrees of the cell centre.
pub(crate) fn udf() -> ScalarUDF {
    let signature = Signature::one_of(
        vec![
            TypeSignature::Coercible(vec![uint64(), int64()]),
            TypeSignature::Coercible(vec![uint64(), int64(), string()]),
        ],
        Volatility::Immutable,
    );
    let definition = Definition::new(CENTER_LAT, signature, DataType::Float64, documentation);
    ScalarFunction::udf(definition, |args, rows| {
        let mode = mode_arg(CENTER_LAT, args, 2)?;
        map2::<UInt64Type, Int64Type, Float64Type>(&args[0], &args[1], rows, |c, o| {
            center_in(CENTER_LAT, c, o, mode).map(|(lat, _)| lat)
        })
    })
}

fn documentation() -> Documentation {
    Documentation::builder(
        DOC_SECTION_HEALPIX,
        "Latitude in degrees of the centre of a NESTED cell, bit-for-bit healpy's \
         pix2ang(2**order, cell, nest=True, lonlat=True) in 'sphere' mode. In \
         'authalic' mode the centre's (authalic) latitude is converted back to \
         geodetic, the inverse of healpix_cell(..., 'authalic').",
        "healpix_center_lat(cell, order [, mode])",
    )
    .with_argument("cell", "NESTED cell id at order (any integer type).")
    .with_argument("order", "HEALPix order 0..=29.")
    .with_argument("mode", "Optional constant 'sphere' (default) or 'authalic'.")
    .with_sql_example(
        "```sql\n> SELECT healpix_center_lat(0, 0) AS lat;\n+-------------------+\n| lat               |\n+-------------------+\n| 41.81031489577859 |\n+-------------------+\n```",
    )
    .with_related_udf("healpix_center_lon")
    .build()
}
