//! `morton_to_cell(m [, order])` -> UInt64 nested id of a morton index.

use std::sync::OnceLock;

use arrow::datatypes::{DataType, Int64Type, UInt64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::{MAX_ORDER, MIN_ORDER, TO_CELL, decode};
use crate::UdfError;
use crate::error::check_order;
use crate::sql::{DOC_SECTION_MORTON, int64, map1, map2};

/// `morton_to_cell(m [, order])`: the NESTED id of a morton index.
///
/// A nested id means nothing without its order, so the values of one call must share one
/// order: with the `order` argument every `m` must be of that order; without it, every
/// value in the column must have the order of the first (else an error naming both).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MortonToCell {
    signature: Signature,
}

impl Default for MortonToCell {
    fn default() -> Self {
        Self::new()
    }
}

impl MortonToCell {
    /// The UDF implementation.
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![int64()]),
                    TypeSignature::Coercible(vec![int64(), int64()]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for MortonToCell {
    fn name(&self) -> &str {
        TO_CELL
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [m, order] = &args.args[..] {
            return map2::<Int64Type, Int64Type, UInt64Type>(m, order, args.number_rows, |m, o| {
                let want = check_order(TO_CELL, "order", o, MIN_ORDER, MAX_ORDER)?;
                let (cell, own) = decode(TO_CELL, "m", m)?;
                if own != want {
                    return Err(UdfError::InvalidArgument {
                        function: TO_CELL,
                        argument: "m",
                        value: m.to_string(),
                        expected: format!("a morton index of order {want} (it is order {own})"),
                    });
                }
                Ok(cell)
            });
        }
        let mut first: Option<(i64, u8)> = None;
        map1::<Int64Type, UInt64Type>(&args.args[0], args.number_rows, |m| {
            let (cell, order) = decode(TO_CELL, "m", m)?;
            match first {
                None => first = Some((m, order)),
                Some((f, fo)) if fo != order => {
                    return Err(UdfError::MixedOrders {
                        function: TO_CELL,
                        argument: "m",
                        first: f,
                        first_order: fo,
                        value: m,
                        order,
                    });
                }
                Some(_) => {}
            }
            Ok(cell)
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                DOC_SECTION_MORTON,
                "The NESTED cell id (UInt64) of a morton index; the inverse of cell_to_morton. \
                 A nested id needs its order, so one call needs one order: with the optional \
                 order argument every m must be of that order, without it all values of the \
                 column must share the order of the first (mixed orders are an error; use \
                 morton_order(m) to get the order of each row).",
                "morton_to_cell(m [, order])",
            )
            .with_argument("m", "Morton index (any integer type), orders 1-18.")
            .with_argument("order", "Optional: the order every m must have, 1..=18.")
            .with_sql_example(
                "```sql\n> SELECT morton_to_cell(-4211322) AS cell;\n+-------+\n| cell  |\n+-------+\n| 37925 |\n+-------+\n```",
            )
            .with_related_udf("cell_to_morton")
            .with_related_udf("morton_order")
            .build()
        }))
    }
}
