//! `healpix_children_first(cell, from_order, to_order)` -> UInt64 descendant id.

use datafusion::logical_expr::{Documentation, ScalarUDF};

use super::{CHILDREN_FIRST, Direction, cell_orders_udf, first_descendant};
use crate::sql::DOC_SECTION_HEALPIX;

/// `healpix_children_first(cell, from_order, to_order)`: the first descendant at the
/// finer `to_order`.
pub(crate) fn udf() -> ScalarUDF {
    cell_orders_udf(
        CHILDREN_FIRST,
        Direction::Finer,
        first_descendant,
        documentation,
    )
}

fn documentation() -> Documentation {
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
}
