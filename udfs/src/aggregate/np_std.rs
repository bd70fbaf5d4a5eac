//! `np_std(x [, ddof])`: numpy.std(x, ddof=ddof), by default (ddof=0) the population
//! standard deviation.

use datafusion::logical_expr::{AggregateUDF, Documentation};

use super::moments::{self, Output};

pub(crate) const NAME: &str = "np_std";

/// `np_std(x [, ddof])`: numpy.std(x, ddof=ddof) in Float64, streaming and mergeable;
/// see `moments.rs` for why DataFusion's built-in is not used.
pub(crate) fn udaf() -> AggregateUDF {
    moments::udaf(NAME, Output::StdDev, documentation)
}

fn documentation() -> Documentation {
    moments::documentation(
        "numpy.std(x, ddof=ddof): sqrt(np_var(x, ddof)), by default (ddof=0) the \
         population standard deviation, with ddof=1 the sample standard deviation",
        "stddev_pop",
        "np_std(x [, ddof])",
        "```sql\n> SELECT np_std(h) AS v FROM (VALUES (2.0), (4.0), (4.0), (4.0), (5.0), (5.0), (7.0), (9.0)) t(h);\n+------+\n| v    |\n+------+\n| 2.0  |\n+------+\n```",
        "np_var",
    )
}
