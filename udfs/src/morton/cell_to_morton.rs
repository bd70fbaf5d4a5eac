//! `cell_to_morton(cell, order)` -> Int64 morton index of a nested id.

use arrow::datatypes::{Int64Type, UInt64Type};
use datafusion::logical_expr::{Documentation, ScalarUDF};

use super::{FROM_CELL, from_nested_in};
use crate::sql::{DOC_SECTION_MORTON, udf2};

/// `cell_to_morton(cell, order)`: the morton index of a NESTED id at `order` (1-18).
pub(crate) fn udf() -> ScalarUDF {
    udf2::<UInt64Type, Int64Type, Int64Type>(FROM_CELL, from_nested_in, documentation)
}

fn documentation() -> Documentation {
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
}
