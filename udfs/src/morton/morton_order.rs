//! `morton_order(m)` -> Int64 order of a morton index.

use arrow::datatypes::Int64Type;
use datafusion::logical_expr::{Documentation, ScalarUDF};

use super::{ORDER, order_in};
use crate::sql::{DOC_SECTION_MORTON, udf1};

/// `morton_order(m)`: the order (1-18) of a morton index, i.e. its digit count minus one.
pub(crate) fn udf() -> ScalarUDF {
    udf1::<Int64Type, Int64Type>(
        ORDER,
        |name, m| Ok(order_in(name, m)?.into()),
        documentation,
    )
}

fn documentation() -> Documentation {
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
}
