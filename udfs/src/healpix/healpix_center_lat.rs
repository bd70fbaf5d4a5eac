//! `healpix_center_lat(cell, order [, mode])` -> Float64 latitude of the cell centre.

use std::sync::OnceLock;

use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::{CENTER_LAT, center_in};
use crate::sql::{DOC_SECTION_HEALPIX, int64, map2, mode_arg, string, uint64};

/// `healpix_center_lat(cell, order [, mode])`: latitude in degrees of the cell centre.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HealpixCenterLat {
    signature: Signature,
}

impl Default for HealpixCenterLat {
    fn default() -> Self {
        Self::new()
    }
}

impl HealpixCenterLat {
    /// The UDF implementation.
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![uint64(), int64()]),
                    TypeSignature::Coercible(vec![uint64(), int64(), string()]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for HealpixCenterLat {
    fn name(&self) -> &str {
        CENTER_LAT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mode = mode_arg(CENTER_LAT, &args.args, 2)?;
        map2::<UInt64Type, Int64Type, Float64Type>(
            &args.args[0],
            &args.args[1],
            args.number_rows,
            |c, o| center_in(CENTER_LAT, c, o, mode).map(|(lat, _)| lat),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
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
        }))
    }
}
