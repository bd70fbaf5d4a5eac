//! `quantiles(x, q1, q2, ...)`: several numpy quantiles of one column from one state.

use arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{AggregateUDF, Documentation, Signature, Volatility};

use super::quantile::numpy_quantiles;
use super::udaf::{NumpyAggregate, constant_argument};
use super::values::{Values, list_field, statistic_list};
use crate::sql::DOC_SECTION_AGGREGATE;

pub(crate) const NAME: &str = "quantiles";

/// The most quantiles one call takes.
pub const MAX_QUANTILES: usize = 32;

/// `quantiles(x, q1, ..., qk)`: the list `[quantile(x, q1), ..., quantile(x, qk)]`.
///
/// `quantile` keeps every value of a group; a config asking for the 25th, 50th and 75th
/// percentiles of one column would keep, send and merge every value three times. This
/// keeps them once (the config compiler uses it whenever a column has more than one
/// quantile), and each element equals `quantile(x, q)` bit for bit.
pub(crate) fn udaf() -> AggregateUDF {
    // DataFusion's aggregates take no `Variadic` signature, and one variant per argument
    // count would list 32 candidates in every error: the count and types are checked here.
    NumpyAggregate::udaf_returning::<Values>(
        NAME,
        Signature::user_defined(Volatility::Immutable),
        Some(coerce),
        DataType::List(list_field()),
        |args| {
            let qs = (1..args.exprs.len())
                .map(|i| {
                    Ok(constant_argument(NAME, "q", "a constant in [0, 1]", args, i, |q| {
                        (0.0..=1.0).contains(&q)
                    })?
                    .expect("i < number of arguments"))
                })
                .collect::<Result<Vec<f64>>>()?;
            Ok(statistic_list(qs.len(), move |values, out| {
                numpy_quantiles(values, &qs, out)
            }))
        },
        documentation,
    )
}

/// Every argument to Float64; a column and 1 to [`MAX_QUANTILES`] numbers.
fn coerce(args: &[DataType]) -> Result<Vec<DataType>> {
    if !(2..=MAX_QUANTILES + 1).contains(&args.len()) {
        return plan_err!(
            "{NAME} takes a column and 1 to {MAX_QUANTILES} constant q in [0, 1], got {} argument(s)",
            args.len()
        );
    }
    if let Some((i, t)) = args
        .iter()
        .enumerate()
        .find(|(_, t)| !(t.is_numeric() || t.is_null()))
    {
        return plan_err!("{NAME} argument {} has type {t}, expected a number", i + 1);
    }
    Ok(vec![DataType::Float64; args.len()])
}

fn documentation() -> Documentation {
    Documentation::builder(
        DOC_SECTION_AGGREGATE,
        "Several numpy.quantile(x, q) values of one column at once, as a list in the order \
         of the q arguments; each element equals quantile(x, q) bit for bit. The values \
         of a group are kept once for all the quantiles. An empty group gives a NULL \
         list. Each q must be a constant in [0, 1] (at most 32 of them); index the list \
         (1-based) to pick one.",
        "quantiles(x, q1[, q2, ...])",
    )
    .with_argument("x", "Values (any numeric type).")
    .with_argument("q1, q2, ...", "Constant quantiles in [0, 1].")
    .with_sql_example(
        "```sql\n> SELECT quantiles(h, 0.25, 0.75)[2] AS q75 FROM (VALUES (1.0), (2.0), (4.0), (8.0)) t(h);\n+-----+\n| q75 |\n+-----+\n| 5.0 |\n+-----+\n```",
    )
    .with_related_udf("quantile")
    .build()
}
