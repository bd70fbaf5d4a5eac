//! `cell_to_morton(cell, order)` -> Int64 morton index of a nested id.

use std::sync::OnceLock;

use arrow::datatypes::{DataType, Int64Type, UInt64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{FROM_CELL, from_nested_in};
use crate::sql::{DOC_SECTION_MORTON, int64, map2, uint64};

/// `cell_to_morton(cell, order)`: the morton index of a NESTED id at `order` (1-18).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CellToMorton {
    signature: Signature,
}

impl Default for CellToMorton {
    fn default() -> Self {
        Self::new()
    }
}

impl CellToMorton {
    /// The UDF implementation.
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![uint64(), int64()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for CellToMorton {
    fn name(&self) -> &str {
        FROM_CELL
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map2::<UInt64Type, Int64Type, Int64Type>(
            &args.args[0],
            &args.args[1],
            args.number_rows,
            |c, o| from_nested_in(FROM_CELL, c, o),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                DOC_SECTION_MORTON,
                "The morton index of a NESTED cell id at an order 1..=18; the inverse of \
                 morton_to_cell. Errors if the order is out of range or the cell does not exist \
                 at that order.",
                "cell_to_morton(cell, order)",
            )
            .with_argument("cell", "NESTED cell id (any integer type).")
            .with_argument("order", "Order 1..=18.")
            .with_sql_example(
                "```sql\n> SELECT cell_to_morton(37925, 6) AS m;\n+----------+\n| m        |\n+----------+\n| -4211322 |\n+----------+\n```",
            )
            .with_related_udf("morton_to_cell")
            .build()
        }))
    }
}
