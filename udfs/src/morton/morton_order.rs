//! `morton_order(m)` -> Int64 order of a morton index.

use std::sync::OnceLock;

use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{ORDER, decode};
use crate::sql::{DOC_SECTION_MORTON, int64, map1};

/// `morton_order(m)`: the order (1-18) of a morton index, i.e. its digit count minus one.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MortonOrder {
    signature: Signature,
}

impl Default for MortonOrder {
    fn default() -> Self {
        Self::new()
    }
}

impl MortonOrder {
    /// The UDF implementation.
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![int64()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MortonOrder {
    fn name(&self) -> &str {
        ORDER
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map1::<Int64Type, Int64Type>(&args.args[0], args.number_rows, |m| {
            decode(ORDER, "m", m).map(|(_, order)| i64::from(order))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                DOC_SECTION_MORTON,
                "The order (1-18) of a morton index: its number of decimal digits minus one. \
                 The whole index is validated; a malformed one is an error.",
                "morton_order(m)",
            )
            .with_argument("m", "Morton index (any integer type).")
            .with_sql_example(
                "```sql\n> SELECT morton_order(-4211322) AS k;\n+---+\n| k |\n+---+\n| 6 |\n+---+\n```",
            )
            .build()
        }))
    }
}
