//! `np_var(x [, ddof])`: numpy.var(x, ddof=ddof), by default (ddof=0) the population
//! variance.

use datafusion::logical_expr::{AggregateUDF, Documentation};

use super::moments::{self, Output};

pub(crate) const NAME: &str = "np_var";

/// `np_var(x [, ddof])`: numpy.var(x, ddof=ddof) in Float64, streaming and mergeable;
/// see `moments.rs` for why DataFusion's built-in is not used.
pub(crate) fn udaf() -> AggregateUDF {
    moments::udaf(NAME, Output::Variance, documentation)
}

fn documentation() -> Documentation {
    moments::documentation(
        "numpy.var(x, ddof=ddof): sum((x - mean(x))^2) / (n - ddof), by default (ddof=0) \
         the population variance mean((x - mean(x))^2), with ddof=1 the sample variance",
        "var_pop",
        "np_var(x [, ddof])",
        "```sql\n> SELECT np_var(h) AS v FROM (VALUES (2.0), (4.0), (4.0), (4.0), (5.0), (5.0), (7.0), (9.0)) t(h);\n+------+\n| v    |\n+------+\n| 4.0  |\n+------+\n```",
        "np_std",
    )
}
