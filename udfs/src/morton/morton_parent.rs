//! `morton_parent(m, order)` -> Int64 ancestor morton index.

use std::sync::OnceLock;

use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{PARENT, parent_in};
use crate::sql::{DOC_SECTION_MORTON, int64, map2};

/// `morton_parent(m, order)`: the ancestor of `m` at the coarser `order`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MortonParent {
    signature: Signature,
}

impl Default for MortonParent {
    fn default() -> Self {
        Self::new()
    }
}

impl MortonParent {
    /// The UDF implementation.
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![int64(), int64()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MortonParent {
    fn name(&self) -> &str {
        PARENT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map2::<Int64Type, Int64Type, Int64Type>(
            &args.args[0],
            &args.args[1],
            args.number_rows,
            |m, o| parent_in(PARENT, m, o),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                DOC_SECTION_MORTON,
                "The ancestor at a coarser order of a morton index: sign(m) * (|m| / 10^(k - \
                 order)) where k is the order of m. Errors if m is malformed or order is not in \
                 1..=k.",
                "morton_parent(m, order)",
            )
            .with_argument("m", "Morton index (any integer type), orders 1-18.")
            .with_argument("order", "Order of the ancestor, 1..=order of m.")
            .with_sql_example(
                "```sql\n> SELECT morton_parent(-4211322, 3) AS p;\n+-------+\n| p     |\n+-------+\n| -4211 |\n+-------+\n```",
            )
            .with_related_udf("healpix_parent")
            .build()
        }))
    }
}
