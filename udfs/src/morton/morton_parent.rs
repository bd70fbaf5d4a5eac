//! `morton_parent(m, order)` -> Int64 ancestor morton index.

use arrow::datatypes::Int64Type;
use datafusion::logical_expr::{Documentation, ScalarUDF};

use super::{PARENT, parent_in};
use crate::sql::{DOC_SECTION_MORTON, udf2};

/// `morton_parent(m, order)`: the ancestor of `m` at the coarser `order`.
pub(crate) fn udf() -> ScalarUDF {
    udf2::<Int64Type, Int64Type, Int64Type>(PARENT, parent_in, documentation)
}

fn documentation() -> Documentation {
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
}
