//! `healpix_parent(cell, from_order, to_order)` -> UInt64 ancestor id.

use datafusion::logical_expr::{Documentation, ScalarUDF};

use super::{Direction, PARENT, ancestor, cell_orders_udf};
use crate::sql::DOC_SECTION_HEALPIX;

/// `healpix_parent(cell, from_order, to_order)`: the ancestor at the coarser `to_order`.
pub(crate) fn udf() -> ScalarUDF {
    cell_orders_udf(PARENT, Direction::Coarser, ancestor, documentation)
}

fn documentation() -> Documentation {
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
}
