//! `healpix_center_lon(cell, order)` -> Float64 longitude of the cell centre.

use std::sync::OnceLock;

use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{CENTER_LON, LatitudeMode, center_in};
use crate::sql::{DOC_SECTION_HEALPIX, int64, map2, uint64};

/// `healpix_center_lon(cell, order)`: longitude in degrees, `[-180, 180)`, of the centre.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HealpixCenterLon {
    signature: Signature,
}

impl Default for HealpixCenterLon {
    fn default() -> Self {
        Self::new()
    }
}

impl HealpixCenterLon {
    /// The UDF implementation.
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![uint64(), int64()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for HealpixCenterLon {
    fn name(&self) -> &str {
        CENTER_LON
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map2::<UInt64Type, Int64Type, Float64Type>(
            &args.args[0],
            &args.args[1],
            args.number_rows,
            |c, o| center_in(CENTER_LON, c, o, LatitudeMode::Sphere).map(|(_, lon)| lon),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
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
        }))
    }
}
