//! `morton_to_cell(m [, order])` -> UInt64 nested id of a morton index.

use arrow::datatypes::{DataType, Int64Type, UInt64Type};
use datafusion::logical_expr::{Documentation, ScalarUDF, Signature, TypeSignature, Volatility};

use super::{MAX_ORDER, MIN_ORDER, OneOrder, TO_CELL, decode};
use crate::UdfError;
use crate::error::check_order;
use crate::sql::{DOC_SECTION_MORTON, Definition, ScalarFunction, int64, map1, map2};

/// `morton_to_cell(m [, order])`: the NESTED id of a morton index.
///
/// A nested id means nothing without its order, so the values of one call must share one
/// order: with the `order` argument every `m` must be of that order; without it, every
/// value in the column must have the order of the first (else an error naming both).
pub(crate) fn udf() -> ScalarUDF {
    let signature = Signature::one_of(
        vec![
            TypeSignature::Coercible(vec![int64()]),
            TypeSignature::Coercible(vec![int64(), int64()]),
        ],
        Volatility::Immutable,
    );
    let definition = Definition::new(TO_CELL, signature, DataType::UInt64, documentation);
    ScalarFunction::udf(definition, |args, rows| {
        if let [m, order] = args {
            return map2::<Int64Type, Int64Type, UInt64Type>(m, order, rows, to_cell_of_order);
        }
        let mut one_order = OneOrder::default();
        map1::<Int64Type, UInt64Type>(&args[0], rows, |m| one_order.decode(m))
    })
}

/// The nested id of `m`, which must be a morton index of order `order`.
fn to_cell_of_order(m: i64, order: i64) -> Result<u64, UdfError> {
    let want = check_order(TO_CELL, "order", order, MIN_ORDER, MAX_ORDER)?;
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
}

fn documentation() -> Documentation {
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
}
