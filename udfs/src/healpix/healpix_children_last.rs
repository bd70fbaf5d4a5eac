//! `healpix_children_last(cell, from_order, to_order)` -> UInt64 descendant id.

use datafusion::logical_expr::{Documentation, ScalarUDF};

use super::{CHILDREN_LAST, Direction, cell_orders_udf, last_descendant};
use crate::sql::DOC_SECTION_HEALPIX;

/// `healpix_children_last(cell, from_order, to_order)`: the last descendant at the
/// finer `to_order`.
pub(crate) fn udf() -> ScalarUDF {
    cell_orders_udf(
        CHILDREN_LAST,
        Direction::Finer,
        last_descendant,
        documentation,
    )
}

fn documentation() -> Documentation {
    Documentation::builder(
        DOC_SECTION_HEALPIX,
        "The last (largest) NESTED id among the descendants at to_order of a cell at from_order: ((cell + 1) << 2*(to_order - from_order)) - 1. With healpix_children_first it bounds the descendants, which are exactly the ids in between. Errors if to_order < from_order, an order is outside 0..29 or the cell \
         does not exist at from_order.",
        "healpix_children_last(cell, from_order, to_order)",
    )
    .with_argument("cell", "NESTED cell id at from_order (any integer type).")
    .with_argument("from_order", "Order of cell, 0..=29.")
    .with_argument("to_order", "Order of the descendants, from_order..=29.")
    .with_sql_example(
        "```sql\n> SELECT healpix_children_last(149, 3, 4) AS last;\n+--------+\n| last   |\n+--------+\n| 599    |\n+--------+\n```",
    )
    .with_related_udf("healpix_children_first")
    .with_related_udf("healpix_parent")
    .build()
}
