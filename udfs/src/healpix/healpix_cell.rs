//! `healpix_cell(lat, lon, order [, mode])` -> UInt64 NESTED cell id.

use std::sync::{LazyLock, OnceLock};

use arrow::datatypes::{DataType, UInt64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::{CELL, LatitudeMode, MAX_ORDER, cell_in, cells_in, invoke_points};
use crate::sql::{DOC_SECTION_HEALPIX, float64, int64, mode_arg, string};

/// `healpix_cell(lat, lon, order [, mode])`: the NESTED id at `order` (0-29) of each point.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HealpixCell {
    signature: Signature,
}

/// `(lat, lon, order)` and `(lat, lon, order, mode)`; shared with `morton`.
pub(crate) static POINT_SIGNATURE: LazyLock<Signature> = LazyLock::new(|| {
    Signature::one_of(
        vec![
            TypeSignature::Coercible(vec![float64(), float64(), int64()]),
            TypeSignature::Coercible(vec![float64(), float64(), int64(), string()]),
        ],
        Volatility::Immutable,
    )
});

impl Default for HealpixCell {
    fn default() -> Self {
        Self::new()
    }
}

impl HealpixCell {
    /// The UDF implementation.
    pub fn new() -> Self {
        Self {
            signature: POINT_SIGNATURE.clone(),
        }
    }
}

impl ScalarUDFImpl for HealpixCell {
    fn name(&self) -> &str {
        CELL
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mode: LatitudeMode = mode_arg(CELL, &args.args, 3)?;
        invoke_points::<UInt64Type>(
            CELL,
            &args.args,
            args.number_rows,
            (0, MAX_ORDER),
            |lat, lon, order, out| cells_in(CELL, lat, lon, order, mode, out),
            |lat, lon, order| cell_in(CELL, lat, lon, order, mode),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
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
        }))
    }
}
