//! `healpix_parent(cell, from_order, to_order)` -> UInt64 ancestor id.

use std::sync::OnceLock;

use arrow::datatypes::{DataType, Int64Type, UInt64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{PARENT, parent_in};
use crate::sql::{DOC_SECTION_HEALPIX, int64, map3, uint64};

/// `healpix_parent(cell, from_order, to_order)`: the ancestor at the coarser `to_order`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HealpixParent {
    signature: Signature,
}

impl Default for HealpixParent {
    fn default() -> Self {
        Self::new()
    }
}

impl HealpixParent {
    /// The UDF implementation.
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![uint64(), int64(), int64()],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for HealpixParent {
    fn name(&self) -> &str {
        PARENT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [cell, from, to] = &args.args[..] else {
            unreachable!("the signature has three arguments")
        };
        map3::<UInt64Type, Int64Type, Int64Type, UInt64Type>(
            cell,
            from,
            to,
            args.number_rows,
            |c, f, t| parent_in(PARENT, c, f, t),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                DOC_SECTION_HEALPIX,
                "The NESTED id of the ancestor at to_order of a cell at from_order: \
                 cell >> 2*(from_order - to_order). Errors if to_order > from_order, an order \
                 is outside 0..29 or the cell does not exist at from_order.",
                "healpix_parent(cell, from_order, to_order)",
            )
            .with_argument("cell", "NESTED cell id at from_order (any integer type).")
            .with_argument("from_order", "Order of cell, 0..=29.")
            .with_argument("to_order", "Order of the ancestor, 0..=from_order.")
            .with_sql_example(
                "```sql\n> SELECT healpix_parent(153150234, 12, 6) AS parent;\n+--------+\n| parent |\n+--------+\n| 37390  |\n+--------+\n```",
            )
            .with_related_udf("healpix_children_first")
            .with_related_udf("morton_parent")
            .build()
        }))
    }
}
