//! `healpix_children_first(cell, from_order, to_order)` -> UInt64 descendant id.

use std::sync::OnceLock;

use arrow::datatypes::{DataType, Int64Type, UInt64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{CHILDREN_FIRST, children_in};
use crate::sql::{DOC_SECTION_HEALPIX, int64, map3, uint64};

/// `healpix_children_first(cell, from_order, to_order)`: the first descendant at the
/// finer `to_order`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HealpixChildrenFirst {
    signature: Signature,
}

impl Default for HealpixChildrenFirst {
    fn default() -> Self {
        Self::new()
    }
}

impl HealpixChildrenFirst {
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

impl ScalarUDFImpl for HealpixChildrenFirst {
    fn name(&self) -> &str {
        CHILDREN_FIRST
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
            |c, f, t| children_in(CHILDREN_FIRST, c, f, t).map(|range| range.0),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                DOC_SECTION_HEALPIX,
                "The first (smallest) NESTED id among the descendants at to_order of a cell at from_order: cell << 2*(to_order - from_order). With healpix_children_last it bounds the descendants, which are exactly the ids in between. Errors if to_order < from_order, an order is outside 0..29 or the cell \
                 does not exist at from_order.",
                "healpix_children_first(cell, from_order, to_order)",
            )
            .with_argument("cell", "NESTED cell id at from_order (any integer type).")
            .with_argument("from_order", "Order of cell, 0..=29.")
            .with_argument("to_order", "Order of the descendants, from_order..=29.")
            .with_sql_example(
                "```sql\n> SELECT healpix_children_first(149, 3, 4) AS first;\n+--------+\n| first  |\n+--------+\n| 596    |\n+--------+\n```",
            )
            .with_related_udf("healpix_children_last")
            .with_related_udf("healpix_parent")
            .build()
        }))
    }
}
