//! `morton(lat, lon, order [, mode])` -> Int64 decimal morton index.

use std::sync::OnceLock;

use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use super::{MAX_ORDER, MIN_ORDER, MORTON, encode, from_lat_lon_in};
use crate::healpix::{POINT_SIGNATURE, cell_in, invoke_points};
use crate::sql::{DOC_SECTION_MORTON, mode_arg};

/// `morton(lat, lon, order [, mode])`: the morton index at `order` (1-18) of each point.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Morton {
    signature: Signature,
}

impl Default for Morton {
    fn default() -> Self {
        Self::new()
    }
}

impl Morton {
    /// The UDF implementation.
    pub fn new() -> Self {
        Self {
            signature: POINT_SIGNATURE.clone(),
        }
    }
}

impl ScalarUDFImpl for Morton {
    fn name(&self) -> &str {
        MORTON
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let mode = mode_arg(MORTON, &args.args, 3)?;
        invoke_points::<Int64Type>(
            MORTON,
            &args.args,
            args.number_rows,
            (MIN_ORDER, MAX_ORDER),
            |lat, lon, order, out| from_lat_lon_in(MORTON, lat, lon, order, mode, out),
            |lat, lon, order| Ok(encode(cell_in(MORTON, lat, lon, order, mode)?, order)),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
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
        }))
    }
}
